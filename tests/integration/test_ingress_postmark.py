"""Postmark inbound webhook: `RawEmail` from a JSON body or form fields, Basic auth."""

from __future__ import annotations

import json

import pytest

from tests.support.ingress_requests import (
    BASIC_CHALLENGE,
    POSTMARK_URL,
    assert_received_once,
    basic_auth,
    inbound_job_ids,
    inbound_rows,
    load_fixture,
    post_form,
    stored_keys,
)

PLAIN = load_fixture("plain-text.eml")
PLAIN_ID = "plain-text.1@customer.example.com"
ENABLE_RAW = "Include raw email content in JSON payload"


@pytest.fixture
def app_config(app_config, extra_settings):
    return {**app_config, "INBOUND_EMAIL_SERVICE": "postmark", **extra_settings}


def postmark_payload(raw: bytes, **fields) -> dict:
    """The shape Postmark posts: parsed fields plus RawEmail when raw content is enabled."""
    return {
        "From": "sam@customer.example.com",
        "To": "support@threadline.test",
        "Subject": "Where is my order?",
        "MessageID": "22c74902-a0c1-4511-804f-341342852c90",
        "TextBody": "Hello, order #1042 has not arrived yet.",
        "RawEmail": raw.decode("utf-8"),
        **fields,
    }


def post_json(client, payload, headers=None):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return client.post(
        POSTMARK_URL,
        data=body,
        content_type="application/json",
        headers=basic_auth() if headers is None else headers,
    )


def assert_nothing_received():
    assert inbound_rows() == []
    assert stored_keys() == []
    assert inbound_job_ids() == []


# ---------------------------------------------------------------- good requests


def test_json_good_request_prepends_the_original_recipient(client):
    payload = postmark_payload(PLAIN, OriginalRecipient="support@threadline.test")

    response = post_json(client, payload)

    assert response.status_code == 204
    assert_received_once(PLAIN, "postmark", PLAIN_ID, ["support@threadline.test"])


@pytest.mark.parametrize("recipient", [None, ""], ids=["absent", "empty"])
def test_json_without_original_recipient_stores_the_message_unchanged(client, recipient):
    payload = postmark_payload(PLAIN)
    if recipient is not None:
        payload["OriginalRecipient"] = recipient

    assert post_json(client, payload).status_code == 204
    assert_received_once(PLAIN, "postmark", PLAIN_ID)


def test_json_with_charset_parameter_is_json(client):
    response = client.post(
        POSTMARK_URL,
        data=json.dumps(postmark_payload(PLAIN)),
        content_type="application/json; charset=utf-8",
        headers=basic_auth(),
    )

    assert response.status_code == 204
    assert_received_once(PLAIN, "postmark", PLAIN_ID)


def test_json_inline_images_message_is_stored_byte_for_byte(client):
    raw = load_fixture("inline-images.eml")
    payload = postmark_payload(raw, OriginalRecipient="support@threadline.test")

    assert post_json(client, payload).status_code == 204
    assert_received_once(
        raw, "postmark", "inline-images.7f3a@customer.example.com", ["support@threadline.test"]
    )


@pytest.mark.parametrize("encoding", ["multipart", "urlencoded"])
def test_form_iso_8859_2_8bit_html_is_stored_byte_for_byte(client, encoding):
    raw = load_fixture("iso-8859-2-html.eml")
    fields = [("RawEmail", raw), ("OriginalRecipient", "faktury@threadline.test")]

    response = post_form(client, POSTMARK_URL, fields, headers=basic_auth(), encoding=encoding)

    assert response.status_code == 204
    assert_received_once(
        raw, "postmark", "iso-8859-2-html.20250114091244@example.pl", ["faktury@threadline.test"]
    )


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize("raw_email", [None, "", "   \r\n\t"], ids=["missing", "empty", "blank"])
def test_json_missing_or_blank_raw_email_is_422_and_says_how_to_enable_it(client, raw_email):
    payload = postmark_payload(PLAIN)
    if raw_email is None:
        del payload["RawEmail"]
    else:
        payload["RawEmail"] = raw_email

    response = post_json(client, payload)

    assert response.status_code == 422
    assert ENABLE_RAW in response.get_data(as_text=True)
    assert_nothing_received()


def test_json_null_raw_email_is_422(client):
    response = post_json(client, postmark_payload(PLAIN, RawEmail=None))

    assert response.status_code == 422
    assert ENABLE_RAW in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "fields",
    [[("OriginalRecipient", "support@threadline.test")], [("RawEmail", b"")], [("RawEmail", b" ")]],
    ids=["missing", "empty", "blank"],
)
@pytest.mark.parametrize("encoding", ["multipart", "urlencoded"])
def test_form_missing_or_blank_raw_email_is_422_and_says_how_to_enable_it(client, fields, encoding):
    response = post_form(client, POSTMARK_URL, fields, headers=basic_auth(), encoding=encoding)

    assert response.status_code == 422
    assert ENABLE_RAW in response.get_data(as_text=True)
    assert_nothing_received()


@pytest.mark.parametrize(
    "fields",
    [
        {"RawEmail": 42},
        {"RawEmail": ["From: a@b.example\n\nhi\n"]},
        {"RawEmail": {"raw": "From: a@b.example\n\nhi\n"}},
        {"RawEmail": True},
        {"OriginalRecipient": 42},
        {"OriginalRecipient": ["support@threadline.test"]},
        {"OriginalRecipient": {"Email": "support@threadline.test"}},
    ],
    ids=[
        "raw-number",
        "raw-list",
        "raw-object",
        "raw-bool",
        "recipient-number",
        "recipient-list",
        "recipient-object",
    ],
)
def test_json_field_of_the_wrong_type_is_422(client, fields):
    response = post_json(client, postmark_payload(PLAIN, **fields))

    assert response.status_code == 422
    assert_nothing_received()


@pytest.mark.parametrize(
    "fields",
    [
        [("RawEmail", PLAIN), ("RawEmail", PLAIN)],
        [("RawEmail[]", PLAIN)],
        [("RawEmail", PLAIN), ("OriginalRecipient", "a@x.test"), ("OriginalRecipient", "b@x.test")],
        [("RawEmail", PLAIN), ("OriginalRecipient", b"\xfcber@threadline.test")],
    ],
    ids=["raw-twice", "raw-as-array", "recipient-twice", "recipient-not-utf8"],
)
@pytest.mark.parametrize("encoding", ["multipart", "urlencoded"])
def test_form_field_of_the_wrong_shape_is_422(client, fields, encoding):
    response = post_form(client, POSTMARK_URL, fields, headers=basic_auth(), encoding=encoding)

    assert response.status_code == 422
    assert_nothing_received()


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'"From: a@b.example"',
        b"null",
        b'{"RawEmail": "\xfc"}',
        b'{"RawEmail": "From: a@b.example\\n\\n\\ud800\\n"}',
        b'{"RawEmail": "From: a@b.example\\n\\nhi\\n", "OriginalRecipient": "\\ud800@x.test"}',
    ],
    ids=[
        "not-json",
        "array",
        "string",
        "null",
        "not-utf8",
        "raw-lone-surrogate",
        "recipient-lone-surrogate",
    ],
)
def test_json_body_of_the_wrong_shape_is_422(client, body):
    response = post_json(client, body)

    assert response.status_code == 422
    assert_nothing_received()


@pytest.mark.parametrize(
    "headers",
    [{}, basic_auth("wrong-password"), basic_auth(user="postmark")],
    ids=["missing", "wrong-password", "wrong-user"],
)
def test_wrong_or_missing_credentials_are_401_with_challenge(client, headers):
    response = post_json(client, postmark_payload(PLAIN), headers=headers)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == BASIC_CHALLENGE
    assert_nothing_received()


@pytest.mark.parametrize(
    "extra_settings", [{"INBOUND_EMAIL_SERVICE": "relay"}], indirect=True, ids=["relay-only"]
)
def test_postmark_is_404_when_not_enabled(client):
    assert post_json(client, postmark_payload(PLAIN)).status_code == 404
    assert_nothing_received()


@pytest.mark.parametrize(
    "extra_settings", [{"INBOUND_EMAIL_MAX_BYTES": "4096"}], indirect=True, ids=["4096-bytes"]
)
def test_oversized_json_is_413_and_nothing_is_stored(client):
    response = post_json(client, postmark_payload(PLAIN + b"x" * 5000))

    assert response.status_code == 413
    assert_nothing_received()
