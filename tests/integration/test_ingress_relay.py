"""Relay ingress (Postfix, Exim, Qmail, curl, getmail6) through the real app, plus routing rules
shared by every ingress: which ones are enabled, the Rails-era setting names, no CSRF token."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
from werkzeug.test import EnvironBuilder, run_wsgi_app
from werkzeug.wrappers import Response

from tests.support.ingress_requests import (
    ALL_URLS,
    BASIC_CHALLENGE,
    MAILGUN_KEY,
    MAILGUN_URL,
    MANDRILL_KEY,
    MANDRILL_URL,
    POSTMARK_URL,
    RELAY_URL,
    SENDGRID_URL,
    assert_received_once,
    basic_auth,
    inbound_job_ids,
    inbound_rows,
    load_fixture,
    mailgun_signed,
    post_form,
    post_mailgun,
    post_mandrill,
    stored_keys,
)

PLAIN = load_fixture("plain-text.eml")
PLAIN_ID = "plain-text.1@customer.example.com"


@pytest.fixture
def app_config(app_config, extra_settings):
    return {**app_config, **extra_settings}


def post_relay(client, raw: bytes, content_type="message/rfc822", headers=None, **kw):
    return client.post(
        RELAY_URL,
        data=raw,
        content_type=content_type,
        headers=basic_auth() if headers is None else headers,
        **kw,
    )


def assert_nothing_received():
    assert inbound_rows() == []
    assert stored_keys() == []
    assert inbound_job_ids() == []


def post_chunked(app, raw: bytes) -> Response:
    """POST as a WSGI server hands over a chunked body: no CONTENT_LENGTH, input terminated.
    (The test client always computes a Content-Length, so the environ is built here.)"""
    environ = EnvironBuilder(
        path=RELAY_URL,
        method="POST",
        input_stream=io.BytesIO(raw),
        content_type="message/rfc822",
        headers=basic_auth(),
    ).get_environ()
    del environ["CONTENT_LENGTH"]
    environ["wsgi.input_terminated"] = True
    app_iter, status, headers = run_wsgi_app(app.wsgi_app, environ, buffered=True)
    return Response(app_iter, status, headers)


class CountingStream(io.BytesIO):
    """The request body as a WSGI server hands it over, counting what the app reads."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size=-1):
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk

    def readline(self, size=-1):
        chunk = super().readline(size)
        self.bytes_read += len(chunk)
        return chunk


# ---------------------------------------------------------------- good requests


def test_good_request_is_stored_recorded_and_enqueued(client):
    response = post_relay(client, PLAIN)

    assert response.status_code == 204
    assert response.data == b""
    assert_received_once(PLAIN, "relay", PLAIN_ID)


def test_iso_8859_2_8bit_html_is_stored_byte_for_byte(client):
    raw = load_fixture("iso-8859-2-html.eml")
    # The fixture is what it claims: CRLF, 8-bit ISO-8859-2 HTML that is not valid UTF-8.
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert b"Content-Transfer-Encoding: 8bit" in raw
    assert "Zażółć gęślą jaźń".encode("iso-8859-2") in raw
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")

    response = post_relay(client, raw)

    assert response.status_code == 204
    assert_received_once(raw, "relay", "iso-8859-2-html.20250114091244@example.pl")


def test_inline_images_message_is_stored_byte_for_byte(client):
    raw = load_fixture("inline-images.eml")
    assert b"multipart/related" in raw
    assert raw.count(b"Content-Type: image/png") == 2
    assert b"cid:logo.png@customer.example.com" in raw and b"cid:chart.png@" in raw

    response = post_relay(client, raw)

    assert response.status_code == 204
    assert_received_once(raw, "relay", "inline-images.7f3a@customer.example.com")


@pytest.mark.parametrize(
    "content_type", ["message/rfc822; charset=x", "Message/RFC822", "message/rfc822;format=flowed"]
)
def test_media_type_parameters_and_case_are_ignored(client, content_type):
    response = post_relay(client, PLAIN, content_type=content_type)

    assert response.status_code == 204
    assert_received_once(PLAIN, "relay", PLAIN_ID)


def test_message_without_message_id_gets_one_from_its_checksum(client):
    raw = b"From: a@example.com\nTo: support@threadline.test\nSubject: no id\n\nHello\n"

    assert post_relay(client, raw).status_code == 204

    row = assert_received_once(raw, "relay", _generated_id(raw))
    assert row.message_id.endswith(".invalid")  # never collides with a real domain


@pytest.mark.parametrize("bad_id", [b"<a\x00b@x.example>", b"<a\x07b@x.example>", b"<a b@x>"])
def test_an_unusable_message_id_is_replaced_by_the_checksum_one(client, bad_id):
    raw = b"From: a@example.com\nTo: support@threadline.test\nMessage-ID: " + bad_id + b"\n\nHi\n"

    assert post_relay(client, raw).status_code == 204

    assert_received_once(raw, "relay", _generated_id(raw))


def _generated_id(raw: bytes) -> str:
    return f"{hashlib.sha1(raw).hexdigest()}@generated.threadline.invalid"


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/octet-stream",
        "multipart/form-data; boundary=x",
        "message/rfc822x",
        None,
    ],
)
def test_wrong_media_type_is_415(client, content_type):
    response = client.post(RELAY_URL, data=PLAIN, content_type=content_type, headers=basic_auth())

    assert response.status_code == 415
    assert "message/rfc822" in response.get_data(as_text=True)
    assert_nothing_received()


def test_empty_body_is_422(client):
    response = post_relay(client, None, input_stream=io.BytesIO(b""))

    assert response.request.headers["Content-Length"] == "0"
    assert response.status_code == 422
    assert_nothing_received()


def test_empty_body_without_content_length_is_422(client):
    response = post_relay(client, b"")  # the test client sends no Content-Length here

    assert "Content-Length" not in response.request.headers
    assert response.status_code == 422
    assert_nothing_received()


def test_empty_chunked_body_is_422(app):
    # curl -T - sends stdin chunked: no Content-Length, the server marks the input terminated.
    assert post_chunked(app, b"").status_code == 422
    assert_nothing_received()


def test_chunked_body_without_length_is_stored(app):
    response = post_chunked(app, PLAIN)

    assert response.status_code == 204
    assert_received_once(PLAIN, "relay", PLAIN_ID)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic_auth("wrong-password"),
        basic_auth(user="admin"),
        basic_auth(""),
        {"Authorization": "Bearer ingress-password-for-tests"},
        {"Authorization": "Basic not-base64!"},
    ],
    ids=["missing", "wrong-password", "wrong-user", "empty-password", "bearer", "garbled"],
)
def test_wrong_or_missing_credentials_are_401_with_challenge(client, headers):
    response = post_relay(client, PLAIN, headers=headers)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == BASIC_CHALLENGE
    assert_nothing_received()


def test_credentials_are_checked_before_the_media_type(client):
    response = post_relay(client, PLAIN, content_type="text/plain", headers={})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == BASIC_CHALLENGE


def test_get_is_not_allowed(client):
    assert client.get(RELAY_URL, headers=basic_auth()).status_code == 405


# ---------------------------------------------------------------- size limit

LIMIT = {"INBOUND_EMAIL_MAX_BYTES": "4096"}


@pytest.mark.parametrize("extra_settings", [LIMIT], indirect=True, ids=["4096-bytes"])
def test_oversized_body_is_413_with_only_its_header_bytes_read(client):
    raw = PLAIN + b"x" * 100_000
    body = CountingStream(raw)

    response = client.post(
        RELAY_URL,
        input_stream=body,
        content_length=len(raw),
        content_type="message/rfc822",
        headers=basic_auth(),
    )

    assert response.status_code == 413
    # only the first bytes, for the refusal's From/To/Subject (test_ingress_refusals.py)
    assert body.bytes_read <= 32 * 1024
    assert_nothing_received()


@pytest.mark.parametrize("extra_settings", [LIMIT], indirect=True, ids=["4096-bytes"])
def test_body_of_exactly_the_limit_is_accepted(client):
    raw = PLAIN + b"y" * (4096 - len(PLAIN))

    assert post_relay(client, raw).status_code == 204
    assert_received_once(raw, "relay", PLAIN_ID)


@pytest.mark.parametrize("extra_settings", [LIMIT], indirect=True, ids=["4096-bytes"])
def test_oversized_chunked_body_is_413(app):
    response = post_chunked(app, PLAIN + b"z" * 10_000)

    assert response.status_code == 413
    assert_nothing_received()


# ---------------------------------------------------------------- which ingresses answer


@pytest.mark.parametrize(
    "extra_settings",
    [{"INBOUND_EMAIL_SERVICE": "mailgun", "MAILGUN_INGRESS_SIGNING_KEY": MAILGUN_KEY}],
    indirect=True,
    ids=["mailgun-only"],
)
def test_relay_is_404_when_not_enabled(client):
    response = post_relay(client, PLAIN)

    assert response.status_code == 404
    assert "not enabled" in response.get_json()["error"]
    assert_nothing_received()


def test_only_the_default_relay_is_enabled_by_default(client):
    """INBOUND_EMAIL_SERVICE defaults to relay: every other ingress is 404, even when signed."""
    postmark = client.post(POSTMARK_URL, json={"RawEmail": "x"}, headers=basic_auth())
    sendgrid = client.post(SENDGRID_URL, data={"email": "x"}, headers=basic_auth())
    assert (postmark.status_code, sendgrid.status_code) == (404, 404)
    assert post_mailgun(client, PLAIN).status_code == 404
    assert post_mandrill(client, [("mandrill_events", "[]")]).status_code == 404
    assert client.head(MANDRILL_URL).status_code == 404
    assert client.get(MANDRILL_URL).status_code == 404
    assert_nothing_received()


ALL_FIVE = {
    "INBOUND_EMAIL_SERVICE": " Relay , postmark,sendgrid,mailgun , mandrill",
    "MAILGUN_INGRESS_SIGNING_KEY": MAILGUN_KEY,
    "MANDRILL_INGRESS_API_KEY": MANDRILL_KEY,
}


@pytest.mark.parametrize("extra_settings", [ALL_FIVE], indirect=True, ids=["all-five"])
def test_a_comma_separated_list_enables_several_and_none_needs_a_csrf_token(client):
    # CSRF protection is on in this app: an ordinary form post without a token is refused ...
    login = client.post("/login", data={"email": "a@example.com", "password": "x"})
    assert login.status_code == 400
    # ... while every provider posts without one (they authenticate with secrets instead).
    messages = [PLAIN.replace(b"plain-text.1@", f"plain-{name}@".encode()) for name in ALL_URLS]
    relay, postmark, sendgrid, mailgun, mandrill = messages
    events = json.dumps([{"event": "inbound", "msg": {"raw_msg": mandrill.decode()}}])
    responses = [
        post_relay(client, relay),
        client.post(POSTMARK_URL, json={"RawEmail": postmark.decode()}, headers=basic_auth()),
        client.post(SENDGRID_URL, data={"email": sendgrid.decode()}, headers=basic_auth()),
        post_mailgun(client, mailgun),
        post_mandrill(client, [("mandrill_events", events)]),
    ]
    assert [r.status_code for r in responses] == [204, 204, 204, 204, 200]

    rows = inbound_rows()
    assert [row.source for row in rows] == list(ALL_URLS)
    assert [row.message_id for row in rows] == [
        f"plain-{name}@customer.example.com" for name in ALL_URLS
    ]
    assert len(inbound_job_ids()) == 5


def test_rails_era_setting_names_are_accepted(app, app_config, monkeypatch):
    from app import create_app

    monkeypatch.setenv("RAILS_INBOUND_EMAIL_SERVICE", "relay,postmark")
    monkeypatch.setenv("RAILS_INBOUND_EMAIL_PASSWORD", "rails-era-password")
    config = {
        k: v
        for k, v in app_config.items()
        if k not in ("INBOUND_EMAIL_SERVICE", "INBOUND_EMAIL_PASSWORD")
    }
    rails_app = create_app(config)
    client = rails_app.test_client()
    with rails_app.app_context():
        # The password from the alias is the one required ...
        assert post_relay(client, PLAIN).status_code == 401
        response = post_relay(client, PLAIN, headers=basic_auth("rails-era-password"))
        assert response.status_code == 204
        # ... and both ingresses named by the alias answer.
        response = client.post(
            POSTMARK_URL,
            json={"RawEmail": PLAIN.decode().replace("plain-text.1@", "pm@")},
            headers=basic_auth("rails-era-password"),
        )
        assert response.status_code == 204
        assert post_mailgun(client, PLAIN).status_code == 404
        assert [row.source for row in inbound_rows()] == ["relay", "postmark"]


# ---------------------------------------------------------------- the SMTP connection (SPF)

CONNECTION = {
    "X-Threadline-Client-Address": "2001:db8::25",
    "X-Threadline-Helo": "mail.customer.example.com",
    "X-Threadline-Mail-From": "<bounces@customer.example.com>",
}


def test_the_relays_connection_headers_are_recorded_on_the_row(client):
    response = post_relay(client, PLAIN, headers={**basic_auth(), **CONNECTION})

    assert response.status_code == 204
    row = assert_received_once(PLAIN, "relay", PLAIN_ID)
    assert (row.client_address, row.helo, row.mail_from) == (
        "2001:db8::25",
        "mail.customer.example.com",
        "bounces@customer.example.com",
    )


def test_a_post_without_connection_headers_records_none(client):
    assert post_relay(client, PLAIN).status_code == 204
    row = assert_received_once(PLAIN, "relay", PLAIN_ID)
    assert (row.client_address, row.helo, row.mail_from) == (None, None, None)


@pytest.mark.parametrize(
    "headers, recorded",
    [
        # The null sender of a delivery report is kept as "", not as "not given".
        ({"X-Threadline-Mail-From": "", "X-Threadline-Helo": "mx.example.net"},
         (None, "mx.example.net", "")),
        # Mail submitted on the MTA's host: Postfix and Exim expand the address to "".
        ({"X-Threadline-Client-Address": "", "X-Threadline-Mail-From": "a@b.example"},
         (None, None, "a@b.example")),
        # An IPv4-mapped IPv6 address is the IPv4 address SPF checks; brackets are dropped.
        ({"X-Threadline-Client-Address": "[::ffff:192.0.2.7]"}, ("192.0.2.7", None, None)),
        ({"X-Threadline-Client-Address": "IPv6:2001:DB8:0:0::1"}, ("2001:db8::1", None, None)),
    ],
    ids=["null-sender", "local-submission", "ipv4-mapped", "ipv6-prefix"],
)  # fmt: skip
def test_connection_values_are_normalised(client, headers, recorded):
    assert post_relay(client, PLAIN, headers={**basic_auth(), **headers}).status_code == 204
    row = assert_received_once(PLAIN, "relay", PLAIN_ID)
    assert (row.client_address, row.helo, row.mail_from) == recorded


@pytest.mark.parametrize(
    "header, value, says",
    [
        ("X-Threadline-Client-Address", "mail.example.com", "is not an IP address"),
        ("X-Threadline-Client-Address", "192.0.2.300", "is not an IP address"),
        ("X-Threadline-Helo", "mx.example.com\x00evil", "control character"),
        ("X-Threadline-Helo", "h" * 256, "longer than 255 characters"),
        ("X-Threadline-Mail-From", "a@b.example\x07", "control character"),
        ("X-Threadline-Mail-From", "a@" + "b" * 520, "longer than 512 characters"),
    ],
)
def test_a_bad_connection_value_is_422_and_nothing_is_received(client, header, value, says):
    response = post_relay(client, PLAIN, headers={**basic_auth(), header: value})

    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert text.startswith(header) and says in text
    assert_nothing_received()


def test_connection_headers_need_the_ingress_password(client):
    response = post_relay(client, PLAIN, headers={**basic_auth("wrong"), **CONNECTION})
    assert response.status_code == 401
    assert_nothing_received()


@pytest.mark.parametrize(
    "extra_settings",
    [{"INBOUND_EMAIL_SERVICE": "relay,mailgun", "MAILGUN_INGRESS_SIGNING_KEY": MAILGUN_KEY}],
    indirect=True,
    ids=["relay-and-mailgun"],
)
def test_connection_headers_on_another_ingress_are_ignored(client):
    """Only the relay ingress, authenticated with the ingress password, may say where a
    message came from: a provider's webhook carrying the headers records nothing."""
    fields = [*mailgun_signed(), ("body-mime", PLAIN)]
    response = post_form(client, MAILGUN_URL, fields, headers=CONNECTION)

    assert response.status_code == 204
    row = assert_received_once(PLAIN, "mailgun", PLAIN_ID)
    assert (row.client_address, row.helo, row.mail_from) == (None, None, None)
