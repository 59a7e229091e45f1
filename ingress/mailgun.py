"""Mailgun "store and notify"/forward to .../mime: `body-mime`, signed with HMAC-SHA256."""

from __future__ import annotations

import hashlib
import hmac
import time

from flask import Request

from config import Settings
from ingress import IngressError, RawEmail
from ingress.auth import constant_time_equal
from ingress.forms import as_text, raw_form, single_bytes

MAX_AGE_SECONDS = 120


def _single_text_or_401(form, name: str) -> str:
    values = form.getlist(name)
    if len(values) != 1:
        raise IngressError(401, f"the {name!r} field must be given once")
    try:
        return values[0].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IngressError(401, f"the {name!r} field is not text") from exc


def authenticate(form, signing_key: str, now: float | None = None) -> None:
    timestamp = _single_text_or_401(form, "timestamp")
    token = _single_text_or_401(form, "token")
    signature = _single_text_or_401(form, "signature")
    try:
        stamp = int(timestamp)
    except ValueError as exc:
        raise IngressError(401, "timestamp is not an integer") from exc
    now = time.time() if now is None else now
    # Like Action Mailbox, only age is checked: a clock slightly ahead is not an attack.
    if now - stamp > MAX_AGE_SECONDS:
        raise IngressError(401, "the signature is older than 2 minutes (check the clock)")
    expected = hmac.new(signing_key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256)
    if not constant_time_equal(signature, expected.hexdigest()):
        raise IngressError(401, "the signature does not match MAILGUN_INGRESS_SIGNING_KEY")


def extract(request: Request, settings: Settings) -> list[RawEmail]:
    form = raw_form(request)
    authenticate(form, settings.mailgun_signing_key)
    raw = single_bytes(form, "body-mime")
    if not raw.strip():
        raise IngressError(422, "body-mime is blank")
    recipient = single_bytes(form, "recipient", required=False)
    recipients = [as_text(recipient, "recipient")] if recipient is not None else []
    return [RawEmail(raw, recipients)]
