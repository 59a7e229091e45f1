"""MailerSend inbound route to a webhook: `data.raw`, HMAC-SHA256 hex in the Signature header.

Requests are built like MailerSend's `inbound.message` posts (its Inbound routing docs and the
payload django-anymail recorded from a live route): type, inbound_id, url, created_at and a
data object holding the parsed message beside `raw`, with the envelope in `sender` and
`recipients.rcptTo`. The Signature header is the hex HMAC-SHA256 of the exact body under the
route's webhook secret.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json

import pytest

from ingress import IngressError
from tests.support.ingress_requests import (
    assert_received_once,
    inbound_job_ids,
    inbound_rows,
    load_fixture,
    stored_keys,
)

MAILERSEND_URL = "/rails/action_mailbox/mailersend/inbound_emails"
SECRET = "jYhafQeTihgw0qWclkUA7cbqTG3Zfh2j"
PLAIN = load_fixture("plain-text.eml")
PLAIN_ID = "plain-text.1@customer.example.com"
RECIPIENT = "support@threadline.test"


@pytest.fixture
def app_config(app_config, extra_settings):
    return {
        **app_config,
        "INBOUND_EMAIL_SERVICE": "mailersend",
        "MAILERSEND_INGRESS_SIGNING_SECRET": SECRET,
        **extra_settings,
    }


def inbound_payload(raw: bytes, rcpt_to=(RECIPIENT,), **data) -> dict:
    message = {
        "object": "message",
        "id": "6402ab57f79d39d7e10f2523",
        "recipients": {
            "rcptTo": [{"email": address} for address in rcpt_to],
            "to": {"raw": RECIPIENT, "data": [{"email": RECIPIENT, "name": None}]},
        },
        "from": {
            "email": "sam@customer.example.com",
            "name": "Sam Customer",
            "raw": "Sam Customer <sam@customer.example.com>",
        },
        "sender": {"email": "sam@customer.example.com"},
        "subject": "Where is my order?",
        "date": "Thu, 16 Jan 2025 10:00:00 +0000",
        "headers": {"Message-ID": "<plain-text.1@customer.example.com>"},
        "text": "Hello, order #1042 has not arrived yet.",
        "html": None,
        "raw": raw.decode("utf-8"),
        "attachments": [],
        "spf_check": {"code": "+", "value": None},
        "dkim_check": False,
        "created_at": "2025-01-16T10:00:01.525000Z",
        **data,
    }
    return {
        "type": "inbound.message",
        "inbound_id": "v57gn2j67qlr6z4d",
        "url": "https://threadline.test" + MAILERSEND_URL,
        "created_at": "2025-01-16T10:00:02.417935Z",
        "data": message,
    }


def signature(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(client, payload, headers=None, content_type="application/json"):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"Signature": signature(body)} if headers is None else headers
    return client.post(MAILERSEND_URL, data=body, content_type=content_type, headers=headers)


def assert_nothing_received():
    assert inbound_rows() == []
    assert stored_keys() == []
    assert inbound_job_ids() == []


# ---------------------------------------------------------------- good requests


def test_inbound_message_is_stored_with_its_envelope_recipient(client):
    response = post(client, inbound_payload(PLAIN))

    assert response.status_code == 204
    assert_received_once(PLAIN, "mailersend", PLAIN_ID, [RECIPIENT])


def test_every_envelope_recipient_is_prepended_once(client):
    rcpt_to = (RECIPIENT, "sales@threadline.test", RECIPIENT)

    assert post(client, inbound_payload(PLAIN, rcpt_to=rcpt_to)).status_code == 204
    assert_received_once(PLAIN, "mailersend", PLAIN_ID, [RECIPIENT, "sales@threadline.test"])


@pytest.mark.parametrize("recipients", ["no-rcpt-to", "empty-rcpt-to", "no-recipients"])
def test_without_envelope_recipients_the_message_is_stored_unchanged(client, recipients):
    payload = inbound_payload(PLAIN, rcpt_to=())
    if recipients == "no-rcpt-to":
        del payload["data"]["recipients"]["rcptTo"]
    elif recipients == "no-recipients":
        del payload["data"]["recipients"]

    assert post(client, payload).status_code == 204
    assert_received_once(PLAIN, "mailersend", PLAIN_ID)


def test_inline_images_message_is_stored_byte_for_byte(client):
    raw = load_fixture("inline-images.eml")

    assert post(client, inbound_payload(raw)).status_code == 204
    assert_received_once(raw, "mailersend", "inline-images.7f3a@customer.example.com", [RECIPIENT])


def test_crlf_message_is_stored_byte_for_byte(client):
    raw = PLAIN.replace(b"\n", b"\r\n")

    assert post(client, inbound_payload(raw)).status_code == 204
    assert_received_once(raw, "mailersend", PLAIN_ID, [RECIPIENT])


def test_a_test_ping_is_204_and_stores_nothing(client):
    response = post(client, {"type": "webhook.test", "data": {}})

    assert response.status_code == 204
    assert_nothing_received()


# ---------------------------------------------------------------- signature refusals


def _signature_case(name: str, body: bytes) -> dict:
    good = signature(body)
    cases = {
        "missing": {},
        "empty": {"Signature": ""},
        "another-secret": {"Signature": signature(body, "not-the-secret")},
        "another-body": {"Signature": signature(body + b" ")},
        "uppercase-hex": {"Signature": good.upper()},
        "with-prefix": {"Signature": f"sha256={good}"},
        "truncated": {"Signature": good[:-2]},
        "in-another-header": {"X-Signature": good},
        "sha1": {"Signature": hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()},
    }
    return cases[name]


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "empty",
        "another-secret",
        "another-body",
        "uppercase-hex",
        "with-prefix",
        "truncated",
        "in-another-header",
        "sha1",
    ],
)
def test_bad_signature_is_401(client, case):
    body = json.dumps(inbound_payload(PLAIN)).encode()

    response = post(client, body, headers=_signature_case(case, body))

    assert response.status_code == 401
    assert_nothing_received()


def test_a_body_changed_after_signing_is_401(client):
    body = json.dumps(inbound_payload(PLAIN)).encode()
    tampered = json.dumps(inbound_payload(PLAIN, rcpt_to=("attacker@threadline.test",))).encode()

    assert post(client, tampered, headers={"Signature": signature(body)}).status_code == 401
    assert_nothing_received()


def test_the_signature_is_checked_before_the_content_type_and_payload(client):
    response = post(client, b"not json", headers={}, content_type="text/plain")

    assert response.status_code == 401


# ---------------------------------------------------------------- content type and payload


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""],
)
def test_other_content_types_are_415(client, content_type):
    response = post(client, inbound_payload(PLAIN), content_type=content_type)

    assert response.status_code == 415
    assert_nothing_received()


@pytest.mark.parametrize(
    "raw",
    ["missing", None, "", " \r\n\t", 42],
    ids=["missing", "null", "empty", "blank", "number"],
)
def test_no_raw_mime_is_422_and_says_so(client, raw):
    payload = inbound_payload(PLAIN)
    if raw == "missing":
        del payload["data"]["raw"]
    else:
        payload["data"]["raw"] = raw

    response = post(client, payload)

    assert response.status_code == 422
    assert "data.raw (the raw MIME message)" in response.get_data(as_text=True)
    assert_nothing_received()


def test_an_activity_webhook_pointed_here_is_422(client):
    payload = {
        "type": "activity.sent",
        "domain_id": "yv69oxl5kl785kw2",
        "created_at": "2020-11-27T10:08:08.298647Z",
        "webhook_id": "2351ndgwr4zqx8ko",
        "data": {"object": "activity", "id": "5fc0d006b42c3e16e1774882", "type": "sent"},
    }

    response = post(client, payload)

    assert response.status_code == 422
    assert "inbound route" in response.get_data(as_text=True)
    assert_nothing_received()


def _bad_payload(name: str) -> dict:
    payload = inbound_payload(PLAIN)
    data = payload["data"]
    if name == "no-data":
        del payload["data"]
    elif name == "data-not-object":
        payload["data"] = [data]
    elif name == "recipients-not-object":
        data["recipients"] = [RECIPIENT]
    elif name == "rcpt-to-not-list":
        data["recipients"]["rcptTo"] = RECIPIENT
    elif name == "rcpt-to-entry-a-string":
        data["recipients"]["rcptTo"] = [RECIPIENT]
    elif name == "rcpt-to-entry-without-email":
        data["recipients"]["rcptTo"] = [{"name": "Support"}]
    elif name == "rcpt-to-email-number":
        data["recipients"]["rcptTo"] = [{"email": 42}]
    elif name == "rcpt-to-line-break":
        data["recipients"]["rcptTo"] = [{"email": f"{RECIPIENT}\nBcc: evil@x.test"}]
    return payload


@pytest.mark.parametrize(
    "case",
    [
        "no-data",
        "data-not-object",
        "recipients-not-object",
        "rcpt-to-not-list",
        "rcpt-to-entry-a-string",
        "rcpt-to-entry-without-email",
        "rcpt-to-email-number",
        "rcpt-to-line-break",
    ],
)
def test_malformed_payload_is_422(client, case):
    response = post(client, _bad_payload(case))

    assert response.status_code == 422
    assert_nothing_received()


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b"null",
        b'"From: a@b.example"',
        b'{"type": "inbound.message", "data": {"raw": "\xfc"}}',
        b'{"type": "inbound.message", "data": {"raw": "From: a@b.example\\n\\n\\ud800\\n"}}',
        b'{"type": "inbound.message", "data": {"raw": "From: a@b.example\\n\\nhi\\n", '
        b'"recipients": {"rcptTo": [{"email": "\\ud800@x.test"}]}}}',
    ],
    ids=[
        "not-json",
        "array",
        "null",
        "string",
        "not-utf8",
        "raw-lone-surrogate",
        "recipient-lone-surrogate",
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
def test_mailersend_is_404_when_not_enabled(client):
    assert post(client, inbound_payload(PLAIN)).status_code == 404
    assert_nothing_received()


@pytest.mark.parametrize(
    "extra_settings", [{"INBOUND_EMAIL_MAX_BYTES": "4096"}], indirect=True, ids=["4096-bytes"]
)
def test_oversized_body_is_413_and_nothing_is_stored(client):
    response = post(client, inbound_payload(PLAIN + b"x" * 5000))

    assert response.status_code == 413
    assert_nothing_received()


def test_an_empty_secret_setting_never_authenticates(app):
    """An empty HMAC key is one anyone can sign with: refused even with a matching signature."""
    from flask import request

    from extensions import get_settings
    from ingress import mailersend

    settings = dataclasses.replace(get_settings(), mailersend_signing_secret="")
    body = json.dumps(inbound_payload(PLAIN)).encode()
    headers = {"Signature": signature(body, "")}
    with app.test_request_context(
        MAILERSEND_URL, method="POST", data=body, content_type="application/json", headers=headers
    ):
        with pytest.raises(IngressError) as refused:
            mailersend.extract(request, settings)
    assert refused.value.status == 503
