"""SendGrid Inbound Parse ("Post the raw, full MIME message"): `email` + `envelope`, Basic auth."""

from __future__ import annotations

import json

import pytest

from tests.support.ingress_requests import (
    BASIC_CHALLENGE,
    SENDGRID_URL,
    assert_received_once,
    basic_auth,
    inbound_job_ids,
    inbound_rows,
    load_fixture,
    post_form,
    stored_bytes,
    stored_keys,
)

PLAIN = load_fixture("plain-text.eml")
PLAIN_ID = "plain-text.1@customer.example.com"
ENVELOPE = {"to": ["support@threadline.test", "billing@threadline.test"], "from": "sam@example.com"}
# The other fields SendGrid posts beside the raw message.
SENDGRID_EXTRAS = [
    ("charsets", '{"to":"UTF-8","from":"UTF-8","subject":"UTF-8"}'),
    ("SPF", "pass"),
    ("dkim", "{@customer.example.com : pass}"),
    ("sender_ip", "192.0.2.10"),
]


@pytest.fixture
def app_config(app_config, extra_settings):
    return {**app_config, "INBOUND_EMAIL_SERVICE": "sendgrid", **extra_settings}


def post_sendgrid(client, fields, headers=None, encoding="multipart"):
    auth = basic_auth() if headers is None else headers
    return post_form(client, SENDGRID_URL, fields, headers=auth, encoding=encoding)


def assert_nothing_received():
    assert inbound_rows() == []
    assert stored_keys() == []
    assert inbound_job_ids() == []


# ---------------------------------------------------------------- good requests


def test_each_envelope_to_is_prepended_the_last_on_top(client):
    fields = [("envelope", json.dumps(ENVELOPE)), ("email", PLAIN), *SENDGRID_EXTRAS]

    response = post_sendgrid(client, fields)

    assert response.status_code == 204
    row = assert_received_once(PLAIN, "sendgrid", PLAIN_ID, ENVELOPE["to"])
    assert stored_bytes(row) == (
        b"X-Original-To: billing@threadline.test\nX-Original-To: support@threadline.test\n" + PLAIN
    )


@pytest.mark.parametrize(
    "envelope", [None, '{"to": []}', '{"to": [], "from": "x@y.example"}'], ids=str
)
def test_without_envelope_recipients_the_message_is_stored_unchanged(client, envelope):
    fields = [("email", PLAIN)] + ([("envelope", envelope)] if envelope else [])

    assert post_sendgrid(client, fields).status_code == 204
    assert_received_once(PLAIN, "sendgrid", PLAIN_ID)


@pytest.mark.parametrize("encoding", ["multipart", "urlencoded"])
def test_iso_8859_2_8bit_html_in_the_email_field_is_stored_byte_for_byte(client, encoding):
    raw = load_fixture("iso-8859-2-html.eml")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    fields = [("email", raw), ("envelope", '{"to": ["faktury@threadline.test"]}')]

    assert post_sendgrid(client, fields, encoding=encoding).status_code == 204
    assert_received_once(
        raw, "sendgrid", "iso-8859-2-html.20250114091244@example.pl", ["faktury@threadline.test"]
    )


def test_inline_images_message_is_stored_byte_for_byte(client):
    raw = load_fixture("inline-images.eml")

    assert post_sendgrid(client, [("email", raw), *SENDGRID_EXTRAS]).status_code == 204
    assert_received_once(raw, "sendgrid", "inline-images.7f3a@customer.example.com")


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "envelope",
    [
        "not json",
        "{'to': ['single-quoted@example.com']}",
        '["support@threadline.test"]',
        '"support@threadline.test"',
        "null",
        "{}",
        '{"from": "sam@example.com"}',
        '{"to": "support@threadline.test"}',
        '{"to": null}',
        '{"to": {"0": "support@threadline.test"}}',
        '{"to": ["support@threadline.test", 5]}',
        '{"to": [null]}',
        '{"to": [["nested@threadline.test"]]}',
        b'{"to": ["\xfcber@threadline.test"]}',
    ],
    ids=[
        "not-json",
        "python-repr",
        "array",
        "string",
        "null",
        "to-missing",
        "only-from",
        "to-string",
        "to-null",
        "to-object",
        "to-with-number",
        "to-with-null",
        "to-nested-list",
        "not-utf8",
    ],
)
def test_malformed_envelope_is_422(client, envelope):
    response = post_sendgrid(client, [("email", PLAIN), ("envelope", envelope)])

    assert response.status_code == 422
    assert_nothing_received()


@pytest.mark.parametrize(
    "fields",
    [
        [("envelope", json.dumps(ENVELOPE)), ("text", "Hello")],
        [("email", b"")],
        [("email", b"\r\n  \n")],
        [("email", PLAIN), ("email", PLAIN)],
        [("email", PLAIN), ("envelope", json.dumps(ENVELOPE)), ("envelope", json.dumps(ENVELOPE))],
    ],
    ids=["email-missing", "email-empty", "email-blank", "email-twice", "envelope-twice"],
)
def test_missing_or_repeated_fields_are_422(client, fields):
    response = post_sendgrid(client, fields)

    assert response.status_code == 422
    assert_nothing_received()


def test_missing_email_tells_how_to_enable_raw_mode(client):
    response = post_sendgrid(client, [("text", "parsed, not raw")])

    assert response.status_code == 422
    assert "Post the raw, full MIME message" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "headers",
    [{}, basic_auth("wrong-password"), basic_auth(user="sendgrid")],
    ids=["missing", "wrong-password", "wrong-user"],
)
def test_wrong_or_missing_credentials_are_401_with_challenge(client, headers):
    response = post_sendgrid(client, [("email", PLAIN)], headers=headers)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == BASIC_CHALLENGE
    assert_nothing_received()


@pytest.mark.parametrize(
    "extra_settings", [{"INBOUND_EMAIL_SERVICE": "relay"}], indirect=True, ids=["relay-only"]
)
def test_sendgrid_is_404_when_not_enabled(client):
    assert post_sendgrid(client, [("email", PLAIN)]).status_code == 404
    assert_nothing_received()


@pytest.mark.parametrize(
    "extra_settings", [{"INBOUND_EMAIL_MAX_BYTES": "4096"}], indirect=True, ids=["4096-bytes"]
)
def test_oversized_message_is_kept_as_too_large_not_answered_413(client):
    """SendGrid drops a 4xx without retrying: the message is kept, bounced as too large, for
    an admin to raise the limit and reprocess (tests/integration/test_ingress_refusals.py)."""
    response = post_sendgrid(client, [("email", PLAIN + b"x" * 5000)])

    assert response.status_code == 204
    [row] = inbound_rows()
    assert row.status == "bounced" and row.reason.startswith("too large: ")
    assert inbound_job_ids() == []


@pytest.mark.parametrize("to", ["a@x.example\nBcc: evil@x.example", "a@x.example\r", "a\0@x"])
def test_a_recipient_with_a_line_break_cannot_inject_headers(client, to):
    envelope = json.dumps({"to": ["support@threadline.test", to]})
    response = post_sendgrid(client, [("envelope", envelope), ("email", PLAIN)])
    assert response.status_code == 422
    assert "contains a line break" in response.get_data(as_text=True)
    assert_nothing_received()
