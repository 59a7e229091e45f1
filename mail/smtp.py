"""Open an authenticated SMTP session the way the settings describe, for sending and checks."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

# SMTP_AUTHENTICATION values (Rails/Chatwoot names) → SASL mechanism and smtplib's helper.
AUTH_MECHANISMS = {"plain": "PLAIN", "login": "LOGIN", "cram_md5": "CRAM-MD5"}


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    implicit_tls: bool = False  # SMTP_SSL / port 465
    starttls: bool = True  # upgrade when the server offers STARTTLS
    verify_certificate: bool = True
    helo: str | None = None
    username: str = ""
    password: str = ""
    auth_method: str = ""  # "" lets smtplib choose among what the server offers
    # An OAuth 2.0 access token (Microsoft 365, Google): AUTH XOAUTH2 as `username` instead
    # of the password.
    oauth_token: str = field(default="", repr=False)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass
class SmtpSession:
    client: smtplib.SMTP
    tls: bool
    authenticated_as: str | None


def client_tls_context(verify: bool) -> ssl.SSLContext:
    """The system's trust store (SSL_CERT_FILE adds a private CA); `verify=False` only when
    an admin explicitly turned certificate checks off."""
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


@contextmanager
def smtp_session(target: SmtpTarget, timeout: float = 30.0) -> Iterator[SmtpSession]:
    """Connect, EHLO, STARTTLS when offered, AUTH only when a username and password (or an
    OAuth token: XOAUTH2) are set.

    No credentials means no AUTH at all, so a local relay (Postfix on the same host) works.
    """
    context = client_tls_context(target.verify_certificate)
    if target.implicit_tls:
        client = smtplib.SMTP_SSL(target.host, target.port, timeout=timeout, context=context)
    else:
        client = smtplib.SMTP(target.host, target.port, timeout=timeout)
    try:
        client.ehlo(target.helo or None)
        tls = target.implicit_tls
        if not tls and target.starttls and client.has_extn("starttls"):
            client.starttls(context=context)
            client.ehlo(target.helo or None)
            tls = True
        authenticated = None
        if target.username and target.oauth_token:
            _xoauth2(client, target)
            authenticated = target.username
        elif target.username and target.password:
            _authenticate(client, target)
            authenticated = target.username
        yield SmtpSession(client, tls, authenticated)
    finally:
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()


def _authenticate(client: smtplib.SMTP, target: SmtpTarget) -> None:
    if not target.auth_method:
        client.login(target.username, target.password)
        return
    mechanism = AUTH_MECHANISMS[target.auth_method]
    if not client.has_extn("auth"):
        raise smtplib.SMTPNotSupportedError("the server does not offer AUTH")
    client.user, client.password = target.username, target.password
    client.auth(mechanism, getattr(client, "auth_" + target.auth_method))


def xoauth2_blob(username: str, token: str) -> str:
    """The SASL XOAUTH2 initial response (before base64), as Google and Microsoft define it."""
    return f"user={username}\x01auth=Bearer {token}\x01\x01"


def _xoauth2(client: smtplib.SMTP, target: SmtpTarget) -> None:
    """AUTH XOAUTH2 with the blob as initial response. A refused token gets a 334 with a JSON
    error first: answered with an empty line, the server then sends its 535, which smtplib
    raises as SMTPAuthenticationError (like a refused password)."""
    offered = client.esmtp_features.get("auth", "").upper().split()
    if "XOAUTH2" not in offered:
        raise smtplib.SMTPNotSupportedError("the server does not offer AUTH XOAUTH2")
    blob = xoauth2_blob(target.username, target.oauth_token)
    # smtplib calls authobject() once without arguments for the initial response, then with
    # each 334 challenge: an empty one still asks for the blob, the JSON error for nothing.
    client.auth("XOAUTH2", lambda challenge=None: "" if challenge else blob)


class DeliveryRefused(smtplib.SMTPException):
    """The server refused the message: `code` and its own words, permanent when 5xx."""

    def __init__(self, code: int, text: str):
        super().__init__(f"{code} {text}")
        self.code = code
        self.text = text

    @property
    def permanent(self) -> bool:
        return 500 <= self.code < 600


def _said(response: bytes | str) -> str:
    return response.decode(errors="replace") if isinstance(response, bytes) else str(response)


def describe_refusal(exc: smtplib.SMTPResponseException) -> str:
    """A server's answer as people read it: "535 5.7.8 Authentication failed" on one line."""
    return f"{exc.smtp_code} {' '.join(_said(exc.smtp_error).split())}".strip()


def send_mime(
    session: SmtpSession,
    sender: str,
    recipients: list[str],
    data: bytes,
    before_data: Callable[[], None] | None = None,
) -> str:
    """MAIL, RCPT each, DATA; return the server's final reply (it often names a queue id).

    `before_data` runs once every recipient is accepted, just before DATA: from then on the
    server may accept the message, so a caller records that the fate is now the server's.

    Any refused recipient refuses the whole message: a reply reaching only some of the
    people on it would be worse than a visible failure the agent can retry.
    """
    client = session.client
    code, response = client.mail(sender)
    if code != 250:
        client.rset()
        raise DeliveryRefused(code, _said(response))
    for recipient in recipients:
        code, response = client.rcpt(recipient)
        if code not in (250, 251):
            client.rset()
            raise DeliveryRefused(code, f"{recipient}: {_said(response)}")
    if before_data is not None:
        before_data()
    code, response = client.data(data)
    if code != 250:
        raise DeliveryRefused(code, _said(response))
    return f"{code} {_said(response)}"
