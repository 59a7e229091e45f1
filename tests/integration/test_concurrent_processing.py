"""Two real worker processes racing over a batch full of duplicates: one message per id."""

import os
import signal
import subprocess
import sys
import time
from collections import Counter

from rq import Queue, Worker
from sqlalchemy import func, select

from config import PROJECT_ROOT
from extensions import db, get_redis
from models import Contact, Conversation, InboundEmail, Inbox, Message
from tests.support.inbound import post_relay

CUSTOMERS = 12


def raw(n: int, route_header: str = "") -> bytes:
    """Message n; the same n with another route header is a second copy (other bytes)."""
    customer = n % CUSTOMERS
    return (
        f"From: Customer {customer} <c{customer}@customer.example>\r\n"
        f"To: support@example.com\r\n{route_header}"
        f"Subject: Question {n}\r\nMessage-ID: <q{n}@customer.example>\r\n\r\nBody {n}\r\n"
    ).encode()


def wait_until(condition, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"still waiting after {seconds} s"
        time.sleep(0.05)


def worker_env(app_config: dict) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()}
    for name in ("SECRET_KEY", "INBOUND_EMAIL_PASSWORD", "DATABASE_URL", "REDIS_URL"):
        env[name] = str(app_config[name])
    # LOG_LEVEL=DEBUG: RQ's per-job lines (held back at INFO) show which worker ran what.
    env.update(
        INSTANCE_PATH=str(app_config["INSTANCE_PATH"]), ENV_FILE=os.devnull, LOG_LEVEL="DEBUG"
    )
    return env


def test_two_workers_deliver_each_message_id_exactly_once(app, client, app_config, tmp_path):
    db.session.add(Inbox(name="Support", support_address="support@example.com"))
    db.session.commit()
    messages = 60
    command = [sys.executable, "worker.py", "--queues", "inbound"]
    env = worker_env(app_config)
    # Logs to files: a pipe nobody reads while they work fills up and stops them mid-log.
    logs = [tmp_path / f"worker-{n}.log" for n in range(2)]
    workers = []
    for log in logs:
        with log.open("w") as stderr:
            workers.append(subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stderr=stderr))
    try:
        # Both are waiting on the queue before the first job is queued: started in burst
        # mode after the batch, one could finish it before the other had imported the app.
        wait_until(lambda: Worker.count(queue=Queue("inbound", connection=get_redis())) == 2)
        for n in range(messages):
            for copy in (raw(n), raw(n, "X-Forwarded-For: support@example.com\r\n")):
                post_relay(client, copy)

        def processed() -> bool:
            db.session.rollback()  # a fresh snapshot: the workers commit in other processes
            return not db.session.scalar(
                select(func.count(InboundEmail.id)).where(InboundEmail.status != "delivered")
            )

        wait_until(processed)
        for w in workers:
            w.send_signal(signal.SIGTERM)  # a warm shutdown: each exits 0 when idle
        for w in workers:
            w.wait(timeout=60)
    finally:
        for w in workers:
            w.kill()
    texts = [log.read_text() for log in logs]
    assert [w.returncode for w in workers] == [0, 0], texts
    assert all("process-inbound-" in text for text in texts), (
        "both workers must have processed jobs: " + "\n".join(t[-2000:] for t in texts)
    )

    db.session.expire_all()
    statuses = Counter(db.session.scalars(select(InboundEmail.status)))
    assert statuses == {"delivered": 2 * messages}
    ids = list(db.session.scalars(select(Message.message_id)))
    assert len(ids) == messages and len(set(ids)) == messages
    numbers = list(db.session.scalars(select(Conversation.display_number)))
    assert sorted(numbers) == list(range(1, len(numbers) + 1))  # unique, no gaps
    assert db.session.scalar(select(func.count(Contact.id))) == CUSTOMERS
    duplicates = db.session.scalar(
        select(func.count(InboundEmail.id)).where(
            InboundEmail.reason == "duplicate of a message already delivered"
        )
    )
    assert duplicates == messages
