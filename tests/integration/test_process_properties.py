"""The real processing job over arbitrary bytes and mangled real messages: it never crashes
except by recording `failed` with a reason, and every InboundEmail ends delivered, bounced
(with a reason) or failed (with a reason). A delivered one is exactly one Message with its
Message-ID in its inbox, or a recorded duplicate of it; what it stored fits its columns.

Each example goes through `ingress.receive.receive` (raw bytes in storage, the row, the
enqueue) and then `jobs.process_inbound.process_inbound_email` is called directly, twice:
the bytes as received, then a second copy (another relay hop prepends a header: same
Message-ID, other bytes), which must be a delivered duplicate when the first was delivered.
The conversation data is reset before every example, so a failure shrinks to an example
that fails on its own.
"""

from __future__ import annotations

import base64
import os
import re

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, inspect, select

from extensions import db
from ingress import RawEmail
from ingress.receive import receive
from jobs.process_inbound import process_inbound_email
from models import Attachment, Contact, Conversation, InboundEmail, Message
from services.inbound_delivery import DUPLICATE
from tests.support.corpus import CORPUS, DOMAIN, TOKEN, seed_corpus_thread

CORPUS_FILES = sorted(CORPUS.glob("*.eml"))
SAMPLES = [path.read_bytes() for path in CORPUS_FILES]
EXAMPLES = int(os.environ.get("PROCESS_EXAMPLES", "150"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CHARSETS = [
    "utf-8", "x-unknown-42", "", '"', "unicode_escape", "raw_unicode_escape", "idna",
    "punycode", "base64", "rot13", "zlib", "hex", "uu", "utf-16", "utf-32", "utf-7",
    "iso-2022-jp", "iso-8859-8-i", "cp1252", "gb18030", "hz", "mbcs", "undefined",
    "ascii\x00", "utf-8''", "../../etc", "a" * 300, "=?", "?", "*",
]  # fmt: skip
ROUTING_HEADERS = [
    b"To: support@example.com",
    b"Cc: Support <SUPPORT+urgent@Example.COM>",
    b"X-Forwarded-For: someone@elsewhere.example support@example.com",
    b"Delivered-To: support@example.com",
    b"To: reply+" + TOKEN.encode() + b"@" + DOMAIN.encode(),
    b"Return-Path: <>",
    b"From: MAILER-DAEMON@mx.example",
    b"Content-Type: multipart/report; report-type=delivery-status; boundary=x",
]
LONG_HEADERS = [
    b"From: LONG <support-fan@customer.example>",
    b"Reply-To: =?utf-8?q?LONG?= <someone@customer.example>",
    b"From: someone@LONG.example",
    b"In-Reply-To: <a.LONG@x> <b.LONG@x> <c.LONG@x> <d.LONG@x>",
    b"References: <a.LONG@x> <b.LONG@x> <c.LONG@x> <d.LONG@x>",
    b"Message-ID: <LONG@customer.example>",
    b"Subject: LONG",
    b"Content-Type: text/LONG",
    b"Content-Type: application/LONG; name=LONG.pdf",
    b"Content-ID: <LONG@x>",
    b"X-Failed-Recipients: LONG",
]
_MESSAGE_ID_LINE = re.compile(rb"^message-id:[^\n]*\n(?:[ \t][^\n]*\n)*", re.I | re.M)


@pytest.fixture
def app_config(app_config):
    return {**app_config, "MAILER_INBOUND_EMAIL_DOMAIN": DOMAIN}


def seed(inbox_id: int) -> None:
    """The corpus's thread with the customer's first message, so mangled replies, tokens and
    bounces find something."""
    seed_corpus_thread(inbox_id, first_message=True)
    db.session.commit()


@pytest.fixture
def fresh(inbox):
    """reset(): every conversation, contact and InboundEmail gone, the corpus thread back."""
    inbox_id = inbox.id

    def reset() -> None:
        db.session.rollback()
        for model in (Attachment, Message, Conversation, Contact, InboundEmail):
            db.session.execute(delete(model))
        db.session.commit()
        seed(inbox_id)

    reset()
    return reset


def settle(raw: bytes) -> InboundEmail:
    """Receive the bytes, run the job on the row; check and return its final state."""
    received = receive(RawEmail(raw), source="test")
    row_id = received.inbound_email.id
    try:
        outcome = process_inbound_email(row_id)
    except Exception as exc:  # the job re-raises after recording `failed`, for RQ's retry
        db.session.rollback()
        db.session.expire_all()
        row = db.session.get(InboundEmail, row_id)
        assert (row.status, bool(row.reason)) == ("failed", True), f"job crashed: {exc!r}"
        return row
    db.session.expire_all()
    row = db.session.get(InboundEmail, row_id)
    assert outcome == row.status
    assert row.status in ("delivered", "bounced"), (row.status, row.reason)
    assert row.processed_at is not None
    if row.status == "bounced":
        assert row.reason
        return row
    assert row.inbox_id is not None
    same_id = db.session.scalars(
        select(Message).where(
            Message.inbox_id == row.inbox_id, Message.message_id == row.message_id
        )
    ).all()
    assert len(same_id) == 1, f"{len(same_id)} messages for {row.message_id!r}"
    message = same_id[0]
    if row.reason is None:
        assert message.inbound_email_id == row.id
        assert message.direction == "incoming" and message.conversation_id is not None
    else:
        assert row.reason == DUPLICATE
    contact = db.session.get(Contact, message.contact_id) if message.contact_id else None
    for stored in [row, message, message.conversation, contact, *message.attachments]:
        assert_fits(stored)
    return row


def assert_fits(stored) -> None:
    """Every string fits its column and holds no NUL: PostgreSQL refuses what SQLite keeps,
    so this catches on SQLite what would fail the job on PostgreSQL."""
    if stored is None:
        return
    for attribute in inspect(stored).mapper.column_attrs:  # attribute names, not column names
        value = getattr(stored, attribute.key)
        if isinstance(value, str):
            width = getattr(attribute.columns[0].type, "length", None)
            assert width is None or len(value) <= width, (attribute.key, len(value), width)
            assert "\x00" not in value, attribute.key


def settle_twice(raw: bytes) -> None:
    """The bytes, then another copy of them: one message at most, whatever the bytes."""
    row = settle(raw)
    copy = settle(b"X-Forwarded-For: support@example.com\n" + raw)
    if (row.status, copy.status) == ("delivered", "delivered"):
        if (copy.inbox_id, copy.message_id) == (row.inbox_id, row.message_id):
            assert copy.reason == DUPLICATE
    # Outcome statistics for `pytest --hypothesis-show-statistics`.
    reason = "" if row.status == "bounced" else f": {(row.reason or 'new')[:70]}"
    event(row.status + reason)


# --- arbitrary bytes -------------------------------------------------------------------------

routable_garbage = st.builds(
    lambda header, body: b"From: Eve <eve@customer.example>\r\n" + header + b"\r\n" + body,
    st.sampled_from(ROUTING_HEADERS),
    st.binary(max_size=2000),
)


@SETTINGS
@given(raw=st.binary(max_size=3000) | routable_garbage)
def test_arbitrary_bytes_end_with_a_status_and_reason(fresh, raw):
    fresh()
    settle_twice(raw)


# --- mangled real messages -------------------------------------------------------------------


def _header_lines(raw: bytes) -> tuple[list[bytes], list[bytes]]:
    lines = raw.splitlines(keepends=True)
    end = next((i for i, line in enumerate(lines) if not line.strip()), len(lines))
    return lines[:end], lines[end:]


def _pick(options: list, n: int):
    return options[n % len(options)]


def mangle(raw: bytes, step: tuple[str, int, int, str, bytes]) -> bytes:
    """One mangling step. Every step draws the same shape of values (an operation, a
    position in 0..0xFFFF scaled to the message, a byte, a charset name, a few bytes), so
    Hypothesis's mutations of one example stay valid examples."""
    operation, where, byte, charset, blob = step
    name = charset.encode("utf-8")
    if operation == "truncate":
        return raw[: where * len(raw) // 0x10000]
    if operation == "flip":
        at = where * len(raw) // 0x10000
        return raw[:at] + bytes([raw[at] ^ byte]) + raw[at + 1 :]
    if operation in ("duplicate header", "delete header"):
        head, rest = _header_lines(raw)
        if not head:
            return raw
        at = where * len(head) // 0x10000
        head[at : at + 1] = [head[at]] * (2 if operation == "duplicate header" else 0)
        return b"".join(head + rest)
    if operation == "charset parameter":
        replacement = _pick([b'charset="' + name + b'"', b"charset=" + name], byte)
        count = where % 4  # 0: every one of them
        return re.sub(rb'charset="?[^";\s]*"?', lambda _m: replacement, raw, count=count)
    if operation == "charset word":
        header = _pick([b"Subject", b"From", b"To", b"Cc", b"Reply-To"], byte)
        word = b"=?" + name.replace(b"?", b"") + b"?B?" + base64.b64encode(blob) + b"?="
        return header + b": " + word + b" <support@example.com>\n" + raw
    if operation == "charset body":
        encoding = _pick([b"8bit", b"base64", b"quoted-printable", b"x-uue"], byte)
        head, rest = _header_lines(raw)
        head = [h for h in head if not re.match(rb"(?i)content-(type|transfer-encoding):", h)]
        head += [
            b"Content-Type: text/plain; charset=" + name + b"\n",
            b"Content-Transfer-Encoding: " + encoding + b"\n",
        ]
        return b"".join(head + rest)
    if operation == "long header":
        # Column-sized values: names, addresses, ids and types longer than a column holds.
        size = 50 + where % 1500
        long_ = (blob.hex().encode() or b"x") * (size // max(1, 2 * len(blob)) + 1)
        header = _pick(LONG_HEADERS, byte)
        return header.replace(b"LONG", long_[:size]) + b"\n" + raw
    if operation == "routing header":
        return _pick(ROUTING_HEADERS, byte) + b"\n" + raw
    assert operation == "no message-id"
    return _MESSAGE_ID_LINE.sub(b"", raw)


OPERATIONS = [
    "truncate",
    "flip",
    "duplicate header",
    "delete header",
    "charset parameter",
    "charset word",
    "charset body",
    "routing header",
    "long header",
    "no message-id",
]
steps = st.lists(
    st.tuples(
        st.sampled_from(OPERATIONS),
        st.integers(min_value=0, max_value=0xFFFF),
        st.integers(min_value=1, max_value=255),
        st.sampled_from(CHARSETS) | st.text(max_size=20),
        st.binary(max_size=40),
    ),
    max_size=6,
)


@SETTINGS
@given(raw=st.sampled_from(SAMPLES), steps=steps)
def test_mangled_corpus_messages_end_with_a_status_and_reason(fresh, raw, steps):
    fresh()
    for step in steps:
        if raw:
            raw = mangle(raw, step)
    settle_twice(raw)


def test_the_whole_corpus_twice_is_one_message_each(fresh):
    """Unmangled, twice, then relayed once more (same Message-IDs, other bytes): no file
    fails, the same bytes find the same row, another copy is a delivered duplicate."""
    first = [settle(raw) for raw in SAMPLES]
    assert {row.status for row in first} <= {"delivered", "bounced"}, [
        (path.name, row.reason) for path, row in zip(CORPUS_FILES, first, strict=True)
    ]
    again = [settle(raw) for raw in SAMPLES]
    assert [row.id for row in again] == [row.id for row in first]
    for path, raw, row in zip(CORPUS_FILES, SAMPLES, first, strict=True):
        copy = settle(b"X-Forwarded-For: support@example.com\n" + raw)
        if row.status == "delivered" and copy.message_id == row.message_id:
            assert (copy.status, copy.reason) == ("delivered", DUPLICATE), path.name
