"""Resend ingress: a Svix-signed `email.received` event, the raw MIME fetched through the API.

Events are built from Resend's webhook documentation and signed here the Svix way with a test
`whsec_` secret. Resend's API is a local stand-in (tests/support/resend_stand_in.py); every test
asserts exactly the requests it saw: the API key goes to the API only, never to the download.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest

from tests.support.ingress_requests import (
    assert_received_once,
    inbound_job_ids,
    inbound_rows,
    load_fixture,
    stored_keys,
)
from tests.support.resend_stand_in import ResendStandIn

RESEND_URL = "/rails/action_mailbox/resend/inbound_emails"
SIGNING_KEY = b"resend-test-signing-key-32-bytes"
SECRET = "whsec_" + base64.b64encode(SIGNING_KEY).decode()
API_KEY = "re_test_0123456789abcdefghijklmn"
EMAIL_ID = "4ef9a417-02e9-4d39-ad75-9611e0fcc33c"
PLAIN = load_fixture("plain-text.eml")
PLAIN_ID = "plain-text.1@customer.example.com"


@pytest.fixture
def resend_api():
    stand_in = ResendStandIn().start()
    yield stand_in
    stand_in.stop()


@pytest.fixture
def app_config(app_config, extra_settings, resend_api):
    return {
        **app_config,
        "INBOUND_EMAIL_SERVICE": "resend",
        "RESEND_INGRESS_SIGNING_SECRET": SECRET,
        "RESEND_API_KEY": API_KEY,
        "RESEND_API_URL": resend_api.url,
        **extra_settings,
    }


def received_event(email_id: str | None = EMAIL_ID, event_type="email.received") -> dict:
    """The documented email.received event: metadata only."""
    data = {
        "email_id": email_id,
        "created_at": "2026-02-22T23:41:11.894719+00:00",
        "from": "Sam Customer <sam@customer.example.com>",
        "to": ["support@threadline.test"],
        "bcc": [],
        "cc": [],
        "message_id": f"<{PLAIN_ID}>",
        "subject": "Where is my order?",
        "attachments": [],
    }
    if email_id is None:
        del data["email_id"]
    return {"type": event_type, "created_at": "2026-02-22T23:41:12.126Z", "data": data}


def svix_signature(key: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    """Svix: base64 HMAC-SHA256 of "{id}.{timestamp}.{body}" keyed by the decoded secret."""
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def svix_headers(body: bytes, key=SIGNING_KEY, timestamp=None, msg_id="msg_2abcTestDelivery"):
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "svix-id": msg_id,
        "svix-timestamp": stamp,
        "svix-signature": "v1," + svix_signature(key, msg_id, stamp, body),
    }


def encode(event) -> bytes:
    return json.dumps(event).encode() if not isinstance(event, bytes) else event


def post_event(client, event=None, headers=None, content_type="application/json"):
    body = encode(received_event() if event is None else event)
    headers = svix_headers(body) if headers is None else headers
    return client.post(RESEND_URL, data=body, content_type=content_type, headers=headers)


def api_request(email_id=EMAIL_ID):
    return ("GET", f"/emails/receiving/{email_id}", f"Bearer {API_KEY}")


def download_request(resend_api, email_id=EMAIL_ID):
    return ("GET", resend_api.raw_path(email_id), None)  # no API key sent with the download


def seen(resend_api):
    return [r.summary() for r in resend_api.requests]


def assert_nothing_received():
    assert inbound_rows() == []
    assert stored_keys() == []
    assert inbound_job_ids() == []


# ---------------------------------------------------------------- good requests


def test_received_email_is_fetched_and_stored_byte_for_byte(client, resend_api):
    resend_api.received_email(EMAIL_ID, PLAIN)

    response = post_event(client)

    assert response.status_code == 204
    assert_received_once(PLAIN, "resend", PLAIN_ID)
    assert seen(resend_api) == [api_request(), download_request(resend_api)]
    api_call = resend_api.requests[0]
    assert api_call.headers["User-Agent"]  # Resend refuses API requests without one (403)
    assert api_call.headers["Accept"] == "application/json"


def test_iso_8859_2_8bit_message_is_stored_byte_for_byte(client, resend_api):
    raw = load_fixture("iso-8859-2-html.eml")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    resend_api.received_email(EMAIL_ID, raw)

    assert post_event(client).status_code == 204
    assert_received_once(raw, "resend", "iso-8859-2-html.20250114091244@example.pl")


def test_a_retried_delivery_stores_one_message(client, resend_api):
    resend_api.received_email(EMAIL_ID, PLAIN)

    assert post_event(client).status_code == 204
    assert post_event(client).status_code == 204

    assert_received_once(PLAIN, "resend", PLAIN_ID)
    assert seen(resend_api) == [api_request(), download_request(resend_api)] * 2


def test_any_of_several_signatures_may_match_while_the_secret_rotates(client, resend_api):
    resend_api.received_email(EMAIL_ID, PLAIN)
    body = encode(received_event())
    headers = svix_headers(body)
    old = svix_signature(
        b"the-previous-secret", headers["svix-id"], headers["svix-timestamp"], body
    )
    headers["svix-signature"] = f"v1,{old} v1a,ZWQyNTUxOQ== {headers['svix-signature']}"

    assert post_event(client, body, headers).status_code == 204
    assert_received_once(PLAIN, "resend", PLAIN_ID)


@pytest.mark.parametrize("offset", [-290, 290], ids=["290s-old", "290s-ahead"])
def test_a_timestamp_inside_five_minutes_either_way_is_accepted(client, resend_api, offset):
    resend_api.received_email(EMAIL_ID, PLAIN)
    body = encode(received_event())

    response = post_event(client, body, svix_headers(body, timestamp=int(time.time()) + offset))

    assert response.status_code == 204
    assert len(inbound_rows()) == 1


@pytest.mark.parametrize("event_type", ["email.sent", "email.delivered", "contact.created"])
def test_other_events_are_acknowledged_and_nothing_is_fetched(client, resend_api, event_type):
    response = post_event(client, received_event(event_type=event_type))

    assert response.status_code == 204
    assert_nothing_received()
    assert resend_api.requests == []


# ---------------------------------------------------------------- signature refusals


def _signature_case(name: str, body: bytes) -> dict:
    now = int(time.time())
    good = svix_headers(body)
    msg_id, stamp, signature = good["svix-id"], good["svix-timestamp"], good["svix-signature"]
    bare = signature.removeprefix("v1,")
    cases = {
        "signed-by-another-key": svix_headers(body, key=b"another-key"),
        "key-not-base64-decoded": svix_headers(body, key=SECRET.encode()),
        "tampered-body": svix_headers(body + b" "),
        "tampered-id": {**good, "svix-id": msg_id + "x"},
        "tampered-timestamp": {**good, "svix-timestamp": str(int(stamp) + 1)},
        "stale": svix_headers(body, timestamp=now - 301),
        "an-hour-old": svix_headers(body, timestamp=now - 3600),
        "from-the-future": svix_headers(body, timestamp=now + 301),
        "timestamp-not-integer": svix_headers(body, timestamp=f"{now}.5"),
        "timestamp-words": svix_headers(body, timestamp="yesterday"),
        "id-missing": {k: v for k, v in good.items() if k != "svix-id"},
        "timestamp-missing": {k: v for k, v in good.items() if k != "svix-timestamp"},
        "signature-missing": {k: v for k, v in good.items() if k != "svix-signature"},
        "signature-empty": {**good, "svix-signature": ""},
        "signature-without-version": {**good, "svix-signature": bare},
        "signature-other-version": {**good, "svix-signature": "v1a," + bare},
        "signature-hex": {
            **good,
            "svix-signature": "v1," + base64.b64decode(bare).hex(),
        },
        "nothing-signed": {},
    }
    return cases[name]


SIGNATURE_CASES = [
    "signed-by-another-key",
    "key-not-base64-decoded",
    "tampered-body",
    "tampered-id",
    "tampered-timestamp",
    "stale",
    "an-hour-old",
    "from-the-future",
    "timestamp-not-integer",
    "timestamp-words",
    "id-missing",
    "timestamp-missing",
    "signature-missing",
    "signature-empty",
    "signature-without-version",
    "signature-other-version",
    "signature-hex",
    "nothing-signed",
]


@pytest.mark.parametrize("case", SIGNATURE_CASES)
def test_bad_signature_is_401_and_resend_is_not_asked(client, resend_api, case):
    resend_api.received_email(EMAIL_ID, PLAIN)
    body = encode(received_event())

    response = post_event(client, body, _signature_case(case, body))

    assert response.status_code == 401
    assert_nothing_received()
    assert resend_api.requests == []


def test_the_signature_is_checked_before_the_content_type(client, resend_api):
    body = encode(received_event())
    headers = _signature_case("stale", body)

    assert post_event(client, body, headers, content_type="text/plain").status_code == 401


@pytest.mark.parametrize(
    "extra_settings",
    [{"RESEND_INGRESS_SIGNING_SECRET": "whsec_not base64!"}],
    indirect=True,
    ids=["secret-not-base64"],
)
def test_an_unusable_signing_secret_is_503_so_resend_retries_after_the_fix(client, resend_api):
    response = post_event(client)

    assert response.status_code == 503
    assert "RESEND_INGRESS_SIGNING_SECRET" in response.get_data(as_text=True)
    assert_nothing_received()
    assert resend_api.requests == []


# ---------------------------------------------------------------- content type and payload


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "message/rfc822"]
)
def test_wrong_content_type_is_415(client, resend_api, content_type):
    resend_api.received_email(EMAIL_ID, PLAIN)

    assert post_event(client, content_type=content_type).status_code == 415
    assert_nothing_received()
    assert resend_api.requests == []


@pytest.mark.parametrize(
    "event",
    [
        b"{not json",
        b"\xff\xfe{}",
        b"",
        [received_event()],
        {"data": received_event()["data"]},
        {"type": 7, "data": received_event()["data"]},
        {"type": "email.received"},
        {"type": "email.received", "data": [EMAIL_ID]},
        received_event(email_id=None),
        received_event(email_id=""),
        received_event(email_id="   "),
        received_event(email_id=12345),
    ],
    ids=[
        "not-json",
        "not-utf8",
        "empty-body",
        "array",
        "type-missing",
        "type-not-string",
        "data-missing",
        "data-not-object",
        "email-id-missing",
        "email-id-empty",
        "email-id-blank",
        "email-id-number",
    ],
)
def test_malformed_event_is_422_and_resend_is_not_asked(client, resend_api, event):
    assert post_event(client, event).status_code == 422
    assert_nothing_received()
    assert resend_api.requests == []


# ---------------------------------------------------------------- Resend's API refusing


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410])
def test_a_permanent_api_answer_is_422_with_the_reason(client, resend_api, status):
    resend_api.fail(resend_api.api_path(EMAIL_ID), status)

    response = post_event(client)

    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert f"answered {status}" in text and EMAIL_ID in text
    assert ("RESEND_API_KEY" in text) == (status in (401, 403))
    assert_nothing_received()
    assert seen(resend_api) == [api_request()]


def test_an_unknown_email_id_is_422_and_asked_for_under_its_quoted_path(client, resend_api):
    response = post_event(client, received_event(email_id="../../domains"))

    assert response.status_code == 422
    assert_nothing_received()
    assert seen(resend_api) == [api_request("..%2F..%2Fdomains")]


def test_no_raw_download_is_422(client, resend_api):
    resend_api.received_email(EMAIL_ID, None)

    response = post_event(client)

    assert response.status_code == 422
    assert "no raw download" in response.get_data(as_text=True)
    assert_nothing_received()
    assert seen(resend_api) == [api_request()]


@pytest.mark.parametrize(
    "download_url",
    ["http://downloads.example.invalid/raw.eml", "ftp://inbound-cdn.resend.com/raw.eml", "raw"],
)
def test_a_download_url_neither_https_nor_on_the_api_origin_is_not_followed(
    client, resend_api, download_url
):
    resend_api.received_email(EMAIL_ID, PLAIN, download_url=download_url)

    response = post_event(client)

    assert response.status_code == 422
    assert "not https" in response.get_data(as_text=True)
    assert_nothing_received()
    assert seen(resend_api) == [api_request()]


@pytest.mark.parametrize("status", [403, 404])
def test_a_refused_download_is_422(client, resend_api, status):
    resend_api.received_email(EMAIL_ID, PLAIN)
    resend_api.fail(resend_api.raw_path(EMAIL_ID), status)

    assert post_event(client).status_code == 422
    assert_nothing_received()
    assert seen(resend_api) == [api_request(), download_request(resend_api)]


def test_an_empty_download_is_422(client, resend_api):
    resend_api.received_email(EMAIL_ID, b"")

    assert post_event(client).status_code == 422
    assert_nothing_received()
    assert seen(resend_api) == [api_request(), download_request(resend_api)]


def test_a_redirect_from_the_api_is_not_followed_with_the_key(client, resend_api):
    # Followed, the redirect would carry the Authorization header there and succeed.
    resend_api.received_email("elsewhere", PLAIN)
    location = resend_api.url + resend_api.api_path("elsewhere")
    resend_api.redirects[resend_api.api_path(EMAIL_ID)] = location

    assert post_event(client).status_code == 422
    assert_nothing_received()
    assert seen(resend_api) == [api_request()]


# ---------------------------------------------------------------- Resend unavailable: 503


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 429])
def test_a_transient_api_answer_is_503_so_resend_retries(client, resend_api, status):
    resend_api.fail(resend_api.api_path(EMAIL_ID), status)

    response = post_event(client)

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "60"
    assert f"answered {status}" in response.get_data(as_text=True)
    assert_nothing_received()
    assert seen(resend_api) == [api_request()]


def test_a_transient_download_failure_is_503(client, resend_api):
    resend_api.received_email(EMAIL_ID, PLAIN)
    resend_api.fail(resend_api.raw_path(EMAIL_ID), 503)

    assert post_event(client).status_code == 503
    assert_nothing_received()
    assert seen(resend_api) == [api_request(), download_request(resend_api)]


def test_an_unreadable_api_answer_is_503(client, resend_api):
    resend_api.answer(resend_api.api_path(EMAIL_ID), 200, b"<html>gateway</html>", "text/html")

    assert post_event(client).status_code == 503
    assert_nothing_received()


def test_an_unreachable_api_is_503(client, resend_api):
    resend_api.stop()  # its port now refuses connections

    response = post_event(client)

    assert response.status_code == 503
    assert "unreachable" in response.get_data(as_text=True)
    assert_nothing_received()


def test_an_api_that_never_answers_is_503(client, resend_api, monkeypatch):
    from ingress import resend

    monkeypatch.setattr(resend, "HTTP_TIMEOUT", 0.5)
    resend_api.received_email(EMAIL_ID, PLAIN)
    resend_api.hang.add(resend_api.api_path(EMAIL_ID))

    assert post_event(client).status_code == 503
    assert_nothing_received()
    assert seen(resend_api) == [api_request()]


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize(
    "extra_settings", [{"INBOUND_EMAIL_SERVICE": "relay"}], indirect=True, ids=["relay-only"]
)
def test_resend_is_404_when_not_enabled(client, resend_api):
    resend_api.received_email(EMAIL_ID, PLAIN)

    assert post_event(client).status_code == 404
    assert_nothing_received()
    assert resend_api.requests == []


@pytest.mark.parametrize(
    "extra_settings", [{"INBOUND_EMAIL_MAX_BYTES": "4096"}], indirect=True, ids=["4096-bytes"]
)
def test_an_oversized_message_is_413_and_nothing_is_stored(client, resend_api):
    resend_api.received_email(EMAIL_ID, PLAIN + b"x" * 5000)

    response = post_event(client)

    assert response.status_code == 413
    assert "INBOUND_EMAIL_MAX_BYTES" in response.get_data(as_text=True)
    assert_nothing_received()
    assert seen(resend_api) == [api_request(), download_request(resend_api)]


@pytest.mark.parametrize(
    "extra_settings", [{"INBOUND_EMAIL_MAX_BYTES": "4096"}], indirect=True, ids=["4096-bytes"]
)
def test_a_message_exactly_at_the_limit_is_accepted(client, resend_api):
    raw = PLAIN + b"x" * (4096 - len(PLAIN))
    resend_api.received_email(EMAIL_ID, raw)

    assert post_event(client).status_code == 204
    assert_received_once(raw, "resend", PLAIN_ID)


@pytest.mark.parametrize(
    "extra_settings", [{"INBOUND_EMAIL_MAX_BYTES": "4096"}], indirect=True, ids=["4096-bytes"]
)
def test_an_oversized_event_is_413_before_resend_is_asked(client, resend_api):
    resend_api.received_email(EMAIL_ID, PLAIN)
    event = received_event()
    event["data"]["subject"] = "x" * 5000

    assert post_event(client, event).status_code == 413
    assert_nothing_received()
    assert resend_api.requests == []
