"""Mailjet Parse API: a parsed message as JSON, rebuilt here into MIME (ingress/rebuild.py).

What Mailjet sends (its Parse API guide, "What is delivered to your webhook"): one JSON object
per message with `Sender` and `Recipient` (the envelope), `From`, `To`, `Cc`, `Subject`,
`Headers` (every header of the message: a string, or a list for a repeated one), `Parts`
(each with its `Headers` and a `ContentRef` naming the key that holds its content),
`Text-part`, `Html-part`, attachments and inline parts as base64 under `Attachment1`.. (or
`InlineAttachment1`..), and `SpamAssassinScore`, `CustomID` and `Payload`. No raw MIME: the
message is rebuilt from the headers and parts and marked `X-Threadline-Rebuilt: mailjet`;
`Recipient` becomes the X-Original-To line. An attachment a part names but the payload lacks
is listed as missing rather than refusing the message.

Authentication: HTTP Basic. Mailjet posts to the URL of the parse route, which may carry the
credentials (https://actionmailbox:PASSWORD@host/rails/action_mailbox/mailjet/inbound_emails).

Retries: Mailjet's Parse API guide documents no retry schedule and says nothing of 4xx answers
(Parse API is only on paid plans). Our 503 (storage or database down) is an error Mailjet may
or may not retry: keep the storage up; a refusal (401, 413, 415, 422) may be dropped silently.
"""

from __future__ import annotations

import base64
import binascii
from email.message import Message
from email.utils import collapse_rfc2231_value

from flask import Request

from config import Settings
from ingress import IngressError, RawEmail
from ingress.auth import require_basic_auth
from ingress.forms import json_body, require_json
from ingress.rebuild import Attachment, Missing, header_list, rebuild, text

PROVIDER = "mailjet"
# Top-level copies of headers, used only when `Headers` lacks the header itself.
TOP_LEVEL = (("From", "From"), ("To", "To"), ("Cc", "Cc"), ("Subject", "Subject"))


def extract(request: Request, settings: Settings) -> list[RawEmail]:
    require_basic_auth(request, settings.inbound_email_password)
    require_json(request)
    payload = json_body(request)
    if not isinstance(payload, dict) or not isinstance(payload.get("Headers"), dict):
        raise IngressError(422, "not a Mailjet Parse API payload: no Headers object")
    headers = header_list(payload["Headers"])
    defaults = []
    for name, field in TOP_LEVEL:
        value = text(payload.get(field), field)
        if value:
            defaults.append((name, value))
    attachments, missing = _attachments(payload)
    raw = rebuild(
        PROVIDER,
        headers,
        defaults=defaults,
        text_body=text(payload.get("Text-part"), "Text-part"),
        html_body=text(payload.get("Html-part"), "Html-part"),
        attachments=attachments,
        missing=missing,
    )
    recipient = text(payload.get("Recipient"), "Recipient")
    return [RawEmail(raw, [recipient] if recipient else [])]


def _attachments(payload: dict) -> tuple[list[Attachment], list[Missing]]:
    parts = payload.get("Parts") or []
    if not isinstance(parts, list):
        raise IngressError(422, "Parts must be a list")
    attachments, missing = [], []
    for part in parts:
        if not isinstance(part, dict):
            raise IngressError(422, "each of Parts must be an object")
        ref = text(part.get("ContentRef"), "ContentRef") or ""
        if "Attachment" not in ref:  # Text-part and Html-part are the bodies
            continue
        part_headers = {name.lower(): value for name, value in header_list(part.get("Headers"))}
        content_type = part_headers.get("content-type", "application/octet-stream")
        disposition = part_headers.get("content-disposition", "")
        filename = _param(disposition, "filename") or _param(content_type, "name")
        encoded = text(payload.get(ref), ref)
        if encoded is None:
            missing.append(Missing(filename, content_type, None, f"{ref} is not in the payload"))
            continue
        try:
            content = base64.b64decode("".join(encoded.split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise IngressError(422, f"{ref} is not base64: {exc}") from exc
        content_id = part_headers.get("content-id")
        inline = ref.startswith("Inline") or disposition.lower().startswith("inline")
        attachments.append(Attachment(content, content_type, filename, content_id, inline))
    return attachments, missing


def _param(header: str, name: str) -> str | None:
    """A parameter of a Content-Type or Content-Disposition value, unquoted."""
    message = Message()
    message["X"] = header
    value = message.get_param(name, header="X")
    if value is None:
        return None
    if isinstance(value, tuple):  # RFC 2231: (charset, language, text)
        return collapse_rfc2231_value(value)
    return str(value)
