"""ingress/rebuild.py: a faithful, repeatable RFC 5322 message from a provider's parsed parts."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.parser import BytesParser

import pytest

from ingress import IngressError
from ingress.rebuild import Attachment, Missing, header_list, rebuild, text

LONG_ID = "<" + "x" * 120 + "@mail.customer.example>"
HEADERS = [
    ("Received", "from a by b; Mon, 17 Jul 2023 11:11:22 -0700"),
    ("Message-ID", "<m1@customer.example>"),
    ("In-Reply-To", LONG_ID),
    ("References", f"<r0@example.com> {LONG_ID}"),
    ("From", "Carla <carla@customer.example>"),
    ("To", "support@example.com"),
    ("Subject", "Printer on fire"),
    ("Content-Type", "multipart/alternative; boundary=original"),
    ("Content-Transfer-Encoding", "quoted-printable"),
    ("MIME-Version", "1.0"),
]


def parse(raw: bytes):
    return message_from_bytes(raw, policy=policy.default)


def header_block(raw: bytes) -> list[bytes]:
    return raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def body_text(part) -> str:
    return part.get_content().replace("\r\n", "\n")


def test_headers_keep_their_order_and_values_and_the_rebuild_is_marked():
    raw = rebuild("mailjet", HEADERS, text_body="Hello\n")

    lines = header_block(raw)
    assert lines[:8] == [
        b"X-Threadline-Rebuilt: mailjet",
        b"Received: from a by b; Mon, 17 Jul 2023 11:11:22 -0700",
        b"Message-ID: <m1@customer.example>",
        b"In-Reply-To: " + LONG_ID.encode(),
        b"References: <r0@example.com> " + LONG_ID.encode(),
        b"From: Carla <carla@customer.example>",
        b"To: support@example.com",
        b"Subject: Printer on fire",
    ]
    assert lines[8:] == [b"MIME-Version: 1.0", b'Content-Type: text/plain; charset="utf-8"',
                         b"Content-Transfer-Encoding: 7bit"]  # fmt: skip
    assert b"original" not in raw and b"quoted-printable" not in raw


def test_the_same_input_gives_the_same_bytes_and_other_content_other_boundaries():
    parts = dict(text_body="Hi", html_body="<p>Hi</p>", attachments=[Attachment(b"%PDF")])

    first = rebuild("brevo", HEADERS, **parts)
    assert rebuild("brevo", HEADERS, **parts) == first
    other = rebuild("brevo", HEADERS, **(parts | {"attachments": [Attachment(b"%PDF-2")]}))
    assert parse(first).get_boundary() != parse(other).get_boundary()


def test_defaults_fill_in_only_what_the_headers_lack():
    raw = rebuild(
        "brevo",
        [("message-id", "<m1@customer.example>")],
        defaults=[("Message-ID", "<other@x>"), ("Subject", "From the field"), ("Cc", "")],
        text_body="",
    )

    message = parse(raw)
    assert message.get_all("Message-ID") == ["<m1@customer.example>"]
    assert message["Subject"] == "From the field"


def test_a_repeated_header_stays_repeated():
    headers = header_list({"Received": ["one", "two"], "Subject": "s"})

    assert headers == [("Received", "one"), ("Received", "two"), ("Subject", "s")]
    assert parse(rebuild("mailjet", headers, text_body="")).get_all("Received") == ["one", "two"]


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("a\r\nBcc: victim@example.com", "a  Bcc: victim@example.com"),
        ("a\nBcc: victim@example.com", "a Bcc: victim@example.com"),
        ("a\rBcc: victim@example.com", "a Bcc: victim@example.com"),
        ("a\0b", "a b"),
        ("folded\r\n continued", "folded continued"),
        ("folded\n\tcontinued", "folded\tcontinued"),
        ("ends with\r\n", "ends with  "),
    ],
)
def test_a_header_value_is_one_line(value, kept):
    raw = rebuild("mailjet", [("X-Note", value)], text_body="")

    assert b"X-Note: " + kept.encode() + b"\r\n" in raw
    message = BytesParser(policy=policy.compat32).parsebytes(raw)
    assert message["Bcc"] is None
    assert len(header_block(raw)) == 5  # rebuilt, X-Note, MIME-Version, Content-Type, CTE


@pytest.mark.parametrize("name", ["Bad Name", "X-A:B", "", "X-\u00e9", "X-A\r\nBcc"])
def test_a_header_name_outside_rfc_5322_is_422(name):
    with pytest.raises(IngressError) as refused:
        rebuild("mailjet", [(name, "x")], text_body="")
    assert refused.value.status == 422


def test_x_threadline_headers_from_the_provider_are_dropped():
    headers = [("X-Threadline-Rebuilt", "no"), ("x-threadline-missing-attachment", "a.exe")]

    message = parse(rebuild("brevo", headers, text_body=""))

    assert message.get_all("X-Threadline-Rebuilt") == ["brevo"]
    assert message["X-Threadline-Missing-Attachment"] is None


def test_non_ascii_headers_are_encoded_words_that_read_back():
    headers = [
        ("Subject", "Café – naïve résumé " * 5),
        ("From", "José Núñez <jose@customer.example>"),
        ("X-Anything", "Grüße"),
    ]

    raw = rebuild("mailjet", headers, text_body="")

    raw.split(b"\r\n\r\n", 1)[0].decode("ascii")  # the header block is ASCII
    message = parse(raw)
    assert message["Subject"] == "Café – naïve résumé " * 5
    assert message["From"].addresses[0].display_name == "José Núñez"
    assert message["X-Anything"] == "Grüße"


@pytest.mark.parametrize(
    ("text_body", "html_body", "expected"),
    [
        ("Hi", "<p>Hi</p>", "multipart/alternative"),
        ("Hi", None, "text/plain"),
        (None, "<p>Hi</p>", "text/html"),
        (None, None, "text/plain"),
    ],
)
def test_the_bodies_given_make_the_structure(text_body, html_body, expected):
    message = parse(rebuild("mailjet", [], text_body=text_body, html_body=html_body))

    assert message.get_content_type() == expected
    if text_body:
        assert body_text(message.get_body(("plain",))) == "Hi\n"
    if html_body:
        assert body_text(message.get_body(("html",))) == "<p>Hi</p>\n"


def test_non_ascii_bodies_are_utf_8():
    message = parse(rebuild("mailjet", [], text_body="Zażółć gęślą jaźń", html_body="<p>ü</p>"))

    assert body_text(message.get_body(("plain",))) == "Zażółć gęślą jaźń\n"
    assert message.get_body(("plain",)).get_content_charset() == "utf-8"


def test_inline_parts_go_beside_the_html_attachments_into_mixed():
    image = Attachment(b"\x89PNG", "image/png", "logo.png", "<logo@x>", inline=True)
    pdf = Attachment(b"%PDF-1.4", "application/pdf", "invoice.pdf")

    message = parse(rebuild("brevo", [], text_body="t", html_body="<img src=cid:logo@x>",
                            attachments=[image, pdf]))  # fmt: skip

    structure = [part.get_content_type() for part in message.walk()]
    assert structure == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "multipart/related",
        "text/html",
        "image/png",
        "application/pdf",
    ]
    logo = [p for p in message.walk() if p.get_content_type() == "image/png"][0]
    assert (logo["Content-ID"], logo.get_content(), logo.get_filename()) == (
        "<logo@x>",
        b"\x89PNG",
        "logo.png",
    )
    [attachment] = message.iter_attachments()
    assert (attachment.get_filename(), attachment.get_content()) == ("invoice.pdf", b"%PDF-1.4")


def test_an_inline_part_without_html_is_an_inline_part_of_mixed():
    image = Attachment(b"\x89PNG", "image/png", "logo.png", "logo@x", inline=True)

    message = parse(rebuild("brevo", [], text_body="t", attachments=[image]))

    assert [p.get_content_type() for p in message.walk()] == [
        "multipart/mixed",
        "text/plain",
        "image/png",
    ]
    assert message.get_payload(1).get_content_disposition() == "inline"


def test_a_forwarded_message_is_a_message_part_not_base64():
    forwarded = b"From: a@example.com\r\nSubject: Inner\r\n\r\nInner body\r\n"

    raw = rebuild(
        "brevo", [], text_body="fwd", attachments=[Attachment(forwarded, "message/rfc822")]
    )

    part = parse(raw).get_payload(1)
    assert part.get_content_type() == "message/rfc822"
    assert part["Content-Transfer-Encoding"] == "8bit"
    assert part.get_content()["Subject"] == "Inner"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("", "application/octet-stream"),
        ("pdf", "application/octet-stream"),
        ("multipart/mixed", "application/octet-stream"),
        ("image/png\r\nX-Injected: 1", "application/octet-stream"),
        ("Image/PNG; name=a.png", "image/png"),
        ("text/plain; charset=iso-8859-1; name=a.txt", "text/plain"),
    ],
)
def test_an_unusable_content_type_is_application_octet_stream(given, expected):
    raw = rebuild("mailjet", [], text_body="t", attachments=[Attachment(b"data", given, "a")])

    part = parse(raw).get_payload(1)
    assert part.get_content_type() == expected
    assert b"X-Injected" not in raw


def test_a_text_attachment_keeps_its_charset_and_bytes():
    latin = "Une pièce jointe".encode("iso-8859-1")
    attachment = Attachment(latin, "text/plain; charset=iso-8859-1", "note.txt")

    part = parse(rebuild("brevo", [], text_body="t", attachments=[attachment])).get_payload(1)

    assert part.get_content_charset() == "iso-8859-1"
    assert part.get_payload(decode=True) == latin


def test_missing_attachments_are_named_in_headers_and_a_note():
    missing = [
        Missing("invoice.pdf", "application/pdf", 1234, "Brevo answered 404"),
        Missing(None, None, None, "no download token\r\nBcc: x@y"),
    ]

    raw = rebuild("brevo", [], text_body="Body", missing=missing)

    message = parse(raw)
    assert message.get_all("X-Threadline-Missing-Attachment") == [
        '"invoice.pdf" (application/pdf, 1234 bytes): Brevo answered 404',
        "(no name) (unknown type): no download token  Bcc: x@y",
    ]
    assert message["Bcc"] is None
    assert body_text(message.get_body(("plain",))) == "Body\n"
    [note] = message.iter_attachments()
    assert note.get_filename() == "missing-attachments.txt"
    assert "invoice.pdf" in note.get_content()


@pytest.mark.parametrize("value", [42, ["a"], {"a": 1}, True, "\ud800"])
def test_text_refuses_what_is_not_text(value):
    with pytest.raises(IngressError) as refused:
        text(value, "Field")
    assert refused.value.status == 422


@pytest.mark.parametrize(
    "headers", [["Subject: x"], {"Subject": 1}, {"Subject": ["a", None]}, {"Subject": None}]
)
def test_header_list_refuses_what_is_not_a_header_object(headers):
    with pytest.raises(IngressError) as refused:
        header_list(headers)
    assert refused.value.status == 422
