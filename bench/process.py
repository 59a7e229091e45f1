"""Benchmark inbound processing: the real job beside a bare parse of the same bytes.

A temp instance (embedded Redis, SQLite, local storage, migrated with flask_migrate) with
the support inbox receives a mixed corpus through `ingress.receive.receive`; an in-process
`AppSimpleWorker` (`worker.build_worker(app, ["inbound"], simple=True)`) then works the
inbound queue in burst mode: the real job path (dequeue, app context, claim, parse, route,
dedupe, contact, threading, sanitising, quote splitting, attachments into storage, commit).
Only that is timed, not the receive step. The baseline, in the same process on the same
bytes, is what any mail processor must do at least: `email.message_from_bytes(raw,
policy=email.policy.default)` and `get_content()` of every part.

Between the two baseline runs, the shipped configuration (bench/shipped_worker.py): gunicorn
and `python worker.py` processes as the Procfile starts them, mail POSTed to the relay
ingress and timed until delivered, with 1 and 2 worker processes, and once with `--fork`.

The messages, and the instance's inbox and thread, come from bench/corpus/.
"""

from __future__ import annotations

import email
import email.policy
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask

from bench import shipped_worker
from bench.corpus.mime import ATTACHMENT_MAX_BYTES, CORPUS_ROUNDS, DOMAIN, GENERATED, mixed_messages

ROOT = Path(__file__).resolve().parent.parent


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


@contextmanager
def support_instance() -> Iterator[tuple[Path, dict, Flask]]:
    """A temp instance (embedded Redis, SQLite, local storage), migrated, with the support
    inbox: (its folder, its settings, the app). Gone when the block ends."""
    from flask_migrate import upgrade

    from app import create_app
    from bench.corpus.load import seed_support_inbox
    from runtime.embedded_redis import EmbeddedRedis

    with tempfile.TemporaryDirectory(prefix="threadline-bench-") as tmp:
        work = Path(tmp)
        with EmbeddedRedis(str(work / "redis.sock"), str(work / "redis")) as redis_server:
            config = instance_config(work, redis_server.url)
            app = create_app(config)
            with app.app_context():
                upgrade()
                seed_support_inbox()
            yield work, config, app


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


# --- the shipped configuration (bench/shipped_worker.py) ------------------------------------

# (processes, --fork, queued first, every nth message)
SHIPPED = ((1, False, False, 1), (2, False, False, 1), (1, False, True, 1), (2, False, True, 1))
FORKED = (1, True, False, 8)  # a fork per job is ~10x slower: fewer messages


def shipped_runs(work: Path, messages: list[bytes]) -> list[shipped_worker.Timing]:
    timings = []
    for n, (processes, fork, queued_first, every) in enumerate((*SHIPPED, FORKED)):
        folder = work / f"shipped-{n}"
        folder.mkdir()
        timings.append(
            shipped_worker.timed_run(
                folder, instance_config, messages[::every], processes, fork, queued_first
            )
        )
    return timings


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
    from bench.corpus.load import receive_all
    from worker import build_worker

    messages = mixed_messages()
    total_bytes = sum(len(raw) for raw in messages)
    with support_instance() as (work, _config, app):
        with app.app_context():
            ids = receive_all(messages)
        cpu = time.process_time()
        first_baseline = baseline_seconds(messages)
        base_cpu = time.process_time() - cpu
        worker = build_worker(app, ["inbound"])  # the class `python worker.py` runs
        started, cpu = time.perf_counter(), time.process_time()
        worker.work(burst=True, logging_level="WARNING")
        ours = time.perf_counter() - started
        ours_cpu = time.process_time() - cpu
        shipped = shipped_runs(work, messages)
        cpu = time.process_time()
        second_baseline = baseline_seconds(messages)
        base_cpu = (base_cpu + time.process_time() - cpu) / 2
        with app.app_context():
            counts, reasons = outcomes(ids)
    settled = counts["delivered"] + counts["bounced"] + counts["failed"]
    if settled != len(messages):
        raise RuntimeError(f"not every message settled: {dict(counts)}")
    baseline = (first_baseline + second_baseline) / 2
    count = len(messages)
    mib = 1024 * 1024
    ours_rate, base_rate = count / ours, count / baseline
    base_cpu_ms = base_cpu * 1000 / count

    def by_cpu(cpu_ms: float | None) -> str:
        return "" if cpu_ms is None else f"{cpu_ms:.1f} | {base_cpu_ms / cpu_ms:.1%}"

    by_label = {timing.label: timing for timing in shipped}

    def scaling(way: str) -> str:
        one, two = (by_label[f"{n} × `python worker.py`, {way}"] for n in (1, 2))
        return f"{two.rate / one.rate:.2f}x"

    fork = next(t for t in shipped if "--fork" in t.label)
    one_shipped = by_label["1 × `python worker.py`, end to end"]
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
            "### The shipped configuration",
            "",
            "The same run, between the two baseline runs: each row a fresh temp instance "
            "(embedded Redis, SQLite, local storage, the same inbox) with gunicorn serving "
            "`wsgi:app` with the Procfile's options (2 workers x 4 threads, `--preload`), and "
            "`python worker.py` processes started as the Procfile and the systemd units start "
            "them (every queue, RQ's scheduler, jobs in-process), or with `--fork` (a work "
            f"horse per job, the opt-in). {shipped_worker.CLIENTS} keep-alive clients POST "
            "the messages to the relay ingress. **End to end**: the workers wait, registered "
            "with RQ; from the first POST until every row is delivered, bounced or failed "
            f"(polled every {shipped_worker.POLL * 1000:.0f} ms); the ingress shares the "
            f"{os.cpu_count()} cores with the workers. **Queued first**: everything POSTed "
            "with no worker running, then the workers start; from the first row claimed "
            "until every row settled: the workers alone. Worker CPU: their CPU time "
            "(work horses included) from registered to stopped, per message, beside the "
            "baseline's CPU time per message: the share that holds per core however busy "
            "the machine is (the wall-clock rates move with whatever else runs). Per core, "
            "wall clock: ours / (processes x baseline). The `--fork` row works every 8th "
            "message.",
            "",
            "| path | messages | ours (msg/s) | baseline (msg/s) | ours / baseline per core "
            f"| worker CPU (ms/msg; baseline {base_cpu_ms:.2f}) | baseline CPU / ours |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
            f"| in-process `AppSimpleWorker`, burst (above) | {count} | {ours_rate:.1f} | "
            f"{base_rate:.0f} | {ours_rate / base_rate:.1%} | "
            f"{by_cpu(ours_cpu * 1000 / count)} |",
            *(
                f"| {t.label} | {t.messages} | {t.rate:.1f} | {base_rate:.0f} | "
                f"{t.rate / (t.processes * base_rate):.1%} | "
                + (by_cpu(t.cpu_ms_per_message) or " | ")
                + " |"
                for t in shipped
            ),
            "",
            f"Two processes / one: {scaling('end to end')} end to end, "
            f"{scaling('queued first')} queued first. One `python worker.py` / one "
            f"`python worker.py --fork`, end to end: {one_shipped.rate / fork.rate:.1f}x the "
            "rate"
            + (
                f", {fork.cpu_ms_per_message / one_shipped.cpu_ms_per_message:.1f}x less CPU "
                "per message"
                if fork.cpu_ms_per_message and one_shipped.cpu_ms_per_message
                else ""
            )
            + ". Outcomes: "
            + "; ".join(
                f"{t.label}: "
                + ", ".join(f"{n} {status}" for status, n in sorted(t.statuses.items()))
                for t in shipped
            )
            + ".",
            "",
        ]
    )


def main(argv: list[str]) -> None:
    print(run())


if __name__ == "__main__":
    main(sys.argv[1:])
