"""Mandrill inbound webhook: `mandrill_events`, X-Mandrill-Signature (base64 HMAC-SHA1)."""

from __future__ import annotations

import json

import pytest

from tests.support.ingress_requests import (
    MANDRILL_KEY,
    MANDRILL_URL,
    inbound_job_ids,
    inbound_rows,
    load_fixture,
    mandrill_signature,
    post_mandrill,
    stored_bytes,
    stored_keys,
    urlencoded,
)

PLAIN = load_fixture("plain-text.eml")
LOCAL_URL = "http://localhost" + MANDRILL_URL


@pytest.fixture
def app_config(app_config, extra_settings):
    return {
        **app_config,
        "INBOUND_EMAIL_SERVICE": "mandrill",
        "MANDRILL_INGRESS_API_KEY": MANDRILL_KEY,
        **extra_settings,
    }


def inbound_event(raw: bytes | str, **msg) -> dict:
    raw_msg = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    return {
        "event": "inbound",
        "ts": 1736935390,
        "msg": {"raw_msg": raw_msg, "email": "support@threadline.test", **msg},
    }


def events_field(events) -> list:
    return [("mandrill_events", events if isinstance(events, str) else json.dumps(events))]


def assert_nothing_received():
    assert inbound_rows() == []
    assert stored_keys() == []
    assert inbound_job_ids() == []


def assert_stored(raws: list[bytes], message_ids: list[str]):
    rows = inbound_rows()
    assert [row.message_id for row in rows] == message_ids
    assert [stored_bytes(row) for row in rows] == raws
    assert all(row.source == "mandrill" and row.status == "pending" for row in rows)
    assert inbound_job_ids() == [f"process-inbound-{row.id}" for row in rows]


# ---------------------------------------------------------------- health checks


@pytest.mark.parametrize("method", ["HEAD", "GET"])
def test_health_check_is_200_without_auth(client, method):
    response = client.open(MANDRILL_URL, method=method)

    assert response.status_code == 200
    assert response.data == b""
    assert_nothing_received()


# ---------------------------------------------------------------- good requests


def test_good_request_is_200_and_stores_the_raw_message(client):
    response = post_mandrill(client, events_field([inbound_event(PLAIN)]))

    assert response.status_code == 200
    assert_stored([PLAIN], ["plain-text.1@customer.example.com"])
    assert inbound_rows()[0].size == len(PLAIN)


def test_inline_images_message_is_stored_byte_for_byte(client):
    raw = load_fixture("inline-images.eml")

    assert post_mandrill(client, events_field([inbound_event(raw)])).status_code == 200
    assert_stored([raw], ["inline-images.7f3a@customer.example.com"])


def test_several_inbound_events_make_several_rows_and_others_are_skipped(client):
    first = PLAIN.replace(b"plain-text.1@", b"first@")
    second = load_fixture("inline-images.eml")
    third = PLAIN.replace(b"plain-text.1@", b"third@")
    events = [
        {"event": "sync", "type": "whitelist", "action": "add"},
        inbound_event(first),
        {"event": "hard_bounce", "msg": {"email": "x@example.com"}},
        inbound_event(second),
        inbound_event(third),
    ]

    response = post_mandrill(client, events_field(events))

    assert response.status_code == 200
    assert_stored(
        [first, second, third],
        [
            "first@customer.example.com",
            "inline-images.7f3a@customer.example.com",
            "third@customer.example.com",
        ],
    )


@pytest.mark.parametrize(
    "events",
    [[], [{"event": "sync", "type": "blacklist"}], [{"event": "send", "msg": {"raw_msg": "x"}}]],
    ids=["empty", "sync", "send-with-raw"],
)
def test_only_non_inbound_events_are_200_and_store_nothing(client, events):
    response = post_mandrill(client, events_field(events))

    assert response.status_code == 200
    assert_nothing_received()


@pytest.mark.parametrize(
    "extra_settings",
    [{"APP_URL": "https://help.example.com/"}],
    indirect=True,
    ids=["behind-a-proxy"],
)
def test_signature_over_the_public_app_url_is_accepted_behind_a_proxy(client):
    fields = events_field([inbound_event(PLAIN)])

    response = post_mandrill(client, fields, url="https://help.example.com" + MANDRILL_URL)

    assert response.status_code == 200
    assert len(inbound_rows()) == 1


def test_signature_covers_other_form_params_sorted_by_name(client):
    fields = [("zeta", "last"), *events_field([inbound_event(PLAIN)]), ("alpha", "first")]

    assert post_mandrill(client, fields).status_code == 200
    assert len(inbound_rows()) == 1


# ---------------------------------------------------------------- refusals


def post_with_signature(client, fields, signature: str | None):
    body, content_type = urlencoded(fields)
    headers = {} if signature is None else {"X-Mandrill-Signature": signature}
    return client.post(MANDRILL_URL, data=body, content_type=content_type, headers=headers)


def test_missing_signature_is_401(client):
    response = post_with_signature(client, events_field([inbound_event(PLAIN)]), None)

    assert response.status_code == 401
    assert_nothing_received()


@pytest.mark.parametrize(
    "signer",
    [
        lambda f: mandrill_signature("not-the-key", LOCAL_URL, f),
        lambda f: mandrill_signature(MANDRILL_KEY, "http://localhost/elsewhere", f),
        lambda f: mandrill_signature(MANDRILL_KEY, LOCAL_URL, events_field([])),
        lambda f: mandrill_signature(MANDRILL_KEY, LOCAL_URL, f).lower(),
        lambda f: "",
        lambda f: "garbage signature",
    ],
    ids=["other-key", "other-url", "other-body", "mangled", "empty", "garbage"],
)
def test_forged_signature_is_401(client, signer):
    fields = events_field([inbound_event(PLAIN)])

    response = post_with_signature(client, fields, signer(fields))

    assert response.status_code == 401
    assert_nothing_received()


MALFORMED = {
    "not-json": "this is not json",
    "json-object-not-array": json.dumps(inbound_event("From: a@b.example\n\nhi\n")),
    "json-string": json.dumps("[]"),
    "array-with-number": "[1]",
    "array-with-string": '["inbound"]',
    "array-with-null": "[null]",
    "array-with-list": "[[]]",
    "inbound-without-msg": '[{"event": "inbound"}]',
    "inbound-msg-null": '[{"event": "inbound", "msg": null}]',
    "inbound-msg-string": '[{"event": "inbound", "msg": "From: a@b.example"}]',
    "msg-without-raw-msg": '[{"event": "inbound", "msg": {"email": "s@threadline.test"}}]',
    "raw-msg-number": '[{"event": "inbound", "msg": {"raw_msg": 5}}]',
    "raw-msg-null": '[{"event": "inbound", "msg": {"raw_msg": null}}]',
    "raw-msg-list": '[{"event": "inbound", "msg": {"raw_msg": ["From: a@b.example"]}}]',
    "raw-msg-lone-surrogate": '[{"event": "inbound", "msg": {"raw_msg": "From: a\\n\\n\\ud800"}}]',
    "good-then-bad": json.dumps([inbound_event(PLAIN), {"event": "inbound", "msg": {}}]),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_mandrill_events_are_422(client, name):
    response = post_mandrill(client, events_field(MALFORMED[name]))

    assert response.status_code == 422
    assert_nothing_received()


@pytest.mark.parametrize(
    "fields",
    [[("other", "x")], [*events_field("[]"), *events_field("[]")], [("mandrill_events", b"\xff")]],
    ids=["missing", "twice", "not-utf8"],
)
def test_missing_repeated_or_undecodable_mandrill_events_are_422(client, fields):
    response = post_mandrill(client, fields)

    assert response.status_code == 422
    assert_nothing_received()


@pytest.mark.parametrize(
    "extra_settings", [{"INBOUND_EMAIL_SERVICE": "relay"}], indirect=True, ids=["relay-only"]
)
def test_mandrill_is_404_when_not_enabled(client):
    assert client.head(MANDRILL_URL).status_code == 404
    assert client.get(MANDRILL_URL).status_code == 404
    assert post_mandrill(client, events_field([inbound_event(PLAIN)])).status_code == 404
    assert_nothing_received()
