"""SparkPost relay webhook: a JSON array of events, each `msys.relay_message` one message.

What SparkPost sends: for mail to an inbound domain, a POST whose body is a JSON array of
`{"msys": {"relay_message": {...}}}`; the raw MIME is `content.email_rfc822`, base64-encoded
when `content.email_rfc822_is_base64` is true (SparkPost does so when the message is not
valid UTF-8); `rcpt_to` is the envelope recipient, `msg_from` the envelope sender. When a
webhook is created or validated SparkPost may post a batch without a relay message
(`[{"msys": {}}]`): it is answered 2xx and stores nothing.

Authentication: the relay webhook's `auth_token` comes back in every request's
`X-MessageSystems-Webhook-Token` header, compared in constant time with
SPARKPOST_INGRESS_TOKEN. SparkPost signs nothing and sends no timestamp.

Retries (SparkPost's relay webhook documentation): a push that fails is tried again after
300 seconds, then up to 7 more times with back-off, and then dropped; the docs draw no line
between 4xx and 5xx. Failed pushes show only in SparkPost's relay_tempfail/relay_permfail
events; SparkPost's webhook validation wants an HTTP 200 answer.
"""

from __future__ import annotations

from flask import Request

from config import Settings
from ingress import IngressError, RawEmail
from ingress.auth import constant_time_equal
from ingress.forms import decode_raw, json_body, require_json

TOKEN_HEADER = "X-MessageSystems-Webhook-Token"


def authenticate(request: Request, token: str) -> None:
    if not token:
        # Start-up checks refuse this; never compare against an empty token.
        raise IngressError(503, "SPARKPOST_INGRESS_TOKEN is not set")
    given = request.headers.get(TOKEN_HEADER)
    if given is None:
        raise IngressError(401, f"{TOKEN_HEADER} is missing")
    if not constant_time_equal(given, token):
        raise IngressError(401, f"{TOKEN_HEADER} does not match SPARKPOST_INGRESS_TOKEN")


def extract(request: Request, settings: Settings) -> list[RawEmail]:
    authenticate(request, settings.sparkpost_webhook_token)
    require_json(request)
    events = json_body(request)
    if not isinstance(events, list):
        raise IngressError(422, "the JSON body must be an array of events")
    messages = []
    for index, event in enumerate(events):
        msys = event.get("msys") if isinstance(event, dict) else None
        if not isinstance(msys, dict):
            raise IngressError(422, f"event {index} is not an object with an msys object")
        relay = msys.get("relay_message")
        if relay is None:
            continue  # the ping sent when the webhook is created: no message in it
        messages.append(_message(index, relay))
    return messages


def _message(index: int, relay: object) -> RawEmail:
    content = relay.get("content") if isinstance(relay, dict) else None
    if not isinstance(content, dict):
        raise IngressError(422, f"event {index} relay_message has no content object")
    raw = content.get("email_rfc822")
    if not isinstance(raw, str):
        raise IngressError(422, f"event {index} content.email_rfc822 is not a string")
    is_base64 = content.get("email_rfc822_is_base64", False)
    if not isinstance(is_base64, bool):
        raise IngressError(422, f"event {index} content.email_rfc822_is_base64 is not a bool")
    body = decode_raw(raw, is_base64, f"event {index} content.email_rfc822")
    recipient = relay.get("rcpt_to")
    if recipient is not None and not isinstance(recipient, str):
        raise IngressError(422, f"event {index} rcpt_to is not a string")
    if recipient:
        try:
            recipient.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise IngressError(422, f"event {index} rcpt_to is not text") from exc
    return RawEmail(body, [recipient] if recipient else [])
