"""Brevo inbound parsing: parsed messages as JSON ({"items": [...]}), Basic auth, each rebuilt
into MIME, attachments fetched from Brevo's API (a local stand-in, its requests asserted).

The items follow Brevo's inbound parsing guide: Uuid, MessageId, InReplyTo, From {Name,
Address}, To and Cc lists, Headers (a list for a repeated header), RawTextBody, RawHtmlBody,
ExtractedMarkdownMessage, SpamScore and Attachments with a DownloadToken each.
"""

from __future__ import annotations

import json
import socket
from email import message_from_bytes, policy

import pytest
from sqlalchemy import select

from extensions import db
from models import Message
from tests.support.brevo_stand_in import Answer, BrevoStandIn
from tests.support.inbound import post_relay, work_inbound
from tests.support.ingress_requests import (
    BASIC_CHALLENGE,
    basic_auth,
    inbound_job_ids,
    inbound_rows,
    stored_bytes,
    stored_keys,
)

BREVO_URL = "/rails/action_mailbox/brevo/inbound_emails"
API_KEY = "xkeysib-test-key-for-the-stand-in"
PDF = b"%PDF-1.4\n% a tiny test file\n"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")


@pytest.fixture
def brevo_api():
    stand_in = BrevoStandIn().start()
    yield stand_in
    stand_in.stop()


@pytest.fixture
def app_config(app_config, brevo_api, extra_settings):
    return {
        **app_config,
        "INBOUND_EMAIL_SERVICE": "brevo",
        "BREVO_API_KEY": API_KEY,
        "BREVO_API_URL": brevo_api.api_url,
        **extra_settings,
    }


def item(number: int = 1, **fields) -> dict:
    """One received message as Brevo posts it."""
    message_id = f"<brevo-{number}@customer.example>"
    return {
        "Uuid": [f"aaaaaaaa-bbbb-cccc-dddd-00000000000{number}"],
        "MessageId": message_id,
        "InReplyTo": None,
        "From": {"Name": "Carla Customer", "Address": "carla@customer.example"},
        "To": [{"Name": None, "Address": "support@example.com"}],
        "Cc": [{"Name": None, "Address": "boss@customer.example"}],
        "ReplyTo": None,
        "SentAtDate": "Mon, 17 Jul 2023 11:11:22 -0700",
        "Subject": f"Order {number} has not arrived",
        "Attachments": [],
        "Headers": {
            "Received": [
                "by outbound.customer.example for <support@example.com>; Mon, 17 Jul 2023",
                "from [10.10.1.22] by smtp.customer.example; Mon, 17 Jul 2023",
            ],
            "DKIM-Signature": "v=1; a=rsa-sha256; d=customer.example; s=s1; b=abc",
            "MIME-Version": "1.0",
            "From": "Carla Customer <carla@customer.example>",
            "Date": "Mon, 17 Jul 2023 11:11:22 -0700",
            "Message-ID": message_id,
            "Subject": f"Order {number} has not arrived",
            "To": "support@example.com",
            "Cc": "boss@customer.example",
            "Content-Type": "multipart/alternative; boundary=0000000000003b5d2a0600b1cd85",
        },
        "SpamScore": 2.9,
        "ExtractedMarkdownMessage": "Where is my order?  \n",
        "ExtractedMarkdownSignature": "- Carla  \n",
        "RawHtmlBody": '<div dir="ltr">Where is <u>my order</u>?<div>- Carla</div></div>\r\n',
        "RawTextBody": "Where is *my order*?\r\n\r\n- Carla\r\n",
        **fields,
    }


def pdf_entry(token: str = "download-token-pdf") -> dict:
    return {
        "Name": "invoice.pdf",
        "ContentType": "application/pdf",
        "ContentLength": len(PDF),
        "ContentID": None,
        "DownloadToken": token,
    }


def png_entry() -> dict:
    return {
        "Name": "logo.png",
        "ContentType": "image/png",
        "ContentLength": len(PNG),
        "ContentID": "logo123",
        "DownloadToken": "download-token-png",
    }


def post_json(client, payload, headers=None, content_type="application/json"):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return client.post(
        BREVO_URL,
        data=body,
        content_type=content_type,
        headers=basic_auth() if headers is None else headers,
    )


def stored_messages() -> list:
    rows = inbound_rows()
    assert all((r.status, r.source) == ("pending", "brevo") for r in rows)
    assert inbound_job_ids() == [f"process-inbound-{r.id}" for r in rows]
    return [message_from_bytes(stored_bytes(r), policy=policy.default) for r in rows]


def content(part) -> str | bytes:
    value = part.get_content()
    return value.replace("\r\n", "\n") if isinstance(value, str) else value


def assert_nothing_received():
    assert inbound_rows() == []
    assert stored_keys() == []
    assert inbound_job_ids() == []


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v3"


# ---------------------------------------------------------------- good requests


def test_an_item_is_rebuilt_with_its_headers_and_both_bodies(client, brevo_api):
    response = post_json(client, {"items": [item()]})

    assert response.status_code == 204, response.get_data(as_text=True)
    [message] = stored_messages()
    [row] = inbound_rows()
    assert row.message_id == "brevo-1@customer.example"
    assert stored_bytes(row).startswith(b"X-Threadline-Rebuilt: brevo\r\n")
    assert message["Message-ID"] == "<brevo-1@customer.example>"
    assert message["From"] == "Carla Customer <carla@customer.example>"
    assert message["Date"] == "Mon, 17 Jul 2023 11:11:22 -0700"
    assert message.get_all("Received") == item()["Headers"]["Received"]
    assert message.get_all("MIME-Version") == ["1.0"]
    assert message.get_content_type() == "multipart/alternative"
    assert content(message.get_body(("plain",))) == "Where is *my order*?\n\n- Carla\n"
    assert content(message.get_body(("html",))) == item()["RawHtmlBody"].replace("\r\n", "\n")
    assert brevo_api.seen() == []


def test_every_item_is_a_message(client):
    assert post_json(client, {"items": [item(1), item(2)]}).status_code == 204

    assert [m["Subject"] for m in stored_messages()] == [
        "Order 1 has not arrived",
        "Order 2 has not arrived",
    ]


def test_no_items_is_204_and_nothing_stored(client):
    assert post_json(client, {"items": []}).status_code == 204
    assert_nothing_received()


def test_attachments_are_fetched_with_the_api_key_and_become_parts(client, brevo_api):
    brevo_api.answers["download-token-pdf"] = Answer(PDF, "application/pdf")
    brevo_api.answers["download-token-png"] = Answer(PNG, "image/png")

    response = post_json(client, {"items": [item(Attachments=[pdf_entry(), png_entry()])]})

    assert response.status_code == 204, response.get_data(as_text=True)
    assert brevo_api.seen() == [
        ("GET", "/v3/inbound/attachments/download-token-pdf", API_KEY),
        ("GET", "/v3/inbound/attachments/download-token-png", API_KEY),
    ]
    [message] = stored_messages()
    assert message["X-Threadline-Missing-Attachment"] is None
    [attachment] = message.iter_attachments()
    assert (attachment.get_filename(), attachment.get_content_type()) == (
        "invoice.pdf",
        "application/pdf",
    )
    assert attachment.get_content() == PDF
    image = next(p for p in message.walk() if p.get_content_type() == "image/png")
    assert image["Content-ID"] == "<logo123>"
    assert image.get_content_disposition() == "inline"
    assert image.get_content() == PNG
    assert message.get_body(("related",)).get_content_type() == "multipart/related"


def test_a_download_token_is_sent_url_quoted(client, brevo_api):
    brevo_api.answers["a%2Fb%20c"] = Answer(PDF, "application/pdf")

    assert post_json(client, {"items": [item(Attachments=[pdf_entry("a/b c")])]}).status_code == 204
    assert brevo_api.seen() == [("GET", "/v3/inbound/attachments/a%2Fb%20c", API_KEY)]


@pytest.mark.parametrize("extra_settings", [{"BREVO_API_KEY": ""}], indirect=True, ids=["no-key"])
def test_without_an_api_key_the_message_is_kept_and_the_attachment_named(client, brevo_api):
    assert post_json(client, {"items": [item(Attachments=[pdf_entry()])]}).status_code == 204

    assert brevo_api.seen() == []
    [message] = stored_messages()
    assert message["X-Threadline-Missing-Attachment"] == (
        f'"invoice.pdf" (application/pdf, {len(PDF)} bytes): '
        "not downloaded: BREVO_API_KEY is not set"
    )
    [note] = message.iter_attachments()
    assert note.get_filename() == "missing-attachments.txt"
    assert "invoice.pdf" in note.get_content()
    assert content(message.get_body(("plain",))) == "Where is *my order*?\n\n- Carla\n"


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_a_download_brevo_refuses_for_good_leaves_the_message_and_names_the_file(
    client, brevo_api, status
):
    brevo_api.answers["download-token-pdf"] = Answer(b'{"code":"x"}', "application/json", status)

    assert post_json(client, {"items": [item(Attachments=[pdf_entry()])]}).status_code == 204

    assert brevo_api.seen() == [("GET", "/v3/inbound/attachments/download-token-pdf", API_KEY)]
    [message] = stored_messages()
    assert message["X-Threadline-Missing-Attachment"].startswith(
        f'"invoice.pdf" (application/pdf, {len(PDF)} bytes): Brevo\'s attachment API answered '
        f"{status}"
    )


@pytest.mark.parametrize(
    "extra_settings", [{"ATTACHMENT_MAX_BYTES": "1024"}], indirect=True, ids=["1024-bytes"]
)
def test_an_attachment_over_the_limit_is_named_not_stored(client, brevo_api):
    big = PDF + b"0" * 2000
    brevo_api.answers["download-token-pdf"] = Answer(big, "application/pdf")

    assert post_json(client, {"items": [item(Attachments=[pdf_entry()])]}).status_code == 204

    [message] = stored_messages()
    assert "larger than the 1024 bytes allowed" in message["X-Threadline-Missing-Attachment"]
    assert not [p for p in message.walk() if p.get_content_type() == "application/pdf"]


@pytest.mark.parametrize("status", [500, 502, 503, 429, 408])
def test_a_passing_download_failure_is_429_so_brevo_posts_again(client, brevo_api, status):
    """Brevo discards a post answered 5xx or 4xx; 429 is the answer it retries."""
    brevo_api.answers["download-token-pdf"] = Answer(b"busy", "text/plain", status)
    payload = {"items": [item(1), item(2, Attachments=[pdf_entry()])]}

    response = post_json(client, payload)

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "600"
    assert brevo_api.seen() == [("GET", "/v3/inbound/attachments/download-token-pdf", API_KEY)]
    assert_nothing_received()  # not even item 1: the retry brings it again

    brevo_api.answers["download-token-pdf"] = Answer(PDF, "application/pdf")
    assert post_json(client, payload).status_code == 204
    assert len(stored_messages()) == 2


@pytest.mark.parametrize(
    "extra_settings", [{"BREVO_API_URL": closed_port_url()}], indirect=True, ids=["refused"]
)
def test_an_unreachable_brevo_api_is_429(client):
    response = post_json(client, {"items": [item(Attachments=[pdf_entry()])]})

    assert response.status_code == 429
    assert "unreachable" in response.get_data(as_text=True)
    assert_nothing_received()


def test_the_same_post_twice_is_one_message_each(client, brevo_api):
    brevo_api.answers["download-token-pdf"] = Answer(PDF, "application/pdf")
    payload = {"items": [item(1, Attachments=[pdf_entry()]), item(2)]}

    assert post_json(client, payload).status_code == 204
    assert post_json(client, payload).status_code == 204

    assert len(stored_messages()) == 2
    assert len(stored_keys()) == 2


def test_the_separate_fields_fill_in_headers_the_headers_lack(client):
    bare = item(
        Headers={"Received": "by mx.customer.example"},
        InReplyTo="<earlier@example.com>",
        ReplyTo={"Name": "Zoë Orders", "Address": "orders@customer.example"},
    )

    assert post_json(client, {"items": [bare]}).status_code == 204
    [message] = stored_messages()
    assert message["Message-ID"] == "<brevo-1@customer.example>"
    assert message["In-Reply-To"] == "<earlier@example.com>"
    assert message["From"] == "Carla Customer <carla@customer.example>"
    assert message["To"] == "support@example.com"
    assert message["Cc"] == "boss@customer.example"
    assert message["Reply-To"] == "Zoë Orders <orders@customer.example>"
    assert message["Subject"] == "Order 1 has not arrived"
    assert message["Date"] == "Mon, 17 Jul 2023 11:11:22 -0700"


def test_a_line_break_in_a_field_cannot_add_a_header(client):
    sneaky = item(
        Headers={},
        Subject="Invoice\r\nBcc: victim@elsewhere.example",
        From={"Name": "Eve\r\nX-Injected: 1", "Address": "eve@customer.example"},
    )

    assert post_json(client, {"items": [sneaky]}).status_code == 204
    [message] = stored_messages()
    assert message["Bcc"] is None and message["X-Injected"] is None
    assert message["Subject"] == "Invoice  Bcc: victim@elsewhere.example"


@pytest.mark.parametrize(
    "extra_settings", [{"INBOUND_EMAIL_SERVICE": "brevo,relay"}], indirect=True, ids=["+relay"]
)
@pytest.mark.parametrize("headers_too", [True, False], ids=["in-headers", "field-only"])
def test_a_rebuilt_reply_joins_its_conversation(app, client, inbox, headers_too):
    original = (
        b"From: Carla <carla@customer.example>\r\nTo: support@example.com\r\n"
        b"Subject: Printer on fire\r\nMessage-ID: <first@customer.example>\r\n\r\nHelp\r\n"
    )
    post_relay(client, original)
    work_inbound(app)
    reply = item(Subject="Something else entirely", InReplyTo="<first@customer.example>")
    reply["Headers"]["Subject"] = "Something else entirely"
    if headers_too:
        reply["Headers"]["In-Reply-To"] = "<first@customer.example>"
        reply["Headers"]["References"] = "<first@customer.example>"

    assert post_json(client, {"items": [reply]}).status_code == 204
    work_inbound(app)

    db.session.expire_all()
    first, second = db.session.scalars(select(Message).order_by(Message.id)).all()
    assert second.message_id == "brevo-1@customer.example"
    assert second.conversation_id == first.conversation_id
    assert second.threaded_by == "in_reply_to"


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "headers",
    [{}, basic_auth("wrong-password"), basic_auth(user="brevo")],
    ids=["missing", "wrong-password", "wrong-user"],
)
def test_wrong_or_missing_credentials_are_401_with_challenge(client, brevo_api, headers):
    payload = {"items": [item(Attachments=[pdf_entry()])]}

    response = post_json(client, payload, headers=headers)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == BASIC_CHALLENGE
    assert brevo_api.seen() == []
    assert_nothing_received()


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain"])
def test_a_body_that_is_not_json_is_415(client, content_type):
    response = post_json(client, {"items": [item()]}, content_type=content_type)

    assert response.status_code == 415
    assert_nothing_received()


@pytest.mark.parametrize(
    "payload",
    [
        b"{not json",
        b"[]",
        b"null",
        {"event": "delivered", "email": "a@b.example"},
        {"items": {"0": item()}},
        {"items": [item(), "From: a@b.example"]},
        {"items": [{}]},
        {"items": [item(From="carla@customer.example")]},
        {"items": [item(To=["support@example.com"])]},
        {"items": [item(Headers=["Subject: x"])]},
        {"items": [item(Headers={"Subject": 42})]},
        {"items": [item(Headers={"Bad Name": "x"})]},
        {"items": [item(RawTextBody=42)]},
        {"items": [item(MessageId=["<a@b>"])]},
        {"items": [item(Attachments={"Name": "x"})]},
        {"items": [item(Attachments=[pdf_entry() | {"DownloadToken": 42}])]},
        json.dumps({"items": [item()]}).replace("my order*", "\\udc00").encode(),
    ],
    ids=[
        "not-json",
        "array",
        "null",
        "event-webhook",
        "items-an-object",
        "item-a-string",
        "item-empty",
        "from-a-string",
        "to-strings",
        "headers-a-list",
        "header-a-number",
        "header-name-with-space",
        "text-a-number",
        "message-id-a-list",
        "attachments-an-object",
        "token-a-number",
        "lone-surrogate",
    ],
)
def test_a_malformed_payload_is_422(client, brevo_api, payload):
    response = post_json(client, payload)

    assert response.status_code == 422, response.get_data(as_text=True)
    assert brevo_api.seen() == []
    assert_nothing_received()


@pytest.mark.parametrize(
    "extra_settings", [{"INBOUND_EMAIL_SERVICE": "relay"}], indirect=True, ids=["relay-only"]
)
def test_brevo_is_404_when_not_enabled(client):
    assert post_json(client, {"items": [item()]}).status_code == 404
    assert_nothing_received()


@pytest.mark.parametrize(
    "extra_settings", [{"INBOUND_EMAIL_MAX_BYTES": "4096"}], indirect=True, ids=["4096-bytes"]
)
def test_an_oversized_message_is_kept_as_too_large_not_answered_413(client):
    """The provider drops a 4xx silently: the rebuilt message is kept, bounced as too large,
    for an admin to raise the limit and reprocess (tests/integration/test_ingress_refusals.py)."""
    big = item(RawTextBody="x" * 5000)

    assert post_json(client, {"items": [big]}).status_code == 204
    [row] = inbound_rows()
    assert row.status == "bounced" and row.reason.startswith("too large: ")
    assert inbound_job_ids() == []


def test_storage_down_is_429_so_brevo_retries(client, monkeypatch):
    """Brevo discards a 5xx and retries a 429: "try again later" is said as 429."""
    from storage import StorageError

    def broken(*args, **kwargs):
        raise StorageError("the S3 server is unreachable")

    monkeypatch.setattr("ingress.receive._store_verified", broken)
    response = post_json(client, {"items": [item()]})

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "60"
    assert inbound_rows() == []
