"""Mailgun ingress (forward to .../mime): `body-mime`, HMAC-SHA256 signature, 2-minute window."""

from __future__ import annotations

import time

import pytest

from tests.support.ingress_requests import (
    MAILGUN_KEY,
    MAILGUN_URL,
    assert_received_once,
    inbound_job_ids,
    inbound_rows,
    load_fixture,
    mailgun_signature,
    mailgun_signed,
    multipart,
    post_form,
    post_mailgun,
    stored_keys,
)

PLAIN = load_fixture("plain-text.eml")
PLAIN_ID = "plain-text.1@customer.example.com"
# Mailgun posts the parsed fields beside the raw MIME; they must not confuse anything.
MAILGUN_EXTRAS = [
    ("sender", "sam@customer.example.com"),
    ("from", "Sam Customer <sam@customer.example.com>"),
    ("subject", "Where is my order?"),
]


@pytest.fixture
def app_config(app_config, extra_settings):
    return {
        **app_config,
        "INBOUND_EMAIL_SERVICE": "mailgun",
        "MAILGUN_INGRESS_SIGNING_KEY": MAILGUN_KEY,
        **extra_settings,
    }


def assert_nothing_received():
    assert inbound_rows() == []
    assert stored_keys() == []
    assert inbound_job_ids() == []


def signed_with(body_fields, timestamp=None, key=MAILGUN_KEY):
    return [*mailgun_signed(key, timestamp), *body_fields]


# ---------------------------------------------------------------- good requests


def test_good_request_prepends_the_recipient(client):
    response = post_mailgun(client, PLAIN, "support@threadline.test", MAILGUN_EXTRAS)

    assert response.status_code == 204
    assert_received_once(PLAIN, "mailgun", PLAIN_ID, ["support@threadline.test"])


def test_without_recipient_the_message_is_stored_unchanged(client):
    assert post_mailgun(client, PLAIN).status_code == 204
    assert_received_once(PLAIN, "mailgun", PLAIN_ID)


@pytest.mark.parametrize("encoding", ["multipart", "urlencoded"])
def test_iso_8859_2_8bit_html_in_a_form_field_is_stored_byte_for_byte(client, encoding):
    raw = load_fixture("iso-8859-2-html.eml")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # a form parser decoding UTF-8 would corrupt these bytes
    fields = signed_with([("body-mime", raw), ("recipient", "faktury@threadline.test")])

    response = post_form(client, MAILGUN_URL, fields, encoding=encoding)

    assert response.status_code == 204
    assert_received_once(
        raw,
        "mailgun",
        "iso-8859-2-html.20250114091244@example.pl",
        ["faktury@threadline.test"],
    )


def test_inline_images_message_is_stored_byte_for_byte(client):
    raw = load_fixture("inline-images.eml")

    assert post_mailgun(client, raw, "support@threadline.test").status_code == 204
    assert_received_once(
        raw, "mailgun", "inline-images.7f3a@customer.example.com", ["support@threadline.test"]
    )


def test_a_timestamp_just_inside_the_window_is_accepted(client):
    assert post_mailgun(client, PLAIN, timestamp=int(time.time()) - 100).status_code == 204
    assert len(inbound_rows()) == 1


# ---------------------------------------------------------------- signature refusals


def forged(fields):
    """Same timestamp/token, signature computed under another key."""
    stamp, token = fields[0][1], fields[1][1]
    return [fields[0], fields[1], ("signature", mailgun_signature("not-the-key", stamp, token))]


def _case(name):
    now = str(int(time.time()))
    good = mailgun_signed()
    stamp, token, signature = (v for _, v in good)
    cases = {
        "forged": forged(good),
        "signed-by-another-key": mailgun_signed("another-signing-key"),
        "tampered-token": [good[0], ("token", token + "0"), good[2]],
        "tampered-timestamp": [("timestamp", str(int(stamp) + 1)), good[1], good[2]],
        "stale": mailgun_signed(timestamp=int(time.time()) - 121),
        "an-hour-old": mailgun_signed(timestamp=int(time.time()) - 3600),
        "timestamp-not-integer": [
            ("timestamp", now + ".5"),
            ("token", token),
            ("signature", mailgun_signature(MAILGUN_KEY, now + ".5", token)),
        ],
        "timestamp-words": [
            ("timestamp", "yesterday"),
            ("token", token),
            ("signature", mailgun_signature(MAILGUN_KEY, "yesterday", token)),
        ],
        "timestamp-empty": [
            ("timestamp", ""),
            ("token", token),
            ("signature", mailgun_signature(MAILGUN_KEY, "", token)),
        ],
        "signature-twice": [*good, ("signature", signature)],
        "timestamp-twice": [*good, ("timestamp", stamp)],
        "token-twice": [*good, ("token", token)],
        "signature-missing": good[:2],
        "token-missing": [good[0], good[2]],
        "timestamp-missing": good[1:],
        "signature-empty": [*good[:2], ("signature", "")],
        "signature-uppercase-hex": [*good[:2], ("signature", signature.upper())],
        "nothing-signed": [],
    }
    return cases[name]


SIGNATURE_CASES = [
    "forged",
    "signed-by-another-key",
    "tampered-token",
    "tampered-timestamp",
    "stale",
    "an-hour-old",
    "timestamp-not-integer",
    "timestamp-words",
    "timestamp-empty",
    "signature-twice",
    "timestamp-twice",
    "token-twice",
    "signature-missing",
    "token-missing",
    "timestamp-missing",
    "signature-empty",
    "signature-uppercase-hex",
    "nothing-signed",
]


@pytest.mark.parametrize("case", SIGNATURE_CASES)
def test_bad_signature_is_401(client, case):
    fields = [*_case(case), ("body-mime", PLAIN), ("recipient", "support@threadline.test")]

    response = post_form(client, MAILGUN_URL, fields)

    assert response.status_code == 401
    assert_nothing_received()


def test_the_signature_is_checked_before_the_payload(client):
    response = post_form(client, MAILGUN_URL, [*_case("forged"), ("recipient", "a@b.example")])

    assert response.status_code == 401


# ---------------------------------------------------------------- payload refusals


@pytest.mark.parametrize(
    "body_fields",
    [
        [("recipient", "support@threadline.test")],
        [("body-mime", PLAIN), ("body-mime", PLAIN)],
        [("body-mime", PLAIN), ("recipient", "a@threadline.test"), ("recipient", "b@x.test")],
        [("body-mime", b"")],
        [("body-mime", b" \r\n\t\n")],
        [("body-plain", PLAIN)],
        [("body-mime", PLAIN), ("recipient", b"\xfcber@threadline.test")],
    ],
    ids=[
        "body-mime-missing",
        "body-mime-twice",
        "recipient-twice",
        "body-mime-empty",
        "body-mime-blank",
        "only-body-plain",
        "recipient-not-utf8",
    ],
)
def test_malformed_payload_is_422(client, body_fields):
    response = post_form(client, MAILGUN_URL, signed_with(body_fields))

    assert response.status_code == 422
    assert_nothing_received()


def test_multipart_without_boundary_is_422(client):
    fields = signed_with([("body-mime", PLAIN)])
    body, _ = multipart(fields)
    response = client.post(MAILGUN_URL, data=body, content_type="multipart/form-data")

    assert response.status_code == 422
    assert_nothing_received()


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize(
    "extra_settings", [{"INBOUND_EMAIL_SERVICE": "relay"}], indirect=True, ids=["relay-only"]
)
def test_mailgun_is_404_when_not_enabled(client):
    response = post_mailgun(client, PLAIN, "support@threadline.test")

    assert response.status_code == 404
    assert_nothing_received()


@pytest.mark.parametrize(
    "extra_settings", [{"INBOUND_EMAIL_MAX_BYTES": "4096"}], indirect=True, ids=["4096-bytes"]
)
def test_oversized_form_is_413_and_nothing_is_stored(client):
    raw = PLAIN + b"x" * 5000

    response = post_mailgun(client, raw, "support@threadline.test")

    assert response.status_code == 413
    assert_nothing_received()


def test_rails_era_mailgun_ingress_api_key_is_accepted(app, app_config, monkeypatch):
    from app import create_app

    monkeypatch.setenv("MAILGUN_INGRESS_API_KEY", "rails-era-mailgun-key")
    config = {k: v for k, v in app_config.items() if k != "MAILGUN_INGRESS_SIGNING_KEY"}
    rails_app = create_app(config)
    client = rails_app.test_client()
    with rails_app.app_context():
        assert post_mailgun(client, PLAIN).status_code == 401  # the default test key is wrong
        assert post_mailgun(client, PLAIN, key="rails-era-mailgun-key").status_code == 204
        assert [row.source for row in inbound_rows()] == ["mailgun"]


def test_a_recipient_with_a_line_break_is_422(client):
    response = post_mailgun(client, PLAIN, recipient="support@threadline.test\nBcc: evil@x")
    assert response.status_code == 422
    assert inbound_rows() == []
