"""Brevo inbound parsing: parsed messages as JSON, rebuilt here into MIME (ingress/rebuild.py).

What Brevo sends (its "Inbound parsing webhooks" guide): `{"items": [...]}`, one item per
received message, with `Uuid`, `MessageId`, `InReplyTo`, `From` {Name, Address}, `To`, `Cc`
(lists of those), `ReplyTo`, `Subject`, `SentAtDate`, `Headers` (a string, or a list for a
repeated header), `RawTextBody`, `RawHtmlBody`, `ExtractedMarkdownMessage`, `SpamScore` and
`Attachments` [{Name, ContentType, ContentLength, ContentID, DownloadToken}]. No raw MIME and
no attachment bytes: each item is rebuilt (marked `X-Threadline-Rebuilt: brevo`), and each
attachment is fetched with GET {BREVO_API_URL}/inbound/attachments/{DownloadToken}, header
`api-key: BREVO_API_KEY`. Every download happens before anything is stored, and a rebuild is
byte-for-byte repeatable, so a retried post stores each message once.

An attachment that cannot be had for good (no BREVO_API_KEY, no token, Brevo answers 4xx, or
it is larger than ATTACHMENT_MAX_BYTES) does not cost the message: it is kept and the file is
named in an `X-Threadline-Missing-Attachment` header and a `missing-attachments.txt` part.
A passing failure (Brevo unreachable, a timeout, 5xx, 408 or 429) is answered 429 with
Retry-After so that Brevo posts again later: see below for why not 503.

Authentication: HTTP Basic, the credentials in the webhook URL given when the webhook is
created (https://actionmailbox:PASSWORD@host/rails/action_mailbox/brevo/inbound_emails).

Retries (Brevo's "Retry mechanism" guide for webhooks): an unresponsive server is retried
after 10 minutes, 1, 2 and 8 hours (five tries in all), but a 4xx other than 429 and ANY 5xx
stop the retries and discard the post, silently. So a 401/413/415/422 from us loses the
message at Brevo (look for it in Brevo's inbound logs), and so would a 503: the one answer
Brevo documents as "try again" is 429, which is why a passing attachment failure answers 429.
(The shared answer when storage or the database is down is 503: Brevo drops that post too.)
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from email.utils import formataddr
from urllib.parse import quote, urlsplit

from flask import Request

from config import Settings
from ingress import IngressError, RawEmail
from ingress.auth import require_basic_auth
from ingress.forms import json_body, require_json
from ingress.rebuild import Attachment, Missing, header_list, one_line, rebuild, text

PROVIDER = "brevo"
TIMEOUT_SECONDS = 30
RETRY_AFTER = "600"  # Brevo's own first retry comes after 10 minutes
PASSING = {408, 425, 429}  # and every 5xx
CHUNK = 64 * 1024


class _KeyStaysHome(urllib.request.HTTPRedirectHandler):
    """Follow a redirect (to a signed storage URL, say) without taking the API key along to
    another host."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urlsplit(newurl).netloc != urlsplit(req.full_url).netloc:
            new.headers = {k: v for k, v in new.headers.items() if k.lower() != "api-key"}
        return new


_OPENER = urllib.request.build_opener(_KeyStaysHome)


class BrevoUnavailable(Exception):
    """Brevo's attachment API failed in a way that may pass: have Brevo post again."""


def extract(request: Request, settings: Settings) -> list[RawEmail]:
    require_basic_auth(request, settings.inbound_email_password)
    require_json(request)
    payload = json_body(request)
    if not isinstance(payload, dict) or not isinstance(payload.get("items"), list):
        raise IngressError(422, 'not a Brevo inbound payload: no "items" list')
    for item in payload["items"]:
        if not isinstance(item, dict):
            raise IngressError(422, "each of items must be an object")
    budget = [settings.inbound_max_bytes]  # all downloads of one post together
    try:
        return [RawEmail(_message(item, settings, budget)) for item in payload["items"]]
    except BrevoUnavailable as exc:
        raise IngressError(429, f"{exc}; retry later", {"Retry-After": RETRY_AFTER}) from exc


def _message(item: dict, settings: Settings, budget: list[int]) -> bytes:
    defaults = [
        ("Message-ID", text(item.get("MessageId"), "MessageId")),
        ("In-Reply-To", text(item.get("InReplyTo"), "InReplyTo")),
        ("From", _addresses(item.get("From"), "From")),
        ("To", _addresses(item.get("To"), "To")),
        ("Cc", _addresses(item.get("Cc"), "Cc")),
        ("Reply-To", _addresses(item.get("ReplyTo"), "ReplyTo")),
        ("Subject", text(item.get("Subject"), "Subject")),
        ("Date", text(item.get("SentAtDate"), "SentAtDate")),
    ]
    if item.get("Headers") is None and item.get("From") is None:
        raise IngressError(422, "an item without Headers or From is no received message")
    headers = header_list(item.get("Headers"))
    text_body = text(item.get("RawTextBody"), "RawTextBody")
    html_body = text(item.get("RawHtmlBody"), "RawHtmlBody")
    # Downloads last: a malformed item costs no request to Brevo.
    attachments, missing = _attachments(item.get("Attachments"), settings, budget)
    return rebuild(
        PROVIDER,
        headers,
        defaults=[(name, value) for name, value in defaults if value],
        text_body=text_body,
        html_body=html_body,
        attachments=attachments,
        missing=missing,
    )


def _addresses(value: object, field: str) -> str | None:
    """{Name, Address} or a list of them as an address-list header value."""
    if value is None:
        return None
    mailboxes = value if isinstance(value, list) else [value]
    out = []
    for mailbox in mailboxes:
        if not isinstance(mailbox, dict):
            raise IngressError(422, f"{field} must be an object with Name and Address, or a list")
        address = text(mailbox.get("Address"), f"{field}.Address")
        name = text(mailbox.get("Name"), f"{field}.Name")
        if address:
            out.append(formataddr((one_line(name or ""), one_line(address)), charset="utf-8"))
    return ", ".join(out) or None


def _attachments(
    listed: object, settings: Settings, budget: list[int]
) -> tuple[list[Attachment], list[Missing]]:
    if listed is None:
        return [], []
    if not isinstance(listed, list) or not all(isinstance(a, dict) for a in listed):
        raise IngressError(422, "Attachments must be a list of objects")
    attachments, missing = [], []
    for entry in listed:
        name = text(entry.get("Name"), "Attachments.Name")
        content_type = text(entry.get("ContentType"), "Attachments.ContentType")
        content_id = text(entry.get("ContentID"), "Attachments.ContentID")
        token = text(entry.get("DownloadToken"), "Attachments.DownloadToken")
        size = entry.get("ContentLength")
        size = size if isinstance(size, int) and not isinstance(size, bool) else None
        if not settings.brevo_api_key:
            reason = "not downloaded: BREVO_API_KEY is not set"
        elif not token:
            reason = "Brevo gave no download token"
        else:
            limit = min(settings.attachment_max_bytes, budget[0])
            setting = "ATTACHMENT_MAX_BYTES"
            if limit < settings.attachment_max_bytes:
                setting = "INBOUND_EMAIL_MAX_BYTES, for all of a post's attachments"
            content, reason = _download(settings, token, limit, setting)
            if content is not None:
                budget[0] -= len(content)
                attachments.append(
                    Attachment(content, content_type or "", name, content_id, bool(content_id))
                )
                continue
        missing.append(Missing(name, content_type, size, reason))
    return attachments, missing


def _download(
    settings: Settings, token: str, limit: int, setting: str
) -> tuple[bytes | None, str | None]:
    """(bytes, None), or (None, why it will never come); raises BrevoUnavailable if it may."""
    url = f"{settings.brevo_api_url}/inbound/attachments/{quote(token, safe='')}"
    request = urllib.request.Request(url, headers={"api-key": settings.brevo_api_key})
    try:
        with _OPENER.open(request, timeout=TIMEOUT_SECONDS) as response:
            content = bytearray()
            while chunk := response.read(CHUNK):
                content += chunk
                if len(content) > limit:
                    return None, f"larger than the {limit} bytes allowed ({setting})"
            return bytes(content), None
    except urllib.error.HTTPError as exc:
        if exc.code >= 500 or exc.code in PASSING:
            raise BrevoUnavailable(f"Brevo's attachment API answered {exc.code}") from exc
        return None, f"Brevo's attachment API answered {exc.code} {exc.reason}"
    except (OSError, http.client.HTTPException) as exc:  # refused, reset, timed out, cut short
        raise BrevoUnavailable(f"Brevo's attachment API is unreachable: {exc}") from exc
