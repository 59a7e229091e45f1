"""Visible state (issue 13): workers, queue depths, pending inbound mail, rows a dead worker
left past their lease and replies of unknown fate, in `flask doctor` and on the admin System
page, gathered by services.backlog."""

from __future__ import annotations

import re
import socket
import uuid
from datetime import timedelta

from rq import Queue, Worker

from extensions import db, get_redis
from jobs.diagnostics import worker_ping
from models import Contact, Conversation, InboundEmail, Message, utcnow
from tests.integration.test_doctor import parse


def inbound(minutes_ago: float, status: str = "pending", lease_seconds=None) -> InboundEmail:
    """A row; `processing` ones hold a lease running `lease_seconds` from now (None: none)."""
    row = InboundEmail(
        status=status,
        lease_expires_at=lease(lease_seconds),
        message_id=f"{uuid.uuid4().hex}@customer.example",
        checksum=uuid.uuid4().hex[:40],
        source="relay",
        created_at=utcnow() - timedelta(minutes=minutes_ago),
    )
    db.session.add(row)
    db.session.commit()
    return row


def lease(seconds: float | None):
    return None if seconds is None else utcnow() + timedelta(seconds=seconds)


def reply(inbox, status: str, minutes_ago: float, lease_seconds=None) -> Message:
    contact = Contact(email=f"{uuid.uuid4().hex[:8]}@customer.example", name="Carla")
    db.session.add(contact)
    db.session.commit()
    conversation = Conversation(
        inbox_id=inbox.id, contact_id=contact.id, display_number=db.session.query(Message).count()
    )
    db.session.add(conversation)
    db.session.commit()
    message = Message(
        conversation_id=conversation.id,
        inbox_id=inbox.id,
        direction="outgoing",
        delivery_status=status,
        lease_expires_at=lease(lease_seconds),
    )
    db.session.add(message)
    db.session.commit()
    # updated_at is stamped on every write: set the age with a plain UPDATE afterwards.
    db.session.query(Message).filter_by(id=message.id).update(
        {"updated_at": utcnow() - timedelta(minutes=minutes_ago)}
    )
    db.session.commit()
    return message


def register_worker(name: str) -> Worker:
    """A worker as RQ records a live one: registered, with a fresh heartbeat."""
    worker = Worker(["default", "inbound"], connection=get_redis(), name=name)
    worker.register_birth()
    worker.set_state("idle")
    worker.heartbeat()
    return worker


def doctor(runner):
    result = runner.invoke(args=["doctor"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result, parse(result.output)


def test_pending_mail_and_no_worker_fails_and_says_what_to_start(app, runner):
    inbound(minutes_ago=5)
    inbound(minutes_ago=3)
    inbound(minutes_ago=0)  # just arrived: not yet "waiting"

    result, checks = doctor(runner)

    assert result.exit_code == 1, result.output
    assert checks["workers"] == (
        "FAIL",
        "no worker is running and 2 inbound email(s) wait (oldest 5 min)",
    )
    assert "fix: start the workers: make run (it starts everything), or python worker.py" in (
        result.output
    )
    assert "threadline-worker@1" in result.output
    assert checks["inbound mail"] == ("WARN", "3 pending, oldest 5 min old")
    assert "1 problem(s): workers." in result.output


def test_a_queued_reply_and_no_worker_fails_too(app, runner, inbox):
    reply(inbox, "queued", minutes_ago=3)
    result, checks = doctor(runner)
    assert result.exit_code == 1, result.output
    assert checks["workers"] == ("FAIL", "no worker is running and 1 reply(ies) wait to be sent")
    assert checks["replies"][0] == "WARN"
    assert checks["replies"][1] == ("1 queued, 0 sending left by a stopped worker")


def test_fresh_mail_without_a_worker_is_only_a_warning(app, runner):
    inbound(minutes_ago=0)
    result, checks = doctor(runner)
    assert checks["workers"] == ("WARN", "no worker is running; mail will wait")
    assert checks["inbound mail"] == ("OK", "1 pending, oldest 0 s old")
    assert result.exit_code == 0, result.output


def test_a_live_worker_is_listed_and_queue_depths_match(app, runner, inbox):
    inbound(minutes_ago=5)
    reply(inbox, "sending", minutes_ago=15, lease_seconds=-900)  # its worker died
    reply(inbox, "sending", minutes_ago=15, lease_seconds=15)  # a long send, still renewed
    register_worker("doctor-test-worker")
    connection = get_redis()
    for _ in range(3):
        Queue("inbound", connection=connection).enqueue(worker_ping)
    Queue("low", connection=connection).enqueue(worker_ping)
    failed = Queue("outbound", connection=connection).enqueue(worker_ping)
    Queue("outbound", connection=connection).remove(failed)
    Queue("outbound", connection=connection).failed_job_registry.add(failed, ttl=-1)

    result, checks = doctor(runner)

    assert checks["workers"] == ("OK", "1 worker(s) listening"), result.output
    host = socket.gethostname()
    assert re.search(
        rf"^\s+doctor-test-worker on {re.escape(host)} pid \d+: idle, heartbeat [0-9] s ago$",
        result.output,
        re.M,
    ), result.output
    assert checks["queues"] == (
        "OK",
        "waiting: default 0, inbound 3, outbound 0, low 1; failed jobs: 1",
    )
    assert checks["replies"] == (
        "WARN",
        "0 queued, 1 sending left by a stopped worker (lease ran out 15 min ago)",
    )
    assert checks["inbound mail"][0] == "WARN"
    assert [name for name, (state, _) in checks.items() if state == "FAIL"] == []
    assert result.exit_code == 0, result.output


def test_system_page_shows_the_same_numbers_to_admins_only(app, client, auth, make_user, inbox):
    inbound(minutes_ago=7)
    reply(inbox, "sending", minutes_ago=20)  # claimed before leases existed: none, so ran out
    register_worker("page-test-worker")
    Queue("inbound", connection=get_redis()).enqueue(worker_ping)
    Queue("inbound", connection=get_redis()).enqueue(worker_ping)

    agent = make_user(role="agent")
    auth.login(agent.email, agent.plain_password)
    assert client.get("/admin/system").status_code == 403
    auth.logout()

    admin = make_user(role="admin", name="Ada Admin")
    auth.login(admin.email, admin.plain_password)
    page = client.get("/admin/system")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "page-test-worker" in html
    assert re.search(r"idle, heartbeat [0-9] s ago", html)
    rows = re.findall(
        r"<tr><td>(\w+)</td><td class=\"count\">(\d+)</td><td class=\"count\">(\d+)</td></tr>",
        html,
    )
    assert rows == [
        ("default", "0", "0"),
        ("inbound", "2", "0"),
        ("outbound", "0", "0"),
        ("low", "0", "0"),
    ]
    assert "1 pending, oldest 7 min old" in html
    assert "0 queued, 1 sending left by a stopped worker (lease ran out 20 min ago)" in (html)
    assert "style=" not in html and "<script>" not in html  # the strict CSP allows neither


def test_rows_left_by_a_dead_worker_and_replies_of_unknown_fate_are_named(app, runner, inbox):
    inbound(minutes_ago=4, status="processing", lease_seconds=-30)  # its worker died
    inbound(minutes_ago=2, status="processing", lease_seconds=12)  # being processed
    reply(inbox, "unknown", minutes_ago=9)

    result, checks = doctor(runner)

    assert checks["inbound mail"] == (
        "WARN",
        "0 pending; 1 processing left by a stopped worker (lease ran out 30 s ago)",
    )
    assert checks["replies"] == (
        "WARN",
        "0 queued, 0 sending left by a stopped worker; 1 of unknown fate",
    )
    assert "send it again or mark it as sent" in result.output
    # Mail a dead worker left, and no worker to take it over: doctor fails and says why.
    assert checks["workers"] == (
        "FAIL",
        "no worker is running and 1 inbound email(s) were left by a dead worker",
    )
    assert result.exit_code == 1, result.output
