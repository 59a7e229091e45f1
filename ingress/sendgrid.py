"""SendGrid Inbound Parse ("Post the raw, full MIME message"): form field `email`."""

from __future__ import annotations

import json

from flask import Request

from config import Settings
from ingress import IngressError, RawEmail
from ingress.auth import require_basic_auth
from ingress.forms import as_text, raw_form, single_bytes

RAW_HINT = 'check "Post the raw, full MIME message" in SendGrid Inbound Parse'


def extract(request: Request, settings: Settings) -> list[RawEmail]:
    require_basic_auth(request, settings.inbound_email_password)
    form = raw_form(request)
    raw = single_bytes(form, "email", required=False)
    if raw is None or not raw.strip():
        raise IngressError(422, f"the 'email' field is missing or blank: {RAW_HINT}")
    recipients: list[str] = []
    envelope = single_bytes(form, "envelope", required=False)
    if envelope is not None:
        try:
            parsed = json.loads(as_text(envelope, "envelope"))
        except ValueError as exc:
            raise IngressError(422, f"envelope is not JSON: {exc}") from exc
        to = parsed.get("to") if isinstance(parsed, dict) else None
        if not isinstance(to, list) or not all(isinstance(x, str) for x in to):
            raise IngressError(422, 'envelope must be a JSON object like {"to": ["address"]}')
        recipients = to
    return [RawEmail(raw, recipients)]
