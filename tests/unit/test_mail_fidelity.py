"""Incoming mail read as its sender wrote it (issue 21): raw 8-bit headers decoded through a
fallback chain, mislabelled UTF-8 bodies read as UTF-8, and a body text whenever the mail has
one, however its alternatives are nested or left empty."""

from __future__ import annotations

from pathlib import Path

import pytest

from mail import streaming
from mail.addresses import decode_bytes, decode_header_bytes
from mail.parse import parse_email
from services.inbound_content import build_content

FIDELITY = Path(__file__).resolve().parents[1] / "fixtures" / "mail" / "fidelity"
LIMIT = 25 * 1024 * 1024


def parse(name: str):
    parsed = parse_email((FIDELITY / name).read_bytes(), LIMIT)
    assert parsed.defects == []
    return parsed


def alternative(*parts: bytes) -> bytes:
    """A message whose body is multipart/alternative of the given parts (headers and body)."""
    body = b"".join(b"--alt\n" + part + b"\n" for part in parts)
    return (
        b"From: a@customer.example\nTo: support@example.com\nSubject: s\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/alternative; boundary="alt"\n\n' + body + b"--alt--\n"
    )


# Raw 8-bit headers (no RFC 2047) in the charset the body declares: subject, sender name, and
# where the fixture has one, the To display name.
@pytest.mark.parametrize(
    ("name", "subject", "sender", "to_name"),
    [
        ("koi8r-raw-headers.eml", "Привет, мир", "Иван Петров", "Служба поддержки"),
        ("latin1-raw-headers.eml", "Café crème", "José García", ""),
        ("cp1251-raw-headers.eml", "Счёт № 118 не пришёл", "Олена Коваль", ""),
        ("gb2312-raw-headers.eml", "关于订单的问题", "王芳", ""),
    ],
)
def test_raw_8bit_headers_are_read_in_the_charset_the_body_declares(name, subject, sender, to_name):
    parsed = parse(name)
    assert parsed.subject == subject
    assert parsed.from_.name == sender and parsed.contact.name == sender
    assert [p.name for p in parsed.to] == [to_name]


def test_raw_8bit_bodies_in_their_declared_charset_are_unchanged():
    assert parse("koi8r-raw-headers.eml").text == (
        "Добрый день!\nМой заказ 4410 до сих пор не доставлен.\n"
    )
    assert parse("latin1-raw-headers.eml").text.startswith("Bonjour, la commande de café crème")


def test_the_body_charset_hint_is_found_in_a_nested_text_part():
    raw = (
        "From: Иван <ivan@zakaz.example>\nSubject: Счёт\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="m"\n\n'
        '--m\nContent-Type: multipart/alternative; boundary="a"\n\n'
        "--a\nContent-Type: text/plain; charset=us-ascii\n\nplain ascii\n"
        "--a\nContent-Type: text/html; charset=KOI8-R\n\n<p>Счёт</p>\n"
        "--a--\n"
        "--m--\n"
    ).encode("koi8-r")
    parsed = parse_email(raw, LIMIT)
    assert (parsed.subject, parsed.contact.name) == ("Счёт", "Иван")


def test_a_body_labelled_gb2312_that_is_really_utf8_is_read_as_utf8():
    parsed = parse("gb2312-label-utf8-body.eml")
    assert parsed.text == "你好，世界\n"
    assert (parsed.subject, parsed.contact.name) == ("问候", "李娜")


def test_raw_8bit_attachment_filename_is_recovered():
    parsed = parse_email(
        b"From: a@customer.example\nSubject: s\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="m"\n\n'
        b"--m\nContent-Type: text/plain\n\nsee the file\n"
        b"--m\nContent-Type: text/plain; charset=iso-8859-1\n"
        b'Content-Disposition: attachment; filename="R\xe9sum\xe9 cr\xe8me.txt"\n\nx\n'
        b"--m--\n",
        LIMIT,
    )
    assert [a.filename for a in parsed.attachments] == ["Résumé crème.txt"]


def test_header_chain_prefers_utf8_then_the_declared_charset():
    assert decode_header_bytes("Grüße".encode(), "koi8-r") == "Grüße"
    assert decode_header_bytes("Привет".encode("koi8-r"), "koi8-r") == "Привет"
    assert decode_header_bytes("Привет".encode("cp1251"), "windows-1251") == "Привет"
    assert decode_header_bytes("Café".encode("latin-1"), "iso-8859-1") == "Café"


def test_header_chain_keeps_damaged_utf8_as_utf8():
    # one cut-off byte beside good UTF-8: U+FFFD marks it, the rest is not turned to mojibake
    assert decode_header_bytes(b"caf\xc3\xa9 \xff.pdf", None) == "café \ufffd.pdf"


def test_header_chain_detects_only_what_utf8_and_the_declared_charset_cannot_read():
    assert decode_header_bytes(b"Delivery to Z\xfcrich", None) == "Delivery to Zürich"
    assert decode_header_bytes(b"Delivery to Z\xfcrich", "utf-8") == "Delivery to Zürich"
    # UTF-16 reads these 20 bytes without error, as CJK: a charset that does not read ASCII
    # as ASCII cannot have written a header and is no hint
    assert decode_header_bytes(b"Delivery to Z\xfcrich!?", "utf-16-le") == "Delivery to Zürich!?"


def test_body_prefers_valid_utf8_over_a_legacy_label_only():
    assert decode_bytes("你好，世界".encode(), "gb2312") == "你好，世界"
    assert decode_bytes("Grüße".encode(), "iso-8859-1") == "Grüße"
    assert decode_bytes("Привет".encode("koi8-r"), "koi8-r") == "Привет"  # not valid UTF-8
    assert decode_bytes(b"plain ascii", "gb2312") == "plain ascii"
    # UTF-16 bytes can be valid UTF-8 by accident (C2 A9 is also "©"): the label stands
    assert decode_bytes(b"\xc2\xa9", "utf-16-le") == "\ua9c2"


def test_blank_text_part_leaves_the_text_to_be_derived_from_the_html():
    parsed = parse("blank-plain-with-html.eml")
    assert parsed.text == ""
    assert parsed.html == "<html><body><p>Hello <b>there</b></p></body></html>"
    assert parsed.attachments == []
    assert build_content(parsed, {}).text == "Hello there"


def test_no_break_spaces_are_a_blank_text_part():
    parsed = parse_email(
        alternative(
            b"Content-Type: text/plain; charset=utf-8\n\n\xc2\xa0\n",
            b"Content-Type: text/html; charset=utf-8\n\n<p>Hello <b>there</b></p>",
        ),
        LIMIT,
    )
    assert "Hello there" in build_content(parsed, {}).text


def test_nested_alternative_with_empty_last_parts_keeps_the_text():
    parsed = parse("nested-alternative-empty.eml")
    assert (parsed.text, parsed.html, parsed.attachments) == ("Sample Text Content", None, [])


def test_an_empty_last_alternative_never_wins():
    parsed = parse_email(
        alternative(
            b"Content-Type: text/plain\n\nSample Text Content",
            b'Content-Type: multipart/alternative; boundary="inner"\n',
        ),
        LIMIT,
    )
    assert (parsed.text, parsed.html, parsed.attachments) == ("Sample Text Content", None, [])


def test_an_empty_html_alternative_does_not_hide_an_earlier_one():
    parsed = parse_email(
        alternative(
            b"Content-Type: text/plain\n\nSample Text Content",
            b"Content-Type: text/html\n\n<p>Sample Text Content</p>",
            b'Content-Type: multipart/alternative; boundary="inner"\n\n'
            b"--inner\nContent-Type: text/html\n\n  \n--inner--",
        ),
        LIMIT,
    )
    assert (parsed.text, parsed.html) == ("Sample Text Content", "<p>Sample Text Content</p>")


@pytest.mark.parametrize("path", sorted(FIDELITY.glob("*.eml")), ids=lambda p: p.name)
def test_streamed_bodies_are_read_the_same(path, monkeypatch):
    """With every body cut out of the raw (mail/streaming.py), blank parts are still found."""
    raw = path.read_bytes()
    plain = parse_email(raw, LIMIT)
    monkeypatch.setattr(streaming, "STREAM_FROM_BYTES", 1)
    streamed = parse_email(raw, LIMIT)
    assert (streamed.subject, streamed.text, streamed.html, streamed.defects) == (
        plain.subject,
        plain.text,
        plain.html,
        plain.defects,
    )
