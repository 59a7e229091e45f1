"""Benchmark IMAP IDLE: how long a message APPENDed to a real Dovecot mailbox takes to become
a conversation, with the IDLE supervisor (jobs/imap_idle.py) watching and a real
`python worker.py` importing, against what polling alone gives.

The polling baseline is derived, not waited out (it would take ~10 minutes): the scheduler
checks for due polls every 30 s (jobs/schedule.py) and an inbox is due 60 s (the default
interval) after its last poll, so a poll runs every 60-90 s and a message waits for the next
one: on average about half that, 45 s at worst 90 s, plus the import itself, which is measured
here by queuing a poll right after the APPEND.
"""

from __future__ import annotations

import os
import secrets
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

MESSAGES = 10
POLL_INTERVAL = 60  # seconds, ImapSettings.poll_interval_seconds' default
SCHEDULER_TICK = 30  # seconds, enqueue_due_imap_polls' interval in jobs/schedule.py
TIMEOUT = 30  # seconds for one message before the run is declared broken


def _email(n: int) -> bytes:
    return (
        f"From: Carla <carla{n}@customer.example>\r\nTo: support@example.com\r\n"
        f"Subject: Bench {n}\r\nMessage-ID: <{uuid.uuid4().hex}@customer.example>\r\n"
        f"\r\nHello {n}\r\n"
    ).encode()


def _conversations(inbox_id: int) -> int:
    from sqlalchemy import func, select

    from extensions import db
    from models import Conversation

    db.session.rollback()
    return db.session.scalar(
        select(func.count()).select_from(Conversation).where(Conversation.inbox_id == inbox_id)
    )


def _latency(dovecot, account, inbox_id: int, n: int, after_append=None) -> float:
    before = _conversations(inbox_id)
    started = time.perf_counter()
    dovecot.append(*account, _email(n))
    if after_append:
        after_append()
    while _conversations(inbox_id) <= before:
        if time.perf_counter() - started > TIMEOUT:
            raise RuntimeError(f"message {n} was not imported within {TIMEOUT} s")
        time.sleep(0.02)
    return time.perf_counter() - started


def dovecot_settings(dovecot, account: tuple[str, str]):
    """An inbox's IMAP settings for this Dovecot account, never due for a poll of its own:
    the benchmark says when it polls (or only IDLE runs)."""
    from models import ImapSettings, utcnow

    return ImapSettings(
        host=dovecot.host,
        port=dovecot.port,
        security="none",
        username=account[0],
        password=account[1],
        next_poll_at=utcnow().replace(year=utcnow().year + 1),
    )


def run() -> str:
    from tests.support.dovecot import DOVECOT

    if not os.path.exists(DOVECOT):
        return (
            "## IMAP IDLE\n\nSkipped: Dovecot is not installed (`apt-get install dovecot-imapd`).\n"
        )
    return _run()


def _run() -> str:
    from flask_migrate import upgrade
    from rq import Worker

    from app import create_app
    from extensions import db, get_redis
    from jobs.imap_idle import IdleSupervisor
    from models import Inbox
    from runtime.embedded_redis import EmbeddedRedis
    from services.background import enqueue_poll
    from tests.support.dovecot import DovecotServer, private_base
    from tests.support.worker_processes import WorkerProcesses

    dovecot = DovecotServer(private_base("threadline-bench-idle-"))
    dovecot.start()
    account = (f"bench-{uuid.uuid4().hex[:8]}@example.com", secrets.token_hex(8))
    dovecot.add_user(*account)
    try:
        with tempfile.TemporaryDirectory(prefix="threadline-bench-") as tmp:
            work = Path(tmp)
            with EmbeddedRedis(str(work / "redis.sock"), str(work / "redis")) as redis_server:
                config = {
                    "SECRET_KEY": "bench-secret-key-0123456789abcdef",
                    "INBOUND_EMAIL_PASSWORD": "bench",
                    "REDIS_URL": redis_server.url,
                    "INSTANCE_PATH": str(work / "instance"),
                    "DATABASE_URL": "sqlite:///" + str(work / "instance" / "threadline.db"),
                    "STORAGE_BACKEND": "local",
                    "STORAGE_LOCAL_PATH": str(work / "storage"),
                    "LOG_LEVEL": "WARNING",
                }
                app = create_app(config)
                processes = WorkerProcesses(config, work)
                with app.app_context():
                    upgrade()
                    inbox = Inbox(name="Support", support_address="support@example.com")
                    inbox.mode = "imap"
                    inbox.imap = dovecot_settings(dovecot, account)  # IDLE only
                    db.session.add(inbox)
                    db.session.commit()
                    inbox_id = inbox.id
                    processes.env["LOG_LEVEL"] = "WARNING"
                    processes.start("worker")
                    try:
                        deadline = time.monotonic() + 30
                        while not Worker.all(connection=get_redis()):
                            if time.monotonic() > deadline:
                                raise RuntimeError(processes.logs())
                            time.sleep(0.1)
                        idle, polled = _measure(
                            app, dovecot, account, inbox_id, IdleSupervisor, enqueue_poll
                        )
                    finally:
                        processes.stop_all()
    finally:
        dovecot.remove()
    idle_mean, idle_max = statistics.mean(idle), max(idle)
    import_mean = statistics.mean(polled)
    wait_mean = (POLL_INTERVAL + (POLL_INTERVAL + SCHEDULER_TICK)) / 4  # half of 60-90 s
    wait_max = POLL_INTERVAL + SCHEDULER_TICK
    return "\n".join(
        [
            "## IMAP IDLE",
            "",
            f"{MESSAGES} messages APPENDed one at a time to a real Dovecot mailbox; seconds "
            "until each is a conversation, imported by a real `python worker.py`. Baseline: "
            f"polling alone ({POLL_INTERVAL} s interval, {SCHEDULER_TICK} s scheduler tick), "
            "derived as the wait for the next poll plus the measured import "
            f"({import_mean:.2f} s with a poll queued right after the APPEND).",
            "",
            "| path | ours (s) | baseline (s) | ratio |",
            "| --- | ---: | ---: | ---: |",
            f"| IDLE, mean | {idle_mean:.2f} | {wait_mean + import_mean:.1f} | "
            f"{(wait_mean + import_mean) / idle_mean:.0f}x faster |",
            f"| IDLE, worst | {idle_max:.2f} | {wait_max + import_mean:.1f} | "
            f"{(wait_max + import_mean) / idle_max:.0f}x faster |",
            "",
        ]
    )


def _measure(app, dovecot, account, inbox_id, supervisor_class, enqueue_poll):
    supervisor = supervisor_class(app, rescan_seconds=1)
    thread = threading.Thread(target=supervisor.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not (
            (watcher := supervisor.watchers.get(inbox_id))
            and watcher.connections
            and not watcher._poll_pending
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("the IDLE watcher never connected")
            time.sleep(0.05)
        time.sleep(1)  # the poll queued on connecting has run
        idle = [_latency(dovecot, account, inbox_id, n) for n in range(MESSAGES)]
    finally:
        supervisor.stop()
        thread.join(15)
    polled = [
        _latency(dovecot, account, inbox_id, MESSAGES + n, lambda: enqueue_poll(inbox_id))
        for n in range(3)
    ]
    return idle, polled


if __name__ == "__main__":
    print(run())
