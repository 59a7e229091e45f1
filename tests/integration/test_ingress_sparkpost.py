"""SparkPost relay webhooks: a JSON array of relay messages, X-MessageSystems-Webhook-Token.

Requests are built from SparkPost's Relay Webhooks API reference: the body is an array of
`{"msys": {"relay_message": {...}}}` with the raw MIME in `content.email_rfc822` (base64
when `email_rfc822_is_base64`, as SparkPost sends a message that is not UTF-8), the envelope
in `rcpt_to`/`msg_from`, and the webhook's auth_token in X-MessageSystems-Webhook-Token.
"""

from __future__ import annotations

import base64
import dataclasses
import json

import pytest

from ingress import IngressError
from tests.support.ingress_requests import (
    assert_received_once,
    inbound_job_ids,
    inbound_rows,
    load_fixture,
    stored_bytes,
    stored_keys,
    with_recipients,
)

SPARKPOST_URL = "/rails/action_mailbox/sparkpost/inbound_emails"
TOKEN = "5ebe2294ecd0e0f08eab7690d2a6ee69"
TOKEN_HEADER = "X-MessageSystems-Webhook-Token"
PLAIN = load_fixture("plain-text.eml")
PLAIN_ID = "plain-text.1@customer.example.com"
RECIPIENT = "support@threadline.test"


@pytest.fixture
def app_config(app_config, extra_settings):
    return {
        **app_config,
        "INBOUND_EMAIL_SERVICE": "sparkpost",
        "SPARKPOST_INGRESS_TOKEN": TOKEN,
        **extra_settings,
    }


def relay_event(raw: bytes, rcpt_to: str | None = RECIPIENT, **content) -> dict:
    """One relay_message as documented; non-UTF-8 MIME goes base64, as SparkPost sends it."""
    try:
        email_rfc822, is_base64 = raw.decode("utf-8"), False
    except UnicodeDecodeError:
        email_rfc822, is_base64 = base64.b64encode(raw).decode(), True
    message = {
        "content": {
            "email_rfc822": email_rfc822,
            "email_rfc822_is_base64": is_base64,
            "headers": [{"Subject": "Where is my order?"}, {"To": RECIPIENT}],
            "html": "<p>Hello</p>",
            "subject": "Where is my order?",
            "text": "Hello",
            "to": [RECIPIENT],
            **content,
        },
        "customer_id": "1337",
        "friendly_from": "sam@customer.example.com",
        "msg_from": "sam@customer.example.com",
        "rcpt_to": rcpt_to,
        "webhook_id": "4839201967643219",
        "protocol": "smtp",
    }
    if rcpt_to is None:
        del message["rcpt_to"]
    return {"msys": {"relay_message": message}}


def post(client, body, headers=None, content_type="application/json"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {TOKEN_HEADER: TOKEN} if headers is None else headers
    return client.post(SPARKPOST_URL, data=data, content_type=content_type, headers=headers)


def assert_nothing_received():
    assert inbound_rows() == []
    assert stored_keys() == []
    assert inbound_job_ids() == []


# ---------------------------------------------------------------- good requests


def test_relay_message_is_stored_with_its_envelope_recipient(client):
    response = post(client, [relay_event(PLAIN)])

    assert response.status_code == 200
    assert_received_once(PLAIN, "sparkpost", PLAIN_ID, [RECIPIENT])


def test_without_rcpt_to_the_message_is_stored_unchanged(client):
    assert post(client, [relay_event(PLAIN, rcpt_to=None)]).status_code == 200
    assert_received_once(PLAIN, "sparkpost", PLAIN_ID)


def test_base64_iso_8859_2_message_is_stored_byte_for_byte(client):
    raw = load_fixture("iso-8859-2-html.eml")
    event = relay_event(raw, rcpt_to="faktury@threadline.test")
    assert event["msys"]["relay_message"]["content"]["email_rfc822_is_base64"] is True

    assert post(client, [event]).status_code == 200
    assert_received_once(
        raw, "sparkpost", "iso-8859-2-html.20250114091244@example.pl", ["faktury@threadline.test"]
    )


def test_base64_with_line_breaks_is_decoded(client):
    encoded = base64.encodebytes(PLAIN).decode()  # 76-character lines
    event = relay_event(PLAIN, email_rfc822=encoded, email_rfc822_is_base64=True)

    assert post(client, [event]).status_code == 200
    assert_received_once(PLAIN, "sparkpost", PLAIN_ID, [RECIPIENT])


def test_inline_images_message_is_stored_byte_for_byte(client):
    raw = load_fixture("inline-images.eml")

    assert post(client, [relay_event(raw)]).status_code == 200
    assert_received_once(raw, "sparkpost", "inline-images.7f3a@customer.example.com", [RECIPIENT])


def test_each_relay_message_of_a_batch_is_stored(client):
    images = load_fixture("inline-images.eml")
    batch = [relay_event(PLAIN), relay_event(images, rcpt_to="sales@threadline.test")]

    assert post(client, batch).status_code == 200

    rows = inbound_rows()
    assert [row.message_id for row in rows] == [PLAIN_ID, "inline-images.7f3a@customer.example.com"]
    assert [row.source for row in rows] == ["sparkpost", "sparkpost"]
    assert stored_bytes(rows[0]) == with_recipients(PLAIN, [RECIPIENT])
    assert stored_bytes(rows[1]) == with_recipients(images, ["sales@threadline.test"])
    assert inbound_job_ids() == [f"process-inbound-{row.id}" for row in rows]


@pytest.mark.parametrize(
    "body",
    [[{"msys": {}}], [], [{"msys": {"message_event": {"type": "delivery"}}}]],
    ids=["creation-ping", "empty-batch", "event-without-relay-message"],
)
def test_a_batch_without_relay_messages_is_204_and_stores_nothing(client, body):
    response = post(client, body)

    assert response.status_code == 200
    assert_nothing_received()


def test_the_ping_beside_a_relay_message_stores_only_the_message(client):
    assert post(client, [{"msys": {}}, relay_event(PLAIN)]).status_code == 200
    assert_received_once(PLAIN, "sparkpost", PLAIN_ID, [RECIPIENT])


# ---------------------------------------------------------------- token refusals


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {TOKEN_HEADER: ""},
        {TOKEN_HEADER: "not-the-token"},
        {TOKEN_HEADER: TOKEN.upper()},
        {TOKEN_HEADER: TOKEN[:-1]},
        {TOKEN_HEADER: TOKEN + "0"},
        {TOKEN_HEADER: f" {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}"},
        {"X-MessageSystems-Webhook-Tokens": TOKEN},
    ],
    ids=[
        "missing",
        "empty",
        "wrong",
        "uppercase",
        "truncated",
        "extended",
        "leading-space",
        "as-bearer-token",
        "other-header",
    ],
)
def test_missing_or_wrong_token_is_401(client, headers):
    response = post(client, [relay_event(PLAIN)], headers=headers)

    assert response.status_code == 401
    assert_nothing_received()


def test_the_ping_without_the_token_is_401(client):
    assert post(client, [{"msys": {}}], headers={}).status_code == 401


def test_the_token_is_checked_before_the_content_type_and_payload(client):
    response = post(client, b"not json", headers={}, content_type="text/plain")

    assert response.status_code == 401


# ---------------------------------------------------------------- content type and payload


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "message/rfc822", ""],
)
def test_other_content_types_are_415(client, content_type):
    response = post(client, [relay_event(PLAIN)], content_type=content_type)

    assert response.status_code == 415
    assert_nothing_received()


def _bad_event(name: str) -> object:
    good = relay_event(PLAIN)
    message = good["msys"]["relay_message"]
    cases = {
        "event-not-object": "msys",
        "no-msys": {"relay_message": message},
        "msys-not-object": {"msys": [message]},
        "relay-message-not-object": {"msys": {"relay_message": "From: a@b.example"}},
        "no-content": {"msys": {"relay_message": {**message, "content": None}}},
        "content-not-object": {"msys": {"relay_message": {**message, "content": "x"}}},
        "no-email-rfc822": relay_event(PLAIN, email_rfc822=None),
        "email-rfc822-number": relay_event(PLAIN, email_rfc822=42),
        "email-rfc822-empty": relay_event(PLAIN, email_rfc822=""),
        "email-rfc822-blank": relay_event(PLAIN, email_rfc822=" \r\n\t"),
        "is-base64-string": relay_event(PLAIN, email_rfc822_is_base64="true"),
        "base64-invalid": relay_event(
            PLAIN, email_rfc822="@@ not base64 @@", email_rfc822_is_base64=True
        ),
        "base64-of-nothing": relay_event(PLAIN, email_rfc822="", email_rfc822_is_base64=True),
        "rcpt-to-number": relay_event(PLAIN, rcpt_to=42),
        "rcpt-to-line-break": relay_event(PLAIN, rcpt_to=f"{RECIPIENT}\nBcc: evil@x.test"),
    }
    return cases[name]


BAD_EVENTS = [
    "event-not-object",
    "no-msys",
    "msys-not-object",
    "relay-message-not-object",
    "no-content",
    "content-not-object",
    "no-email-rfc822",
    "email-rfc822-number",
    "email-rfc822-empty",
    "email-rfc822-blank",
    "is-base64-string",
    "base64-invalid",
    "base64-of-nothing",
    "rcpt-to-number",
    "rcpt-to-line-break",
]


@pytest.mark.parametrize("case", BAD_EVENTS)
def test_malformed_event_is_422(client, case):
    response = post(client, [_bad_event(case)])

    assert response.status_code == 422
    assert_nothing_received()


def test_one_malformed_event_refuses_the_whole_batch(client):
    """Nothing is half-stored: SparkPost retries the batch, and receive() is idempotent."""
    response = post(client, [relay_event(PLAIN), _bad_event("no-content")])

    assert response.status_code == 422
    assert_nothing_received()


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"null",
        b'{"msys": {}}',
        b'"From: a@b.example"',
        b'[{"msys": {"relay_message": {"content": {"email_rfc822": "\xfc"}}}}]',
        b'[{"msys": {"relay_message": {"content": {"email_rfc822": "a\\ud800"}}}}]',
        b'[{"msys": {"relay_message": {"rcpt_to": "\\ud800@x.test", '
        b'"content": {"email_rfc822": "From: a@b.example\\n\\nhi\\n"}}}}]',
    ],
    ids=[
        "not-json",
        "null",
        "object-not-array",
        "string",
        "not-utf8",
        "raw-lone-surrogate",
        "rcpt-to-lone-surrogate",
    ],
)
def test_malformed_body_is_422(client, body):
    response = post(client, body)

    assert response.status_code == 422
    assert_nothing_received()


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize(
    "extra_settings", [{"INBOUND_EMAIL_SERVICE": "relay"}], indirect=True, ids=["relay-only"]
)
def test_sparkpost_is_404_when_not_enabled(client):
    assert post(client, [relay_event(PLAIN)]).status_code == 404
    assert_nothing_received()


@pytest.mark.parametrize(
    "extra_settings", [{"INBOUND_EMAIL_MAX_BYTES": "4096"}], indirect=True, ids=["4096-bytes"]
)
def test_oversized_body_is_413_and_nothing_is_stored(client):
    response = post(client, [relay_event(PLAIN + b"x" * 5000)])

    assert response.status_code == 413
    assert_nothing_received()


def test_an_empty_token_setting_never_authenticates(app):
    from flask import request

    from extensions import get_settings
    from ingress import sparkpost

    settings = dataclasses.replace(get_settings(), sparkpost_webhook_token="")
    body = json.dumps([relay_event(PLAIN)])
    headers = {TOKEN_HEADER: ""}
    with app.test_request_context(
        SPARKPOST_URL, method="POST", data=body, content_type="application/json", headers=headers
    ):
        with pytest.raises(IngressError) as refused:
            sparkpost.extract(request, settings)
    assert refused.value.status == 503
