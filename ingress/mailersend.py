"""MailerSend inbound route posted to a webhook: JSON with the raw MIME in `data.raw`.

What MailerSend sends: for each message an inbound route catches, a POST of JSON
`{"type": "inbound.message", "inbound_id": ..., "data": {...}}` where `data.raw` is the
message as received, `data.recipients.rcptTo` the envelope recipients (`[{"email": ...}]`),
`data.sender.email` the envelope sender, beside parsed fields (from, subject, text, html,
attachments) that are not needed here. A payload without `data.raw` is refused 422.

Authentication: the route's webhook has a signing secret (MailerSend shows it on the inbound
route, and returns it as `forwards[].secret` in its API); the `Signature` header is the hex
HMAC-SHA256 of the exact body under that secret, compared in constant time with
MAILERSEND_INGRESS_SIGNING_SECRET. MailerSend signs no timestamp, so there is no age to check.

Retries: MailerSend documents them for webhooks, not separately for inbound routes: an answer
other than 2xx, or none within a few seconds, is a failed attempt, shown in the attempts log;
the call is retried a couple of times with growing waits (seconds, then minutes) and then
dropped, 4xx and 5xx alike; a webhook failing 20 times in 24 hours is paused. The message
itself stays listed in the inbound route's Inbound activity.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import Request

from config import Settings
from ingress import IngressError, RawEmail
from ingress.auth import constant_time_equal
from ingress.forms import json_object, require_json

SIGNATURE_HEADER = "Signature"
INBOUND_TYPE = "inbound.message"
TEST_TYPE = "webhook.test"


def authenticate(body: bytes, given: str | None, secret: str) -> None:
    if not secret:
        # Start-up checks refuse this; an empty key would let anyone sign.
        raise IngressError(503, "MAILERSEND_INGRESS_SIGNING_SECRET is not set")
    if given is None:
        raise IngressError(401, f"the {SIGNATURE_HEADER} header is missing")
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not constant_time_equal(given, expected):
        raise IngressError(
            401, f"the {SIGNATURE_HEADER} header does not match MAILERSEND_INGRESS_SIGNING_SECRET"
        )


def extract(request: Request, settings: Settings) -> list[RawEmail]:
    body = request.stream.read()
    authenticate(body, request.headers.get(SIGNATURE_HEADER), settings.mailersend_signing_secret)
    require_json(request)
    payload = json_object(body)
    kind = payload.get("type", INBOUND_TYPE)
    if kind == TEST_TYPE:
        return []  # a "Test webhook" ping carries no message
    if kind != INBOUND_TYPE:
        raise IngressError(
            422,
            f"type {kind!r} is not {INBOUND_TYPE!r}: point an inbound route's webhook here, "
            "not an activity webhook",
        )
    data = payload.get("data")
    if not isinstance(data, dict):
        raise IngressError(422, "the payload has no data object")
    raw = data.get("raw")
    if not isinstance(raw, str) or not raw.strip():
        raise IngressError(422, "data.raw (the raw MIME message) is missing, empty or not a string")
    try:
        raw_bytes = raw.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise IngressError(422, "data.raw is not text") from exc
    return [RawEmail(raw_bytes, _recipients(data.get("recipients")))]


def _recipients(recipients: object) -> list[str]:
    if recipients is None:
        return []
    if not isinstance(recipients, dict):
        raise IngressError(422, "data.recipients must be an object")
    rcpt_to = recipients.get("rcptTo", [])
    if not isinstance(rcpt_to, list):
        raise IngressError(422, "data.recipients.rcptTo must be a list")
    out: list[str] = []
    for entry in rcpt_to:
        email = entry.get("email") if isinstance(entry, dict) else None
        if not isinstance(email, str):
            raise IngressError(422, "each data.recipients.rcptTo entry needs an email string")
        try:
            email.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise IngressError(422, "a data.recipients.rcptTo email is not text") from exc
        if email and email not in out:
            out.append(email)
    return out
