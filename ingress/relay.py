"""Relay ingress (Postfix, Exim, Qmail, curl, getmail6): the body is the raw message."""

from __future__ import annotations

from flask import Request

from config import Settings
from ingress import IngressError, RawEmail
from ingress.auth import require_basic_auth


def extract(request: Request, settings: Settings) -> list[RawEmail]:
    require_basic_auth(request, settings.inbound_email_password)
    if request.mimetype != "message/rfc822":
        shown = request.mimetype or "none"
        raise IngressError(415, f"Content-Type must be message/rfc822, not {shown}")
    if request.content_length == 0:
        raise IngressError(422, "the message body is empty")
    # The stream, not bytes: receive.py spools it to disk as it hashes.
    return [RawEmail(request.stream)]
