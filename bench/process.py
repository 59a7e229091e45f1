"""Benchmark inbound processing: the real job beside a bare parse of the same bytes.

A temp instance (embedded Redis, SQLite, local storage, migrated with flask_migrate) with
the support inbox receives a mixed corpus through `ingress.receive.receive`; an in-process
`AppSimpleWorker` (`worker.build_worker(app, ["inbound"], simple=True)`) then works the
inbound queue in burst mode: the real job path (dequeue, app context, claim, parse, route,
dedupe, contact, threading, sanitising, quote splitting, attachments into storage, commit).
Only that is timed, not the receive step. The baseline, in the same process on the same
bytes, is what any mail processor must do at least: `email.message_from_bytes(raw,
policy=email.policy.default)` and `get_content()` of every part.

Peak memory: one message with an attachment just under ATTACHMENT_MAX_BYTES (25 MiB), in a
fresh process each for ours (the job function called directly) and the baseline, after the
same small warm-up message: peak RSS while handling it minus RSS just before, on Linux from
/proc/self/status (VmHWM, reset to the current RSS through /proc/self/clear_refs first).
Not getrusage's ru_maxrss: it survives exec, and subprocess starts children with vfork, so
a child's ru_maxrss starts at this (large) parent's peak and hides a smaller rise.
"""

from __future__ import annotations

import base64
import email
import email.policy
import json
import logging
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from email.utils import formatdate
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS_DIR = ROOT / "tests" / "fixtures" / "mail"
CORPUS_ROUNDS = 26  # each of the corpus files this many times, every copy its own Message-ID
GENERATED = 1000
DOMAIN = "reply.example.com"
SUPPORT = "support@example.com"
TOKEN = "0123456789abcdef0123456789abcdef"  # the corpus's conversation token
ATTACHMENT_MAX_BYTES = 25 * 1024 * 1024  # the default, set explicitly
BIG_ATTACHMENT = ATTACHMENT_MAX_BYTES - 4096  # just under the limit: stored, not skipped
SEED = 4
_MESSAGE_ID = re.compile(rb"^message-id:[^\n]*\n(?:[ \t][^\n]*\n)*", re.I | re.M)


# --- messages -------------------------------------------------------------------------------


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


def _text(rng: random.Random, size: int) -> str:
    words, length = [], 0
    while length < size:
        word = rng.choice(_WORDS)
        words.append(word + ("\n" if rng.random() < 0.08 else " "))
        length += len(words[-1])
    return "".join(words)


def _b64(data: bytes) -> str:
    return base64.encodebytes(data).decode()


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


def build_messages() -> list[bytes]:
    rng = random.Random(SEED)
    messages = corpus_messages() + [generated_message(rng, n) for n in range(GENERATED)]
    rng.shuffle(messages)
    return messages


def big_message() -> bytes:
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


WARMUP = (
    f"From: Warm Up <warm@customer.example>\nTo: {SUPPORT}\nSubject: warm-up\n"
    "Message-ID: <bench-warmup@customer.example>\nMIME-Version: 1.0\n"
    "Content-Type: multipart/mixed; boundary=mix\n\n--mix\nContent-Type: text/html\n\n"
    "<p>Hello <b>there</b></p>\n--mix\nContent-Type: application/pdf; name=a.pdf\n"
    f"Content-Transfer-Encoding: base64\n\n{_b64(bytes(3000))}--mix--\n"
).encode()


# --- the two sides --------------------------------------------------------------------------


def parse_and_walk(raw: bytes) -> int:
    """The baseline: the standard library's modern parser and every part's content."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    parts = 0
    for part in message.walk():
        if part.is_multipart():
            continue
        try:
            part.get_content()
        except Exception:  # noqa: BLE001 - an unreadable part is skipped, as a mail tool would
            pass
        parts += 1
    return parts


def baseline_seconds(messages: list[bytes]) -> float:
    started = time.perf_counter()
    for raw in messages:
        parse_and_walk(raw)
    return time.perf_counter() - started


def instance_config(work: Path, redis_url: str) -> dict:
    return {
        "SECRET_KEY": "bench-secret-key-0123456789abcdef",
        "INBOUND_EMAIL_PASSWORD": "bench",
        "REDIS_URL": redis_url,
        "INSTANCE_PATH": str(work / "instance"),
        "DATABASE_URL": "sqlite:///" + str(work / "instance" / "threadline.db"),
        "STORAGE_BACKEND": "local",
        "STORAGE_LOCAL_PATH": str(work / "storage"),
        "MAILER_INBOUND_EMAIL_DOMAIN": DOMAIN,
        "ATTACHMENT_MAX_BYTES": ATTACHMENT_MAX_BYTES,
        "LOG_LEVEL": "WARNING",
    }


def seed() -> None:
    """The support inbox and the corpus's thread, so its replies, tokens and bounces land."""
    from extensions import db
    from models import Inbox
    from tests.support.corpus import seed_corpus_thread

    inbox = Inbox(name="Support", support_address=SUPPORT)
    db.session.add(inbox)
    db.session.flush()
    seed_corpus_thread(inbox.id, status="open", first_message=True)
    db.session.commit()


def receive_all(messages: list[bytes]) -> list[int]:
    from ingress import RawEmail
    from ingress.receive import receive

    ids = []
    for raw in messages:
        received = receive(RawEmail(raw), source="bench")
        assert not received.duplicate and received.enqueued
        ids.append(received.inbound_email.id)
    return ids


def outcomes(ids: list[int]) -> tuple[Counter, Counter]:
    """(status counts, bounce and failure reasons without their details) of these rows."""
    from sqlalchemy import select

    from extensions import db
    from models import InboundEmail

    db.session.expire_all()
    query = select(InboundEmail.id, InboundEmail.status, InboundEmail.reason)
    wanted = set(ids)
    counts, reasons = Counter(), Counter()
    for row_id, status, reason in db.session.execute(query):
        if row_id in wanted:
            counts[status] += 1
            if status in ("bounced", "failed"):
                reasons[f"{status}: {(reason or '').split(' (', 1)[0]}"] += 1
    return counts, reasons


# --- peak memory, each side in a fresh process ----------------------------------------------


def _proc_status_bytes(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # "VmHWM:  123456 kB"
    except (OSError, ValueError, IndexError):
        pass
    return None


def _start_peak() -> int:
    """Reset the peak-RSS mark to the current RSS and return that RSS (Linux). Elsewhere
    ru_maxrss, which also counts whatever peak the process image inherited."""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # 5: reset the peak RSS to now
        return _proc_status_bytes("VmRSS") or 0
    except OSError:
        return _peak_bytes()


def _peak_bytes() -> int:
    peak = _proc_status_bytes("VmHWM")
    if peak is not None:
        return peak
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024


def _child_ours(config: dict, warmup_id: int, row_id: int) -> dict:
    from app import create_app
    from extensions import db
    from jobs.process_inbound import process_inbound_email

    app = create_app(config)
    with app.app_context():
        process_inbound_email(warmup_id)
        db.session.remove()
    with app.app_context():
        before = _start_peak()
        status = process_inbound_email(row_id)
        after = _peak_bytes()
    return {"status": status, "delta": after - before}


def _child_baseline(path: str) -> dict:
    parse_and_walk(WARMUP)
    before = _start_peak()
    parts = parse_and_walk(Path(path).read_bytes())
    after = _peak_bytes()
    return {"status": f"{parts} parts", "delta": after - before}


def _in_fresh_process(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "bench.process", "--peak", *args],
        cwd=ROOT,
        env={**os.environ, "ENV_FILE": os.devnull},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"peak-memory child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the run --------------------------------------------------------------------------------


def run() -> str:
    os.environ["ENV_FILE"] = os.devnull  # measure defaults, not the developer's .env
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.WARNING)  # no INFO line per received message on the terminal
    try:
        return _run()
    finally:
        root.setLevel(level)


def _run() -> str:
    from flask_migrate import upgrade

    from app import create_app
    from runtime.embedded_redis import EmbeddedRedis
    from worker import build_worker

    messages = build_messages()
    total_bytes = sum(len(raw) for raw in messages)
    big = big_message()
    with tempfile.TemporaryDirectory(prefix="threadline-bench-") as tmp:
        work = Path(tmp)
        with EmbeddedRedis(str(work / "redis.sock"), str(work / "redis")) as redis_server:
            config = instance_config(work, redis_server.url)
            app = create_app(config)
            with app.app_context():
                upgrade()
                seed()
                ids = receive_all(messages)
                warmup_id, big_id = receive_all([WARMUP, big])
                # The peak-memory rows' jobs stay queued but are never worked here.
                from extensions import get_queue

                for row_id in (warmup_id, big_id):
                    get_queue("inbound").remove(f"process-inbound-{row_id}")
            first_baseline = baseline_seconds(messages)
            worker = build_worker(app, ["inbound"], simple=True)
            started = time.perf_counter()
            worker.work(burst=True, logging_level="WARNING")
            ours = time.perf_counter() - started
            second_baseline = baseline_seconds(messages)
            with app.app_context():
                counts, reasons = outcomes(ids)
            big_path = work / "big.eml"
            big_path.write_bytes(big)
            ours_peak = _in_fresh_process("ours", json.dumps(config), str(warmup_id), str(big_id))
            base_peak = _in_fresh_process("baseline", str(big_path))
    settled = counts["delivered"] + counts["bounced"] + counts["failed"]
    if settled != len(messages) or ours_peak["status"] != "delivered":
        raise RuntimeError(f"not every message settled: {dict(counts)}, big: {ours_peak}")
    baseline = (first_baseline + second_baseline) / 2
    count = len(messages)
    mib = 1024 * 1024
    ours_rate, base_rate = count / ours, count / baseline
    return "\n".join(
        [
            "## Inbound processing",
            "",
            f"{count} mixed messages ({total_bytes / mib:.0f} MiB: the "
            f"{(count - GENERATED) // CORPUS_ROUNDS} corpus files × {CORPUS_ROUNDS} copies, "
            f"each with its own Message-ID, and {GENERATED} generated ones — plain text, "
            "text + HTML with quoted history, attachments with an inline image, "
            "a few 1-2 MB attachments) "
            "received through `receive()` into a temp instance (embedded Redis, SQLite, "
            "local storage), then worked by an in-process `AppSimpleWorker` in burst mode: "
            "the real job path, commits and storage writes included; only that is timed. "
            "Baseline, same process, same bytes: `email.message_from_bytes(raw, "
            "policy=default)` and `get_content()` of every part (mean of a run before and "
            f"one after ours). Outcome: {counts['delivered']} delivered, "
            f"{counts['bounced']} bounced, {counts['failed']} failed"
            + "".join(f"; {n} {reason}" for reason, n in reasons.most_common())
            + ".",
            "",
            "| path | ours (msg/s) | baseline (msg/s) | ratio (ours time / baseline) |",
            "| --- | ---: | ---: | ---: |",
            f"| process_inbound_email job vs parse + walk parts | {ours_rate:.0f} | "
            f"{base_rate:.0f} | {base_rate / ours_rate:.1f}x |",
            "",
            f"Peak memory for one {len(big) / 1e6:.1f} MB message carrying a "
            f"{BIG_ATTACHMENT / mib:.2f} MiB attachment (just under ATTACHMENT_MAX_BYTES, so "
            "it is stored): each side in a fresh process after the same small warm-up "
            "message; peak RSS while handling it minus RSS just before (Linux VmHWM, reset "
            "through /proc/self/clear_refs; ru_maxrss would carry the parent's peak across "
            "exec). Ours calls the job function directly: read from storage, parse, store "
            "the attachment, commit.",
            "",
            "| path | ours (peak RSS rise) | baseline (peak RSS rise) | ratio |",
            "| --- | ---: | ---: | ---: |",
            f"| 25 MiB attachment: job vs parse + walk parts | {ours_peak['delta'] / mib:.0f} MiB "
            f"| {base_peak['delta'] / mib:.0f} MiB | "
            f"{ours_peak['delta'] / max(1, base_peak['delta']):.2f}x |",
            "",
        ]
    )


def main(argv: list[str]) -> None:
    if argv[:2] == ["--peak", "ours"]:
        config, warmup_id, row_id = json.loads(argv[2]), int(argv[3]), int(argv[4])
        print(json.dumps(_child_ours(config, warmup_id, row_id)))
    elif argv[:2] == ["--peak", "baseline"]:
        print(json.dumps(_child_baseline(argv[2])))
    else:
        print(run())


if __name__ == "__main__":
    main(sys.argv[1:])
