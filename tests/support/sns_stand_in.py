"""A local https stand-in for Amazon SNS's certificate and SubscribeURL host, and an SNS signer.

SNS itself cannot run here. The stand-in serves, over TLS with a server certificate issued by
a CA made for the test session, the PEM certificate whose key signs test messages, and answers
ConfirmSubscription GETs; it records every request line it sees so tests assert them exactly.
The signer is written from AWS's "Verifying the signatures of Amazon SNS messages" (each
name/value of the type's string to sign on its own line, RSA PKCS#1 v1.5 with SHA1 for
SignatureVersion 1, SHA256 for 2), independently of ingress/sns.py.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import ssl
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from tests.support.http_stub import HOST, serve, shut

NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_FIELDS = (
    *("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
)
CONFIRMED = (
    b'<ConfirmSubscriptionResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
    b"<ConfirmSubscriptionResult><SubscriptionArn>{arn}</SubscriptionArn>"
    b"</ConfirmSubscriptionResult></ConfirmSubscriptionResponse>"
)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def certificate_for(
    key: rsa.RSAPrivateKey,
    common_name: str = "sns.amazonaws.com",
    days: int = 1,
    not_before: datetime.datetime | None = None,
) -> bytes:
    """A self-signed PEM certificate for `key`, as SNS's signing certificate stands in."""
    start = not_before or _now() - datetime.timedelta(minutes=5)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def sign(message: dict, key: rsa.RSAPrivateKey, version: str = "1") -> dict:
    """The message with SignatureVersion and Signature added as SNS adds them."""
    names = NOTIFICATION_FIELDS if message["Type"] == "Notification" else CONFIRMATION_FIELDS
    text = "".join(f"{name}\n{message[name]}\n" for name in names if name in message)
    digest = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = key.sign(text.encode("utf-8"), padding.PKCS1v15(), digest)
    return {
        **message,
        "SignatureVersion": version,
        "Signature": base64.b64encode(signature).decode(),
    }


def _tls_context(directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context for 127.0.0.1 whose certificate a fresh test CA issued; the CA file."""
    ca_key, server_key = new_key(), new_key()
    ca_name = _name("Threadline test CA for the SNS stand-in")
    start, end = _now() - datetime.timedelta(minutes=5), _now() + datetime.timedelta(days=1)
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name(HOST))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_file, cert_file, key_file = (directory / n for n in ("ca.pem", "server.pem", "key.pem"))
    ca_file.write_bytes(ca_cert.public_bytes(pem))
    cert_file.write_bytes(server_cert.public_bytes(pem))
    key_file.write_bytes(
        server_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context, ca_file


@dataclass
class SnsStandIn:
    """https://127.0.0.1:<port>: exact paths (query included) answer what `routes` holds;
    any other "/?Action=ConfirmSubscription..." is confirmed; the rest is 404."""

    directory: Path
    routes: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    #: "GET /path?query" for each request, in order
    requests: list[str] = field(default_factory=list)
    ca_file: Path | None = None
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)

    @property
    def origin(self) -> str:
        assert self._server is not None, "start() the stand-in first"
        return f"https://{HOST}:{self._server.server_address[1]}"

    def start(self) -> SnsStandIn:
        context, self.ca_file = _tls_context(self.directory)
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802  (http.server's naming)
                stand_in.requests.append(f"GET {self.path}")
                status, body = stand_in.answer(self.path)
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args) -> None:  # noqa: A002
                pass

        self._server = serve(Handler, lambda sock: context.wrap_socket(sock, server_side=True))
        return self

    def answer(self, path: str) -> tuple[int, bytes]:
        if path in self.routes:
            return self.routes[path]
        if path.startswith("/?Action=ConfirmSubscription&"):
            arn = path.split("TopicArn=", 1)[-1].split("&", 1)[0]
            return 200, CONFIRMED.replace(b"{arn}", arn.encode() + b":subscription-id")
        return 404, b"not found"

    def stop(self) -> None:
        shut(self._server)
        self._server = None
