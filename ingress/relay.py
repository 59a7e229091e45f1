"""Relay ingress (Postfix, Exim, Qmail, curl, getmail6): the body is the raw message.

The relay command may add the SMTP connection the MTA received it on, as headers
(ingress/relayer.py's X-Threadline-*): trusted because the post authenticated with the
ingress password, and only here (no other ingress reads them)."""

from __future__ import annotations

import ipaddress
from functools import partial
from itertools import chain

from flask import Request

from config import Settings
from ingress import Connection, IngressError, RawEmail
from ingress.auth import require_basic_auth
from ingress.relayer import CLIENT_ADDRESS_HEADER, HELO_HEADER, MAIL_FROM_HEADER

CHUNK = 64 * 1024
MAX_HELO = 255  # a domain name, or an address literal
MAX_MAIL_FROM = 512  # RFC 5321 allows 256 octets for a path; room for odd MTAs


def extract(request: Request, settings: Settings) -> list[RawEmail]:
    require_basic_auth(request, settings.inbound_email_password)
    if request.mimetype != "message/rfc822":
        shown = request.mimetype or "none"
        raise IngressError(415, f"Content-Type must be message/rfc822, not {shown}")
    if request.content_length == 0:
        raise IngressError(422, "the message body is empty")
    connection = connection_from(request)
    # A chunked body (curl -T -) or one sent without Content-Length has no length to check:
    # read its first chunk to tell an empty body from a message.
    stream = request.stream
    first = stream.read(CHUNK)
    if not first:
        raise IngressError(422, "the message body is empty")
    # Chunks, not bytes: receive.py spools them to disk as it hashes.
    return [RawEmail(chain([first], iter(partial(stream.read, CHUNK), b"")), connection=connection)]


def connection_from(request: Request) -> Connection | None:
    """The connection headers, checked; None without any. An empty client address or HELO
    (mail submitted on the MTA's own host) reads as not given. Raises IngressError(422)."""
    address = request.headers.get(CLIENT_ADDRESS_HEADER)
    helo = request.headers.get(HELO_HEADER)
    mail_from = request.headers.get(MAIL_FROM_HEADER)
    if address is None and helo is None and mail_from is None:
        return None
    return Connection(
        client_address=_client_address(address.strip()) if address and address.strip() else None,
        helo=_text(HELO_HEADER, helo, MAX_HELO) or None,
        mail_from=_mail_from(mail_from),
    )


def _client_address(value: str) -> str:
    """An IPv4 or IPv6 address ([brackets] and Postfix's "IPv6:" prefix allowed), in its
    canonical form; an IPv4-mapped IPv6 address is its IPv4 address (as SPF reads it)."""
    text = value.strip("[]")
    if text[:5].lower() == "ipv6:":
        text = text[5:]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise IngressError(
            422,
            f"{CLIENT_ADDRESS_HEADER} {value[:64]!r} is not an IP address: pass the SMTP "
            "client's address (Postfix ${client_address}, Exim $sender_host_address)",
        ) from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address)


def _mail_from(value: str | None) -> str | None:
    """The envelope sender without <angle brackets>; "" is the null sender."""
    text = _text(MAIL_FROM_HEADER, value, MAX_MAIL_FROM)
    if text is None:
        return None
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    return text


def _text(header: str, value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    text = value.strip()
    if not text.isprintable():  # CR, LF, NUL and the other control characters
        raise IngressError(422, f"{header} contains a line break or control character")
    if len(text) > limit:
        raise IngressError(422, f"{header} is longer than {limit} characters")
    return text
