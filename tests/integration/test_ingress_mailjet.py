"""Mailjet Parse API: a parsed message as JSON, Basic auth, rebuilt into MIME and stored.

The payloads follow Mailjet's Parse API guide ("What is delivered to your webhook", "Manage
attachments"): Headers with lists for repeated headers, Parts naming Text-part, Html-part and
AttachmentN by ContentRef, attachments base64.
"""

from __future__ import annotations

import base64
import json
from email import message_from_bytes, policy

import pytest
from sqlalchemy import select

from extensions import db
from models import Message
from tests.support.inbound import post_relay, work_inbound
from tests.support.ingress_requests import (
    BASIC_CHALLENGE,
    basic_auth,
    inbound_job_ids,
    inbound_rows,
    stored_bytes,
    stored_keys,
)

MAILJET_URL = "/rails/action_mailbox/mailjet/inbound_emails"
MESSAGE_ID = "CAE5Zh0ZpHZ6G5DC+He5426a4RkVab7uWaTDwiMcHzOR=YB3urA@mail.gmail.com"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")


@pytest.fixture
def app_config(app_config, extra_settings):
    return {**app_config, "INBOUND_EMAIL_SERVICE": "mailjet", **extra_settings}


def mailjet_payload(**fields) -> dict:
    """The guide's example message, addressed to the test inbox."""
    return {
        "Sender": "pilot@mailjet.example",
        "Recipient": "support@example.com",
        "Date": "20150410T160638",
        "From": "Pilot <pilot@mailjet.example>",
        "Subject": "Hey! It's Friday!",
        "Headers": {
            "Return-Path": ["<pilot@mailjet.example>"],
            "Received": [
                "by 10.107.134.160 with HTTP; Fri, 10 Apr 2015 09:06:38 -0700 (PDT)",
                "from mail.mailjet.example by parse-in1.mailjet.com; Fri, 10 Apr 2015 16:06:39",
            ],
            "MIME-Version": ["1.0"],
            "Content-Transfer-Encoding": ["quoted-printable"],
            "Content-Type": ["multipart/alternative; boundary=001a1141f3c406f1b2051360f37d"],
            "X-Gm-Message-State": ["ALoCoQlJBEYSiauMbHc8RXQpv3sUJvPmYAd7exYJKZIZFR"],
            "Date": "Fri, 10 Apr 2015 18:06:38 +0200",
            "Message-ID": f"<{MESSAGE_ID}>",
            "Subject": "Hey! It's Friday!",
            "From": "Pilot <pilot@mailjet.example>",
            "To": "support@example.com",
        },
        "Parts": [
            {"Headers": {"Content-Type": "text/plain; charset=UTF-8"}, "ContentRef": "Text-part"},
            {
                "Headers": {
                    "Content-Type": "text/html; charset=UTF-8",
                    "Content-Transfer-Encoding": "quoted-printable",
                },
                "ContentRef": "Html-part",
            },
        ],
        "Text-part": "Hi,\n\nImportant notice: it's Friday. Friday *afternoon*, even!\n",
        "Html-part": '<div dir="ltr">Hi,<div>Important notice: it&#39;s Friday.</div></div>\n',
        "SpamAssassinScore": "0.602",
        "CustomID": "helloworld",
        "Payload": "{'message': 'helloworld'}",
        **fields,
    }


def with_attachment(payload: dict, ref: str, headers: dict, content: bytes) -> dict:
    payload["Parts"].append({"Headers": headers, "ContentRef": ref})
    payload[ref] = base64.b64encode(content).decode()
    return payload


def post_json(client, payload, headers=None, content_type="application/json"):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return client.post(
        MAILJET_URL,
        data=body,
        content_type=content_type,
        headers=basic_auth() if headers is None else headers,
    )


def the_stored_message():
    rows = inbound_rows()
    assert len(rows) == 1, rows
    row = rows[0]
    assert (row.status, row.source) == ("pending", "mailjet")
    assert inbound_job_ids() == [f"process-inbound-{row.id}"]
    raw = stored_bytes(row)
    return row, raw, message_from_bytes(raw, policy=policy.default)


def content(part) -> str | bytes:
    """A part's content; text with the stored CRLF line ends read as newlines."""
    value = part.get_content()
    return value.replace("\r\n", "\n") if isinstance(value, str) else value


def assert_nothing_received():
    assert inbound_rows() == []
    assert stored_keys() == []
    assert inbound_job_ids() == []


# ---------------------------------------------------------------- good requests


def test_the_guides_message_is_rebuilt_with_its_headers_and_both_bodies(client):
    response = post_json(client, mailjet_payload())

    assert response.status_code == 204, response.get_data(as_text=True)
    row, raw, message = the_stored_message()
    assert row.message_id == MESSAGE_ID
    assert raw.startswith(b"X-Original-To: support@example.com\nX-Threadline-Rebuilt: mailjet\r\n")
    assert message["Message-ID"] == f"<{MESSAGE_ID}>"
    assert message["Date"] == "Fri, 10 Apr 2015 18:06:38 +0200"
    assert message["Subject"] == "Hey! It's Friday!"
    assert message.get_all("Received") == mailjet_payload()["Headers"]["Received"]
    assert message["Return-Path"] == "<pilot@mailjet.example>"
    # The original MIME headers describe a tree that is not there any more: the rebuild's own.
    assert message.get_all("MIME-Version") == ["1.0"]
    assert message.get_content_type() == "multipart/alternative"
    assert b"001a1141f3c406f1b2051360f37d" not in raw
    assert content(message.get_body(("plain",))) == mailjet_payload()["Text-part"]
    assert content(message.get_body(("html",))) == mailjet_payload()["Html-part"]


def test_attachments_and_inline_images_are_parts_of_the_rebuild(client):
    payload = with_attachment(
        mailjet_payload(),
        "Attachment1",
        {
            "Content-Type": "text/plain; charset=utf-8; name=helloworld.txt",
            "Content-Transfer-Encoding": "base64",
            "Content-Disposition": "attachment; filename=helloworld.txt",
        },
        b"Hello World!",
    )
    payload = with_attachment(
        payload,
        "InlineAttachment1",
        {
            "Content-Type": "image/png; name=logo.png",
            "Content-Disposition": "inline; filename=logo.png",
            "Content-ID": "<logo@mailjet.example>",
        },
        PNG,
    )

    assert post_json(client, payload).status_code == 204
    _, _, message = the_stored_message()
    assert message.get_content_type() == "multipart/mixed"
    attachments = list(message.iter_attachments())
    assert [(a.get_filename(), content(a)) for a in attachments] == [
        ("helloworld.txt", "Hello World!")
    ]
    related = message.get_body(("related",))
    assert related.get_content_type() == "multipart/related"
    image = next(p for p in related.iter_parts() if p.get_content_type() == "image/png")
    assert image["Content-ID"] == "<logo@mailjet.example>"
    assert image.get_content_disposition() == "inline"
    assert image.get_content() == PNG


def test_an_attachment_the_payload_lacks_is_named_not_fatal(client):
    payload = mailjet_payload()
    payload["Parts"].append(
        {
            "Headers": {
                "Content-Type": "application/pdf",
                "Content-Disposition": 'attachment; filename="q.pdf"',
            },
            "ContentRef": "Attachment1",
        }
    )

    assert post_json(client, payload).status_code == 204
    _, _, message = the_stored_message()
    assert message["X-Threadline-Missing-Attachment"] == (
        '"q.pdf" (application/pdf): Attachment1 is not in the payload'
    )
    note = next(iter(message.iter_attachments()))
    assert note.get_filename() == "missing-attachments.txt"
    assert "q.pdf" in note.get_content()


def test_the_same_post_twice_is_one_message(client):
    """A retried post rebuilds the same bytes: one stored object, one row, one job."""
    payload = with_attachment(
        mailjet_payload(), "Attachment1", {"Content-Type": "application/pdf"}, b"%PDF-1.4"
    )

    assert post_json(client, payload).status_code == 204
    assert post_json(client, payload).status_code == 204
    the_stored_message()
    assert len(stored_keys()) == 1


def test_top_level_fields_fill_in_headers_the_headers_lack(client):
    payload = mailjet_payload(To="support@example.com")
    for name in ("From", "To", "Subject"):
        del payload["Headers"][name]
    payload["Cc"] = "boss@mailjet.example"

    assert post_json(client, payload).status_code == 204
    _, _, message = the_stored_message()
    assert message["From"] == "Pilot <pilot@mailjet.example>"
    assert message["To"] == "support@example.com"
    assert message["Cc"] == "boss@mailjet.example"
    assert message["Subject"] == "Hey! It's Friday!"


def test_a_line_break_in_a_header_value_cannot_add_a_header(client):
    payload = mailjet_payload()
    payload["Headers"]["Subject"] = "Invoice\r\nBcc: victim@elsewhere.example"
    payload["Headers"]["X-Note"] = ["one\nX-Threadline-Rebuilt: no", "two\r\n\tfolded"]

    assert post_json(client, payload).status_code == 204
    _, raw, message = the_stored_message()
    assert message["Bcc"] is None
    assert message["Subject"] == "Invoice  Bcc: victim@elsewhere.example"
    assert message.get_all("X-Note") == ["one X-Threadline-Rebuilt: no", "two\tfolded"]
    assert message.get_all("X-Threadline-Rebuilt") == ["mailjet"]


def test_a_sender_cannot_claim_a_rebuild_or_a_missing_attachment(client):
    payload = mailjet_payload()
    payload["Headers"]["X-Threadline-Rebuilt"] = "no"
    payload["Headers"]["X-Threadline-Missing-Attachment"] = '"virus.exe": please ask for it'

    assert post_json(client, payload).status_code == 204
    _, _, message = the_stored_message()
    assert message.get_all("X-Threadline-Rebuilt") == ["mailjet"]
    assert message["X-Threadline-Missing-Attachment"] is None


@pytest.mark.parametrize(
    "extra_settings", [{"INBOUND_EMAIL_SERVICE": "mailjet,relay"}], indirect=True, ids=["+relay"]
)
@pytest.mark.parametrize("threading_header", ["In-Reply-To", "References"])
def test_a_rebuilt_reply_joins_its_conversation(app, client, inbox, threading_header):
    original = (
        b"From: Carla <carla@customer.example>\r\nTo: support@example.com\r\n"
        b"Subject: Printer on fire\r\nMessage-ID: <first@customer.example>\r\n\r\nHelp\r\n"
    )
    post_relay(client, original)
    work_inbound(app)
    payload = mailjet_payload(Sender="carla@customer.example")
    payload["Headers"].update(
        {
            "From": "Carla <carla@customer.example>",
            "Subject": "Something else entirely",
            "Message-ID": "<second@customer.example>",
            threading_header: "<first@customer.example>",
        }
    )

    assert post_json(client, payload).status_code == 204
    work_inbound(app)

    db.session.expire_all()
    first, second = db.session.scalars(select(Message).order_by(Message.id)).all()
    assert second.message_id == "second@customer.example"
    assert second.conversation_id == first.conversation_id
    assert second.threaded_by == threading_header.lower().replace("-", "_")


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "headers",
    [{}, basic_auth("wrong-password"), basic_auth(user="mailjet")],
    ids=["missing", "wrong-password", "wrong-user"],
)
def test_wrong_or_missing_credentials_are_401_with_challenge(client, headers):
    response = post_json(client, mailjet_payload(), headers=headers)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == BASIC_CHALLENGE
    assert_nothing_received()


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "text/plain", "message/rfc822"]
)
def test_a_body_that_is_not_json_is_415(client, content_type):
    response = post_json(client, mailjet_payload(), content_type=content_type)

    assert response.status_code == 415
    assert_nothing_received()


def _with(**changes):
    payload = mailjet_payload()
    payload.update(changes)
    return payload


def _with_headers(**changes):
    payload = mailjet_payload()
    payload["Headers"].update(changes)
    return payload


@pytest.mark.parametrize(
    "payload",
    [
        b"{not json",
        b"[]",
        b"null",
        b'{"event": "open", "email": "a@b.example"}',
        _with(Headers=["From: a@b.example"]),
        _with_headers(Subject=42),
        _with_headers(Received=["ok", None]),
        _with_headers(**{"Bad Name": "x"}),
        _with_headers(**{"X-A:B": "x"}),
        _with(**{"Text-part": 42}),
        _with(**{"Html-part": ["<p>"]}),
        _with(Parts={"ContentRef": "Attachment1"}),
        _with(Parts=["Attachment1"]),
        _with(Recipient=42),
        _with(Recipient="support@example.com\r\nX-Injected: 1"),
        with_attachment(mailjet_payload(), "Attachment1", {"Content-Type": "image/png"}, b"")
        | {"Attachment1": "not base64 at all!"},
        json.dumps(mailjet_payload()).replace("Friday *afternoon*", "\\ud800").encode(),
    ],
    ids=[
        "not-json",
        "array",
        "null",
        "event-webhook",
        "headers-a-list",
        "header-a-number",
        "header-list-with-null",
        "header-name-with-space",
        "header-name-with-colon",
        "text-part-a-number",
        "html-part-a-list",
        "parts-an-object",
        "part-a-string",
        "recipient-a-number",
        "recipient-with-line-break",
        "attachment-not-base64",
        "lone-surrogate",
    ],
)
def test_a_malformed_payload_is_422(client, payload):
    response = post_json(client, payload)

    assert response.status_code == 422, response.get_data(as_text=True)
    assert_nothing_received()


@pytest.mark.parametrize(
    "extra_settings", [{"INBOUND_EMAIL_SERVICE": "relay"}], indirect=True, ids=["relay-only"]
)
def test_mailjet_is_404_when_not_enabled(client):
    assert post_json(client, mailjet_payload()).status_code == 404
    assert_nothing_received()


@pytest.mark.parametrize(
    "extra_settings", [{"INBOUND_EMAIL_MAX_BYTES": "4096"}], indirect=True, ids=["4096-bytes"]
)
def test_an_oversized_message_is_kept_as_too_large_not_answered_413(client):
    """The provider drops a 4xx silently: the rebuilt message is kept, bounced as too large,
    for an admin to raise the limit and reprocess (tests/integration/test_ingress_refusals.py)."""
    payload = with_attachment(
        mailjet_payload(), "Attachment1", {"Content-Type": "application/pdf"}, b"x" * 5000
    )

    assert post_json(client, payload).status_code == 204
    [row] = inbound_rows()
    assert row.status == "bounced" and row.reason.startswith("too large: ")
    assert inbound_job_ids() == []
