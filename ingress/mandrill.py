"""Mandrill inbound webhook: `mandrill_events` JSON, signed with base64 HMAC-SHA1."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from flask import Request

from config import Settings
from ingress import IngressError, RawEmail
from ingress.auth import constant_time_equal
from ingress.forms import as_text, raw_form


def expected_signature(key: str, url: str, params: list[tuple[str, str]]) -> str:
    """Mandrill signs the webhook URL followed by each POST param, sorted, key then value."""
    signed = url + "".join(k + v for k, v in sorted(params, key=lambda kv: kv[0]))
    digest = hmac.new(key.encode(), signed.encode("utf-8", "surrogateescape"), hashlib.sha1)
    return base64.b64encode(digest.digest()).decode()


def extract(request: Request, settings: Settings) -> list[RawEmail]:
    form = raw_form(request)
    params = [(k, v.decode("utf-8", "surrogateescape")) for k, v in form.items(multi=True)]
    given = request.headers.get("X-Mandrill-Signature", "")
    if not given:
        raise IngressError(401, "X-Mandrill-Signature is missing")
    # Mandrill signs the URL it was given: the public APP_URL one behind a proxy, else ours.
    query = request.query_string.decode("latin-1")
    public = settings.app_url + request.path + (f"?{query}" if query else "")
    matches = [
        constant_time_equal(given, expected_signature(settings.mandrill_api_key, url, params))
        for url in (public, request.url)
    ]
    if not any(matches):
        raise IngressError(401, "X-Mandrill-Signature does not match MANDRILL_INGRESS_API_KEY")
    events_raw = form.getlist("mandrill_events")
    if len(events_raw) != 1:
        raise IngressError(422, "mandrill_events must be given once")
    try:
        events = json.loads(as_text(events_raw[0], "mandrill_events"))
    except ValueError as exc:
        raise IngressError(422, f"mandrill_events is not JSON: {exc}") from exc
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise IngressError(422, "mandrill_events must be a JSON array of objects")
    messages = []
    for index, event in enumerate(events):
        if event.get("event") != "inbound":
            continue  # Mandrill also posts sync/test events; they carry no message.
        msg = event.get("msg")
        raw = msg.get("raw_msg") if isinstance(msg, dict) else None
        if not isinstance(raw, str):
            raise IngressError(422, f"inbound event {index} has no msg.raw_msg string")
        try:
            messages.append(RawEmail(raw.encode("utf-8")))
        except UnicodeEncodeError as exc:
            # A lone surrogate escape ("\ud800") is valid JSON but no text: 422, not a 500.
            raise IngressError(422, f"inbound event {index} msg.raw_msg is not text") from exc
    return messages
