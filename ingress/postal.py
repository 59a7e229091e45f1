"""Postal HTTP endpoint, format "Delivered as the raw message": the message base64 in `message`.

What Postal sends: a POST per message and route, as JSON ("Sent in the body as JSON") or as
form fields ("Sent as form data"): `id`, `rcpt_to` (the envelope recipient), `mail_from`,
`message` (the raw MIME, base64 with line breaks), `base64` (true) and `size`. The other format,
"Delivered as a hash", carries parsed fields (subject, plain_body, html_body, attachments) and
no raw message: it is refused 422 with the setting to change, since a message rebuilt from
those parts would lose its headers.

Authentication: Postal signs the exact body with its server's RSA key (the `signing.key` its
DKIM record for return paths publishes): `X-Postal-Signature` is base64 RSA-SHA1 (PKCS #1
v1.5), and Postal 3 adds `X-Postal-Signature-256`, RSA-SHA256. When the SHA-256 one is
present it is the only one checked, so an attacker cannot fall back to SHA-1. The public key
is POSTAL_INGRESS_PUBLIC_KEY: the p= value of `postal default-dkim-record` (base64 DER), the
whole record, or a PEM. Postal signs no timestamp, so there is no age to check.

Retries (Postal's HTTP sender): a 2xx is delivered; a 5xx, a timeout (5 s by default) or a
connection error is a soft fail, retried with back-off (up to 18 attempts); 429 is a hard fail
without a bounce; any other 4xx is a hard fail, not retried: Postal shows it in the message's
delivery log and sends the original sender a bounce (when the server sends bounces).
"""

from __future__ import annotations

import base64
import binascii
import re
from functools import lru_cache
from urllib.parse import parse_qsl

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from flask import Request

from config import Settings
from ingress import IngressError, RawEmail
from ingress.forms import decode_raw, json_object

SIGNATURE_256 = "X-Postal-Signature-256"
SIGNATURE_SHA1 = "X-Postal-Signature"
RAW_FORMAT = (
    'set the HTTP endpoint\'s Format to "Delivered as the raw message" in Postal '
    "(Routing > HTTP Endpoints)"
)
_DKIM_P = re.compile(r"(?:^|;)\s*p=([^;]*)", re.IGNORECASE)
_SPACE = re.compile(r"\s+")


def postal_key_problem(value: str) -> str | None:
    """Why POSTAL_INGRESS_PUBLIC_KEY cannot be used, or None (an empty value is not checked)."""
    if not value.strip():
        return None
    try:
        public_key(value)
    except ValueError as exc:
        return str(exc)
    return None


@lru_cache(maxsize=8)
def public_key(value: str) -> rsa.RSAPublicKey:
    """The RSA key from a PEM, a DKIM record or its p= value; parsed once per key string."""
    text = value.strip()
    try:
        if "-----BEGIN" in text:
            # A PEM squeezed onto one line of an env file keeps its line breaks as "\n".
            key = serialization.load_pem_public_key(text.replace("\\n", "\n").encode())
        else:
            match = _DKIM_P.search(text)
            encoded = _SPACE.sub("", match.group(1) if match else text)
            key = serialization.load_der_public_key(base64.b64decode(encoded, validate=True))
    except (ValueError, UnsupportedAlgorithm, binascii.Error) as exc:
        raise ValueError(
            "is not a public key: give the p= value of `postal default-dkim-record` "
            f"(base64) or a PEM ({exc})"
        ) from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("is not an RSA public key (Postal signs with RSA)")
    return key


def authenticate(body: bytes, headers, key: rsa.RSAPublicKey) -> None:
    name = SIGNATURE_256 if headers.get(SIGNATURE_256) is not None else SIGNATURE_SHA1
    given = headers.get(name)
    if given is None:
        raise IngressError(401, f"{SIGNATURE_256} and {SIGNATURE_SHA1} are missing")
    algorithm = hashes.SHA256() if name == SIGNATURE_256 else hashes.SHA1()
    try:
        signature = base64.b64decode(_SPACE.sub("", given), validate=True)
        key.verify(signature, body, padding.PKCS1v15(), algorithm)
    except (binascii.Error, ValueError, InvalidSignature) as exc:
        raise IngressError(401, f"{name} does not match POSTAL_INGRESS_PUBLIC_KEY") from exc


def extract(request: Request, settings: Settings) -> list[RawEmail]:
    try:
        key = public_key(settings.postal_public_key)
    except ValueError as exc:
        # Start-up checks refuse such a key; 503 keeps the message at Postal until it is fixed.
        raise IngressError(503, f"POSTAL_INGRESS_PUBLIC_KEY {exc}") from exc
    body = request.stream.read()
    authenticate(body, request.headers, key)
    if request.mimetype == "application/json":
        payload = json_object(body)
    elif request.mimetype == "application/x-www-form-urlencoded":
        payload = _form(body)
    else:
        shown = request.mimetype or "none"
        raise IngressError(415, f"Content-Type must be application/json, not {shown}")
    return [RawEmail(_message(payload), _recipients(payload))]


def _form(body: bytes) -> dict:
    try:
        pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        raise IngressError(422, f"the form body is not UTF-8 text: {exc}") from exc
    payload: dict[str, str] = {}
    for name, value in pairs:
        if name in payload:
            raise IngressError(422, f"the {name!r} field must be given once")
        payload[name] = value
    if "base64" in payload:
        flags = {"true": True, "false": False}
        payload["base64"] = flags.get(payload["base64"], payload["base64"])
    return payload


def _message(payload: dict) -> bytes:
    message = payload.get("message")
    if message is None:
        raise IngressError(422, f"the payload has no raw message: {RAW_FORMAT}")
    if not isinstance(message, str):
        raise IngressError(422, "message must be a string")
    is_base64 = payload.get("base64", True)
    if not isinstance(is_base64, bool):
        raise IngressError(422, "base64 must be true or false")
    return decode_raw(message, is_base64, "message")


def _recipients(payload: dict) -> list[str]:
    recipient = payload.get("rcpt_to")
    if recipient is not None and not isinstance(recipient, str):
        raise IngressError(422, "rcpt_to must be a string")
    if recipient:
        try:
            recipient.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise IngressError(422, "rcpt_to is not text") from exc
    return [recipient] if recipient else []
