"""Postmark inbound webhook: RawEmail from a JSON body or form fields."""

from __future__ import annotations

from flask import Request

from config import Settings
from ingress import IngressError, RawEmail
from ingress.auth import require_basic_auth
from ingress.forms import as_text, json_body, raw_form, single_bytes

ENABLE_RAW = 'enable "Include raw email content in JSON payload" in the Postmark inbound settings'


def extract(request: Request, settings: Settings) -> list[RawEmail]:
    require_basic_auth(request, settings.inbound_email_password)
    if request.mimetype == "application/json":
        payload = json_body(request)
        if not isinstance(payload, dict):
            raise IngressError(422, "the JSON body must be an object")
        raw, recipient = payload.get("RawEmail"), payload.get("OriginalRecipient")
        if raw is not None and not isinstance(raw, str):
            raise IngressError(422, "RawEmail must be a string")
        if recipient is not None and not isinstance(recipient, str):
            raise IngressError(422, "OriginalRecipient must be a string")
        try:
            raw_bytes = raw.encode("utf-8") if raw else b""
            if recipient:
                recipient.encode("utf-8")
        except UnicodeEncodeError as exc:
            # A lone surrogate escape ("\ud800") is valid JSON but no text: 422, not a 500.
            raise IngressError(422, f"RawEmail or OriginalRecipient is not text: {exc}") from exc
    else:
        form = raw_form(request)
        raw_bytes = single_bytes(form, "RawEmail", required=False) or b""
        value = single_bytes(form, "OriginalRecipient", required=False)
        recipient = as_text(value, "OriginalRecipient") if value is not None else None
    if not raw_bytes.strip():
        raise IngressError(422, f"RawEmail is missing or blank: {ENABLE_RAW}")
    return [RawEmail(raw_bytes, [recipient] if recipient else [])]
