"""Raw MIME messages for the inbound benchmarks, assembled by hand.

By hand because the email package takes ~60 ms to serialise a 2 MB message. `mixed_messages`
(the test corpus plus generated mail of every shape) and `big_message` feed
bench/process.py; `sized_messages` (one shape, sized to a target) feeds bench/ingress.py.
"""

from __future__ import annotations

import base64
import random
import re
import uuid
from email.utils import formatdate
from pathlib import Path

CORPUS_DIR = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "mail"
CORPUS_ROUNDS = 26  # each of the corpus files this many times, every copy its own Message-ID
GENERATED = 1000
DOMAIN = "reply.example.com"
SUPPORT = "support@example.com"
TOKEN = "0123456789abcdef0123456789abcdef"  # the corpus's conversation token
ATTACHMENT_MAX_BYTES = 25 * 1024 * 1024  # the default, set explicitly
BIG_ATTACHMENT = ATTACHMENT_MAX_BYTES - 4096  # just under the limit: stored, not skipped
SEED = 4
_MESSAGE_ID = re.compile(rb"^message-id:[^\n]*\n(?:[ \t][^\n]*\n)*", re.I | re.M)
_WORDS = (
    "order delivery invoice refund parcel account password reset broken arrived damaged "
    "please could you help thanks again tomorrow warehouse tracking number replacement "
    "subscription renewal charged twice cancel address change update shipping label"
).split()
_SUBJECTS = [
    "Where is my order?",
    "Invoice question",
    "Refund for damaged item",
    "Cannot log in",
    "Change of address",
    "Charged twice this month",
    "Tracking number not working",
]


def _b64(data: bytes) -> str:
    return base64.encodebytes(data).decode()  # 76-char lines


def _text(rng: random.Random, size: int) -> str:
    words, length = [], 0
    while length < size:
        word = rng.choice(_WORDS)
        words.append(word + ("\n" if rng.random() < 0.08 else " "))
        length += len(words[-1])
    return "".join(words)


# --- bench/process.py: the corpus and generated mail of every shape ---------------------------


def with_message_id(raw: bytes, message_id: str) -> bytes:
    """The top-level Message-ID replaced (added when missing), in the file's line endings."""
    end = raw.find(b"\n\n") if b"\r\n" not in raw else raw.find(b"\r\n\r\n")
    head, body = (raw, b"") if end < 0 else (raw[:end], raw[end:])
    newline = b"\r\n" if b"\r\n" in head else b"\n"
    line = f"Message-ID: <{message_id}>".encode() + newline
    head += newline  # so the pattern sees a complete last line
    head, found = _MESSAGE_ID.subn(lambda _m: line, head, count=1)
    if not found:
        head = line + head
    return head[: -len(newline)] + body


def corpus_messages() -> list[bytes]:
    files = [path.read_bytes() for path in sorted(CORPUS_DIR.glob("*.eml"))]
    return [
        with_message_id(raw, f"bench-{round_}-{n}@corpus.example")
        for round_ in range(CORPUS_ROUNDS)
        for n, raw in enumerate(files)
    ]


def generated_message(rng: random.Random, n: int) -> bytes:
    """One of: short plain text, text + HTML with a quoted history, attachments with an
    inline image, or a 1-2 MB attachment; routed to the inbox by To, X-Original-To or the
    reply+token address, and a few to nobody (bounced)."""
    customer = rng.randrange(150)
    roll = rng.random()
    if roll < 0.85:
        routing = f"To: Support <{SUPPORT}>\n"
    elif roll < 0.90:
        routing = f"To: undisclosed-recipients:;\nX-Original-To: {SUPPORT}\n"
    elif roll < 0.95:
        routing = f"To: reply+{TOKEN}@{DOMAIN}\n"
    else:
        routing = "To: someone@elsewhere.example\n"
    head = (
        f"From: Customer {customer} <customer{customer}@customer.example>\n{routing}"
        f"Subject: {rng.choice(['', 'Re: '])}{rng.choice(_SUBJECTS)}\n"
        f"Date: {formatdate(1736755200 + n * 60)}\n"
        f"Message-ID: <bench-gen-{n}@customer.example>\nMIME-Version: 1.0\n"
    )
    quote = "On Mon, 13 Jan 2025 at 09:02, Support <support@example.com> wrote:\n" + "".join(
        f"> {line}\n" for line in _text(rng, 600).splitlines()
    )
    kind = rng.random()
    if kind < 0.45:
        body = _text(rng, rng.randrange(300, 4000)) + "\n\n" + quote
        return (head + 'Content-Type: text/plain; charset="utf-8"\n\n' + body).encode()
    text = _text(rng, rng.randrange(1000, 8000))
    html = (
        f"<html><body><div dir='ltr'><p>{text}</p><img src='cid:logo{n}@customer.example'>"
        f"<img src='https://tracker.example/p{n}.gif'></div><div class='gmail_quote'>"
        f"<blockquote>{_text(rng, rng.randrange(500, 20000))}</blockquote></div></body></html>"
    )
    alternative = (
        "Content-Type: multipart/alternative; boundary=alt\n\n"
        f'--alt\nContent-Type: text/plain; charset="utf-8"\n\n{text}\n\n{quote}\n'
        "--alt\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
        f"{_b64(html.encode())}--alt--\n"
    )
    if kind < 0.75:
        return (head + alternative).encode()
    related = (
        "--mix\nContent-Type: multipart/related; boundary=rel\n\n"
        f"--rel\n{alternative}--rel\nContent-Type: image/png\nContent-Transfer-Encoding: base64"
        f"\nContent-ID: <logo{n}@customer.example>\n\n{_b64(rng.randbytes(3000))}--rel--\n"
    )
    large = kind > 0.97
    sizes = [rng.randrange(1_000_000, 2_000_000)] if large else []
    sizes += [rng.randrange(5_000, 150_000) for _ in range(rng.randrange(1, 4))]
    attachments = "".join(
        f'--mix\nContent-Type: application/pdf; name="scan {i}.pdf"\n'
        f'Content-Disposition: attachment; filename="scan {i}.pdf"\n'
        f"Content-Transfer-Encoding: base64\n\n{_b64(rng.randbytes(size))}"
        for i, size in enumerate(sizes)
    )
    mixed = "Content-Type: multipart/mixed; boundary=mix\n\n"
    return (head + mixed + related + attachments + "--mix--\n").encode()


def mixed_messages() -> list[bytes]:
    """The corpus files CORPUS_ROUNDS times and GENERATED generated messages, shuffled."""
    rng = random.Random(SEED)
    messages = corpus_messages() + [generated_message(rng, n) for n in range(GENERATED)]
    rng.shuffle(messages)
    return messages


def big_message() -> bytes:
    """One message carrying a BIG_ATTACHMENT-byte zip: the peak-memory case."""
    rng = random.Random(SEED)
    return (
        f"From: Big Sender <big@customer.example>\nTo: {SUPPORT}\nSubject: The scans\n"
        f"Date: {formatdate(1736755200)}\nMessage-ID: <bench-big@customer.example>\n"
        "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=mix\n\n"
        "--mix\nContent-Type: text/plain; charset=utf-8\n\nAll the scans, attached.\n"
        '--mix\nContent-Type: application/zip; name="scans.zip"\n'
        'Content-Disposition: attachment; filename="scans.zip"\n'
        "Content-Transfer-Encoding: base64\n\n"
        f"{_b64(rng.randbytes(BIG_ATTACHMENT))}--mix--\n"
    ).encode()


WARMUP_MESSAGE = (
    f"From: Warm Up <warm@customer.example>\nTo: {SUPPORT}\nSubject: warm-up\n"
    "Message-ID: <bench-warmup@customer.example>\nMIME-Version: 1.0\n"
    "Content-Type: multipart/mixed; boundary=mix\n\n--mix\nContent-Type: text/html\n\n"
    "<p>Hello <b>there</b></p>\n--mix\nContent-Type: application/pdf; name=a.pdf\n"
    f"Content-Transfer-Encoding: base64\n\n{_b64(bytes(3000))}--mix--\n"
).encode()


# --- bench/ingress.py: one shape, sized ----------------------------------------------------


def _invoice_message(rng: random.Random, attachment_bytes: int) -> bytes:
    """A valid multipart message: plain-text body + base64 attachment, unique Message-ID."""
    boundary = f"=_bench_{rng.getrandbits(64):016x}"
    message_id = f"{uuid.UUID(int=rng.getrandbits(128))}@bench.customer.example"
    text = "Hello, please find the invoice attached; the delivery was late again.\n" * 12
    head = (
        "From: Ada Customer <ada@customer.example>\n"
        "To: support@help.example.com\n"
        f"Subject: Order {rng.randrange(10**6):06d}: invoice attached\n"
        f"Date: {formatdate(localtime=False)}\n"
        f"Message-ID: <{message_id}>\n"
        "MIME-Version: 1.0\n"
        f'Content-Type: multipart/mixed; boundary="{boundary}"\n'
        "\n"
        f"--{boundary}\n"
        'Content-Type: text/plain; charset="utf-8"\n'
        "Content-Transfer-Encoding: 7bit\n"
        "\n"
        f"{text}\nThanks,\nAda\n\n"
        f"--{boundary}\n"
        'Content-Type: application/pdf; name="invoice.pdf"\n'
        "Content-Transfer-Encoding: base64\n"
        'Content-Disposition: attachment; filename="invoice.pdf"\n'
        "\n"
    )
    tail = f"\n--{boundary}--\n"
    return (head + _b64(rng.randbytes(attachment_bytes)) + tail).encode()


def sized_messages(rng: random.Random, target: int, count: int) -> list[bytes]:
    """count distinct messages of about target bytes each (attachment sized to fit)."""
    overhead = len(_invoice_message(rng, 0))  # headers, text part, MIME boundaries
    # base64 makes 3 bytes into 4 chars, in lines of 76 chars + "\n".
    attachment = max(0, int((target - overhead) * 3 / 4 * 76 / 77))
    return [_invoice_message(rng, attachment) for _ in range(count)]
