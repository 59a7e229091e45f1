"""Large bodies read from the raw bytes (mail/streaming.py) give exactly what the plain
parse gives: with the threshold lowered to one byte every body of the corpus and of the
edge cases below is cut out and streamed, and the result is compared with the plain path."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import random
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mail import streaming
from mail.parse import parse_email

CORPUS = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "mail").glob("*.eml"))
LIMIT = 25 * 1024 * 1024
NEVER = 1 << 62
HEAD = "From: A <a@customer.example>\nTo: support@example.com\nSubject: s\nMessage-ID: <m@x>\n"
DATA = random.Random(7).randbytes(5000)
B64 = base64.b64encode(DATA)


def lines(encoded: bytes, width: int, eol: bytes = b"\n") -> bytes:
    return b"".join(encoded[i : i + width] + eol for i in range(0, len(encoded), width))


def mixed(*parts: bytes, boundary: bytes = b"mix", eol: bytes = b"\n", close: bool = True):
    body = b"".join(b"--" + boundary + b"\n" + part + b"\n" for part in parts)
    end = b"--" + boundary + b"--\n" if close else b""
    head = HEAD.encode() + b'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="'
    return (head + boundary + b'"\n\n' + body + end).replace(b"\n", eol)


def part(body: bytes, encoding: str = "base64", kind: str = "application/pdf", name="a.pdf"):
    head = f"Content-Type: {kind}\nContent-Disposition: attachment; filename={name}\n"
    if encoding:
        head += f"Content-Transfer-Encoding: {encoding}\n"
    return head.encode() + b"\n" + body


QP = b"caf=C3=A9 and a soft=\nbreak, =3D, a lone =\nend=20\n=\r\nlast =4\n" * 30 + b"=4"
CASES = {
    "base64 lines of 76": mixed(part(lines(B64, 76))),
    "base64 odd line lengths": mixed(part(lines(B64[:6664], 61) + lines(B64, 13))),
    "base64 CRLF": mixed(part(lines(B64, 76)), eol=b"\r\n"),
    "base64 lone CR": mixed(part(lines(B64, 76)), eol=b"\r"),
    "base64 CRLF in an LF message": mixed(part(lines(B64, 76, b"\r\n"))),
    "base64 trailing blanks": mixed(part(lines(B64, 76, b" \t\n"))),
    "base64 missing padding": mixed(part(lines(base64.b64encode(DATA[:4999]).rstrip(b"="), 76))),
    "base64 one pad of two": mixed(part(lines(base64.b64encode(DATA[:4999])[:-1], 76))),
    "base64 excess padding": mixed(part(lines(B64 + b"==", 76))),
    "base64 padding inside": mixed(part(lines(B64[:400] + b"==" + B64[400:], 76))),
    "base64 one letter too many": mixed(part(lines(B64 + b"Q", 76))),
    "base64 foreign bytes": mixed(part(lines(B64, 76).replace(b"A", b"A\xff!", 20))),
    "quoted-printable": mixed(part(QP, "quoted-printable", "text/calendar", "c.ics")),
    "quoted-printable CRLF": mixed(part(QP, "quoted-printable"), eol=b"\r\n"),
    "8bit with lone CR": mixed(part(b"line\rmore\xe9\r\n\r--mixed\n--mi", "8bit")),
    "binary": mixed(part(DATA.replace(b"\n--mix", b"\n"), "binary")),
    "no encoding": mixed(part(b"plain bytes\n" * 300, "")),
    "uuencode": mixed(part(binascii.b2a_uu(DATA[:45]) + b"end\n", "x-uuencode")),
    "big text body": mixed(b"Content-Type: text/plain; charset=utf-8\n\n" + b"hello\n" * 900),
    "cut short at end of file": mixed(part(lines(B64, 76)), close=False),
    "cut short mid-line": mixed(part(lines(B64, 76)), close=False)[:-30],
    "boundary in a header value": mixed(
        b"Content-Type: application/pdf\nX-Note: --mix\n --mix\nContent-Transfer-Encoding:"
        b" base64\n\n" + lines(B64, 76)
    ),
    "boundary-like lines in the body": mixed(part(b"--mixed\n x--mix\n--mix-\n--mix x\n", "")),
    "boundary with blanks": mixed(part(lines(B64, 76))).replace(b"--mix\n", b"--mix \t\n"),
    "part without headers": mixed(b"\n" + b"body text\n" * 50, part(lines(B64, 76))),
    "missing header separator": mixed(b"Content-Type: text/plain\nnot a header\nmore\n"),
    "preamble and epilogue": mixed(part(lines(B64, 76))).replace(
        b'"mix"\n\n', b'"mix"\n\npreamble\n--mix--x\n'
    )
    + b"epilogue\n--mix\n",
    "repeated boundary lines": mixed(part(lines(B64, 76))).replace(b"--mix\n", b"--mix\n--mix\n"),
    "prefix boundaries": mixed(
        b'Content-Type: multipart/mixed; boundary="mix1"\n\n--mix1\n'
        + part(lines(B64, 76))
        + b"\n--mix1--\n",
        part(lines(B64[:300], 76)),
    ),
    "nested multipart": mixed(
        b'Content-Type: multipart/alternative; boundary="alt"\n\n--alt\n'
        b"Content-Type: text/plain\n\nplain text\n--alt\n"
        b'Content-Type: multipart/related; boundary="rel"\n\n--rel\n'
        b'Content-Type: text/html\n\n<p>hi <img src="cid:img1@x"></p>\n--rel\n'
        b"Content-Type: image/png\nContent-ID: <img1@x>\nContent-Transfer-Encoding: base64\n\n"
        + lines(B64, 76)
        + b"--rel--\n--alt--\n",
        part(lines(B64, 64)),
    ),
    "inner part ended by the outer boundary": mixed(
        b'Content-Type: multipart/related; boundary="rel"\n\n--rel\n' + part(lines(B64, 76)),
        part(lines(B64[:200], 76)),
    ),
    "message/rfc822 with a big attachment": mixed(
        b"Content-Type: text/plain\n\nsee the forward\n",
        b"Content-Type: message/rfc822\n\n" + mixed(part(lines(B64, 76)), boundary=b"inner"),
    ),
    "digest": mixed(
        b'Content-Type: multipart/digest; boundary="dig"\n\n--dig\n\n'
        + HEAD.encode()
        + b"\nhello\n--dig--\n",
    ),
    "single part": (
        HEAD + "Content-Type: application/zip\nContent-Transfer-Encoding: base64\n\n"
    ).encode()
    + lines(B64, 76),
    "bounce with a big text part": mixed(
        b"Content-Type: text/plain\n\nDelivery failed.\n" + b"x" * 200 + b"\n",
        b"Content-Type: message/delivery-status\n\nFinal-Recipient: rfc822; a@b.example\n"
        b"Action: failed\nStatus: 5.1.1\n",
        b"Content-Type: text/rfc822-headers\n\nMessage-ID: <ours-1@example.com>\n",
    ).replace(b"multipart/mixed", b"multipart/report; report-type=delivery-status"),
    "multipart without boundary": HEAD.encode()
    + b"Content-Type: multipart/mixed\n\n--x\n"
    + part(lines(B64, 76)),
    "non-ascii boundary": mixed(part(lines(B64, 76))).replace(
        b'boundary="mix"', b"boundary*=utf-8''%E2%82%AC"
    ),
}


def parse(raw: bytes, threshold: int, limit: int = LIMIT):
    old = streaming.STREAM_FROM_BYTES
    streaming.STREAM_FROM_BYTES = threshold
    try:
        return parse_email(raw, limit)
    finally:
        streaming.STREAM_FROM_BYTES = old


def outcome(parsed):
    files = [
        (a.filename, a.content_type, a.size, a.content(), a.content_id, a.inline, a.too_large)
        for a in parsed.attachments
    ]
    return dataclasses.replace(parsed, attachments=[]), files


def agrees(raw: bytes) -> None:
    """Where the walk cuts bodies, the parser finds each marker as one part's whole body:
    the skeleton was used, not the fallback to a plain parse."""
    cuts = streaming.plan_cuts(raw, 1)
    if cuts:
        skeleton, markers = streaming.skeleton(raw, cuts)
        message = BytesParser(policy=policy.default).parsebytes(skeleton)
        assert streaming.attach(message, raw, cuts, markers) is not None


def same(raw: bytes, limit: int = LIMIT):
    agrees(raw)
    streamed, plain = parse(raw, 1, limit), parse(raw, NEVER, limit)
    assert outcome(streamed) == outcome(plain)
    return streamed


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_the_corpus_parses_the_same_with_every_body_streamed(path):
    raw = path.read_bytes()
    same(raw)
    same(raw, limit=10)  # sizes and too_large from the streamed count


@pytest.mark.parametrize("name", CASES)
def test_edge_cases_parse_the_same(name):
    same(CASES[name])
    same(CASES[name], limit=100)


STREAMED = [n for n in CASES if "base64" in n and "inside" not in n and "too many" not in n]


@pytest.mark.parametrize("name", [*STREAMED, "quoted-printable", "binary", "nested multipart"])
def test_large_attachments_are_read_from_the_raw_not_held(name):
    parsed = same(CASES[name])
    big = [a for a in parsed.attachments if a.size >= 1000]
    assert big and all(a.data is None and a.stream is not None for a in big)


def test_the_corpus_is_mostly_cut():
    """The walk follows the corpus's structures (or the test above compares nothing new)."""
    cut = [p.name for p in CORPUS if streaming.plan_cuts(p.read_bytes(), 1)]
    assert len(cut) >= len(CORPUS) - 2, sorted({p.name for p in CORPUS} - set(cut))


def test_structures_not_followed_are_parsed_whole():
    for name in ("repeated boundary lines", "digest", "multipart without boundary"):
        assert streaming.plan_cuts(CASES[name], 1) == [], name
    assert streaming.plan_cuts(CASES["non-ascii boundary"], 1) == []


def test_a_streamed_attachment_decodes_in_blocks(monkeypatch):
    monkeypatch.setattr(streaming, "BLOCK", 7)  # blocks split lines, quads and =XX escapes
    for name in ("base64 odd line lengths", "base64 missing padding", "quoted-printable CRLF"):
        same(CASES[name])
    assert same(CASES["base64 lines of 76"]).attachments[0].content() == DATA


def test_below_the_threshold_nothing_is_cut():
    raw = CASES["base64 lines of 76"]
    assert streaming.plan_cuts(raw, len(raw) + 1) == []
    assert parse(raw, len(B64) * 2).attachments[0].data == DATA


SAMPLES = [p.read_bytes() for p in CORPUS] + list(CASES.values())
PIECES = [b"\n", b"\r\n", b"\r", b"--mix", b"--mix--", b"--alt\n", b"=", b"\n\n", b" ", b"A"]


@settings(
    max_examples=int(os.environ.get("PARSE_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    sample=st.sampled_from(SAMPLES),
    edits=st.lists(
        st.tuples(st.floats(0, 1), st.integers(0, 40), st.sampled_from(PIECES)), max_size=6
    ),
)
def test_mangled_messages_parse_the_same(sample, edits):
    raw = sample
    for where, drop, piece in edits:
        at = int(where * len(raw))
        raw = raw[:at] + piece + raw[at + drop :]
    same(raw)
