"""parse_email never raises: arbitrary bytes and mangled real messages always yield a
ParsedEmail whose strings are storable (valid UTF-8, no NUL) and whose names are safe."""

from __future__ import annotations

import os
import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mail.model import AUTO_FLAGS, ParsedEmail
from mail.parse import parse_email

CORPUS = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "mail").glob("*.eml"))
SAMPLES = [path.read_bytes() for path in CORPUS]
SETTINGS = settings(
    max_examples=int(os.environ.get("PARSE_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
CHARSETS = [
    "utf-8", "x-unknown-42", "", '"', "unicode_escape", "idna", "punycode", "base64", "rot13",
    "zlib", "utf-16", "utf-32", "utf-7", "iso-2022-jp", "cp1252", "gb18030", "hz", "mbcs",
    "ascii\x00", "utf-8''", "../../etc", "a" * 300,
]  # fmt: skip


def storable(text: str | None) -> bool:
    if text is None:
        return True
    text.encode("utf-8")  # raises on lone surrogates
    return "\x00" not in text


def check(parsed: ParsedEmail) -> None:
    assert isinstance(parsed, ParsedEmail)
    strings = [parsed.message_id, parsed.subject, parsed.text, parsed.html, parsed.auto_reason]
    strings += parsed.in_reply_to + parsed.references + parsed.recipients + parsed.defects
    for person in [parsed.from_, parsed.contact, *parsed.to, *parsed.cc]:
        if person is not None:
            strings += [person.address, person.name]
            assert "@" in person.address and person.address == person.address.lower()
            assert not CONTROL.search(person.name)
    if parsed.bounce is not None:
        strings += [parsed.bounce.original_message_id, parsed.bounce.diagnostic]
    assert all(storable(s) for s in strings)
    assert not CONTROL.search(parsed.subject)
    assert parsed.auto_flag in (None, *AUTO_FLAGS)
    assert parsed.date is None or parsed.date.tzinfo is not None
    for attachment in parsed.attachments:
        name = attachment.filename
        assert storable(name) and 0 < len(name) <= 200
        assert not re.search(r"[/\\]", name) and not CONTROL.search(name)
        assert not name.startswith((".", " "))
        assert (attachment.data is None) == attachment.too_large
        assert attachment.data is None or len(attachment.data) == attachment.size
        assert attachment.content_id is None or storable(attachment.content_id)


@SETTINGS
@given(st.binary(max_size=3000), st.integers(min_value=0, max_value=10_000))
def test_arbitrary_bytes_never_raise(raw, limit):
    check(parse_email(raw, limit))


header_line = st.builds(
    lambda name, value: name + b": " + value + b"\n",
    st.sampled_from(
        [
            b"From",
            b"To",
            b"Cc",
            b"Reply-To",
            b"Subject",
            b"Date",
            b"Message-ID",
            b"References",
            b"Content-Type",
            b"Content-Transfer-Encoding",
            b"Content-Disposition",
            b"Return-Path",
            b"Auto-Submitted",
            b"Precedence",
            b"X-Forwarded-For",
            b"In-Reply-To",
        ]
    ),  # fmt: skip
    st.binary(max_size=80).map(lambda b: b.replace(b"\n", b" ")),
)


@SETTINGS
@given(st.lists(header_line, max_size=12), st.binary(max_size=500))
def test_random_headers_never_raise(lines, body):
    check(parse_email(b"".join(lines) + b"\n" + body, 1000))


def _lines(raw: bytes) -> list[bytes]:
    return raw.splitlines(keepends=True)


def _set_charset(raw: bytes, name: bytes) -> bytes:
    """The first charset parameter and the first encoded word's charset become `name`."""
    parameter = b'charset="' + name + b'"'
    raw = re.sub(rb'charset="?[^";\s]*"?', lambda _m: parameter, raw, count=1)
    word = b"=?" + name.replace(b"?", b"") + b"?"
    return re.sub(rb"=\?[^?\s]+\?", lambda _m: word, raw, count=1)


@st.composite
def mangled(draw) -> bytes:
    raw = draw(st.sampled_from(SAMPLES))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        operation = draw(st.sampled_from(["truncate", "flip", "dup", "delete", "charset"]))
        if not raw:
            break
        if operation == "truncate":
            raw = raw[: draw(st.integers(min_value=0, max_value=len(raw)))]
        elif operation == "flip":
            at = draw(st.integers(min_value=0, max_value=len(raw) - 1))
            raw = raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at + 1 :]
        elif operation in ("dup", "delete"):
            lines = _lines(raw)
            at = draw(st.integers(min_value=0, max_value=len(lines) - 1))
            lines[at : at + 1] = [lines[at]] * (2 if operation == "dup" else 0)
            raw = b"".join(lines)
        else:
            name = draw(st.sampled_from(CHARSETS) | st.text(max_size=20)).encode("utf-8")
            raw = _set_charset(raw, name)
    return raw


@SETTINGS
@given(mangled(), st.integers(min_value=0, max_value=200))
def test_mangled_corpus_messages_never_raise(raw, limit):
    check(parse_email(raw, limit))


def test_every_corpus_message_passes_the_same_checks():
    for raw in SAMPLES:
        check(parse_email(raw, 50))
