"""Outgoing MIME keeps the message's own headers at the top level: every part below it carries
only its Content-* headers, never a second MIME-Version (RFC 2045 4), Date or Message-ID."""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from types import SimpleNamespace

import pytest

from mail.compose import (
    OutgoingAttachment,
    OutgoingEmail,
    build_mime,
    html_with_signature,
    text_to_html,
)
from mail.model import Person
from services.forwards import SEPARATOR
from services.inbox_test_mail import build_test_email

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
FORWARDED_EML = (
    b"From: Dora <dora@customer.example>\r\nSubject: Invoice\r\nMIME-Version: 1.0\r\n"
    b"Message-ID: <inner@customer.example>\r\n\r\nThe invoice is attached.\r\n"
)
# What build_mime writes at the top; none of them may appear again lower down.
TOP_LEVEL = (
    "MIME-Version",
    "Message-ID",
    "Date",
    "From",
    "To",
    "Cc",
    "Reply-To",
    "Subject",
    "In-Reply-To",
    "References",
    "Thread-Topic",
    "Thread-Index",
)


def outgoing(**changes) -> OutgoingEmail:
    fields = dict(
        message_id="conversation/abc/messages/7@example.com",
        sender=Person("support@example.com", "Ana from Support"),
        to=[Person("carla@customer.example", "Carla Customer")],
        cc=[Person("boss@customer.example", "Boss, The")],
        reply_to="reply+abc@reply.example.com",
        subject="Re: Printer on fire",
        date=datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
        text="Hello Carla,\n\nIt is out now.\n\n-- \nAna",
        in_reply_to="first@customer.example",
        references=["root@customer.example"],
        thread_index="AQHbQ2Jg",
    )
    return OutgoingEmail(**{**fields, **changes})


def forward() -> OutgoingEmail:
    """As services/outbound.compose builds a forward: note, signature, the forwarded email
    under it, the forwarded email's files carried (a .eml among them)."""
    note, forwarded = "Can you check this?", SEPARATOR + "\nFrom: dora@customer.example\n\nHi"
    return outgoing(
        subject="Fwd: Invoice",
        text=f"{note}\n\n-- \nAna\n\n{forwarded}",
        html=html_with_signature(note, "<b>Ana</b>", forwarded),
        in_reply_to=None,
        references=[],
        attachments=[
            OutgoingAttachment("screen.png", "image/png", PNG),
            OutgoingAttachment("original.eml", "message/rfc822", FORWARDED_EML),
        ],
    )


SHAPES = {
    "text and html (alternative)": lambda: build_mime(outgoing()),
    "own html (alternative)": lambda: build_mime(outgoing(html=text_to_html("Hello <b>"))),
    "with attachments (mixed)": lambda: build_mime(
        outgoing(
            attachments=[
                OutgoingAttachment("screen.png", "image/png", PNG),
                OutgoingAttachment("notes.txt", "text/plain", b"line\n"),
                OutgoingAttachment("blob", "", b"\x00\x01"),
            ]
        )
    ),
    "forward": lambda: build_mime(forward()),
    "text only (setup test email)": lambda: build_test_email(
        SimpleNamespace(support_address="support@example.com"),
        "tok123",
        "support@example.com",
        "admin@example.com",
        "Receiving works.\n",
    ),
}


def parts_below_root(part):
    """Every part under the root, not entering an attached email (message/rfc822): that one
    is a whole message of its own, with its own top-level headers."""
    if part.is_multipart() and part.get_content_maintype() == "multipart":
        for child in part.get_payload():
            yield child
            yield from parts_below_root(child)


@pytest.mark.parametrize("shape", SHAPES)
def test_no_part_repeats_a_top_level_header(shape):
    raw = SHAPES[shape]()
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert message.get_all("MIME-Version") == ["1.0"]
    below = list(parts_below_root(message))
    for part in below:
        repeated = [name for name in TOP_LEVEL if name in part]
        assert not repeated, f"{part.get_content_type()} part repeats {repeated}"
        assert all(name.lower().startswith("content-") for name in part.keys()), part.keys()


def test_each_shape_is_the_structure_it_names():
    def tree(raw):
        message = BytesParser(policy=policy.default).parsebytes(raw)
        return [message.get_content_type()] + [
            p.get_content_type() for p in parts_below_root(message)
        ]

    assert tree(SHAPES["text and html (alternative)"]()) == [
        "multipart/alternative",
        "text/plain",
        "text/html",
    ]
    assert tree(SHAPES["forward"]())[:4] == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "text/html",
    ]
    assert tree(SHAPES["forward"]())[4:] == ["image/png", "message/rfc822"]
    assert tree(SHAPES["text only (setup test email)"]()) == ["text/plain"]


@pytest.mark.parametrize("shape", [s for s in SHAPES if s != "forward"])
def test_without_an_attached_email_mime_version_is_the_roots_alone(shape):
    """message.walk() goes into an attached email too, so the forward (which carries one,
    with its own MIME-Version) is left to the test above."""
    raw = SHAPES[shape]()
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert [p for p in message.walk() if "MIME-Version" in p] == [message]
    assert raw.count(b"MIME-Version:") == 1
