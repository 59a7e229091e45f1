"""Relay ingress (Postfix, Exim, Qmail, curl, getmail6): the body is the raw message."""

from __future__ import annotations

from functools import partial
from itertools import chain

from flask import Request

from config import Settings
from ingress import IngressError, RawEmail
from ingress.auth import require_basic_auth

CHUNK = 64 * 1024


def extract(request: Request, settings: Settings) -> list[RawEmail]:
    require_basic_auth(request, settings.inbound_email_password)
    if request.mimetype != "message/rfc822":
        shown = request.mimetype or "none"
        raise IngressError(415, f"Content-Type must be message/rfc822, not {shown}")
    if request.content_length == 0:
        raise IngressError(422, "the message body is empty")
    # A chunked body (curl -T -) or one sent without Content-Length has no length to check:
    # read its first chunk to tell an empty body from a message.
    stream = request.stream
    first = stream.read(CHUNK)
    if not first:
        raise IngressError(422, "the message body is empty")
    # Chunks, not bytes: receive.py spools them to disk as it hashes.
    return [RawEmail(chain([first], iter(partial(stream.read, CHUNK), b"")))]
