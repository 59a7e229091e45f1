"""Two real worker processes racing over a batch full of duplicates: one message per id."""

import os
import subprocess
import sys
from collections import Counter

from sqlalchemy import func, select

from config import PROJECT_ROOT
from extensions import db
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


def worker_env(app_config: dict) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()}
    for name in ("SECRET_KEY", "INBOUND_EMAIL_PASSWORD", "DATABASE_URL", "REDIS_URL"):
        env[name] = str(app_config[name])
    # LOG_LEVEL=DEBUG: RQ's per-job lines (held back at INFO) show which worker ran what.
    env.update(
        INSTANCE_PATH=str(app_config["INSTANCE_PATH"]), ENV_FILE=os.devnull, LOG_LEVEL="DEBUG"
    )
    return env


def test_two_workers_deliver_each_message_id_exactly_once(app, client, app_config):
    db.session.add(Inbox(name="Support", support_address="support@example.com"))
    db.session.commit()
    messages = 60
    for n in range(messages):
        for copy in (raw(n), raw(n, "X-Forwarded-For: support@example.com\r\n")):
            post_relay(client, copy)
    assert db.session.scalar(select(func.count(InboundEmail.id))) == 2 * messages

    command = [sys.executable, "worker.py", "--burst", "--queues", "inbound"]
    env = worker_env(app_config)
    workers = [
        subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    logs = [w.communicate(timeout=240)[1] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], logs
    assert all("process-inbound-" in log for log in logs), (
        "both workers must have processed jobs: " + "\n".join(log[-2000:] for log in logs)
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
