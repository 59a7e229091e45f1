"""IMAP polling against a real Dovecot: each message imported once, flags left alone, batches,
outages, UIDVALIDITY changes, authentication failures, TLS and two polls racing."""

import os
import re
import secrets
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from rq import Queue
from sqlalchemy import func, select

from config import PROJECT_ROOT
from extensions import db, get_redis
from jobs.imap_poll import enqueue_due_imap_polls, lock_name, poll_inbox
from mail.imap import ImapTarget, connect
from models import (
    Conversation,
    ImapFolderState,
    ImapSettings,
    InboundEmail,
    Inbox,
    Message,
    utcnow,
)
from services.background import poll_job_id
from services.imap_import import FETCH_MESSAGES, ImportPlan, import_folder
from tests.support.dovecot import DovecotServer, private_base
from tests.support.inbound import post_relay, work_inbound


def add_account(server) -> tuple[str, str]:
    """A fresh mailbox (add_user waits until Dovecot will see it)."""
    username, password = f"user-{uuid.uuid4().hex[:10]}@example.com", secrets.token_hex(8)
    server.add_user(username, password)
    return username, password


@contextmanager
def private_dovecot(tls=False):
    """This module's own Dovecot, outside pytest's /tmp/pytest-of-<user>: any pytest session
    starting on the machine chmods that back to 0700 and locks Dovecot's auth process out of
    the users file; and the stop/start tests here disturb no other module."""
    server = DovecotServer(private_base("threadline-imap-poll-"), tls=tls)
    server.start()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="module")
def dovecot():
    with private_dovecot() as server:
        yield server


@pytest.fixture(scope="module")
def dovecot_tls():
    with private_dovecot(tls=True) as server:
        yield server


@pytest.fixture
def imap_account(dovecot):
    return add_account(dovecot)


def bodies_fetched(server, username: str) -> int:
    """Dovecot's own count of message bodies sent to this user's sessions: the dedupe would
    hide a second download from the database, not from the server's log."""
    lines = [line for line in server.log().splitlines() if f"imap({username})" in line]
    return sum(int(n) for line in lines for n in re.findall(r"body_count=(\d+)", line))


def email(n: int, to: str = "support@example.com", tag: str = "") -> bytes:
    return (
        f"From: Customer {n} <c{n}@customer.example>\r\nTo: {to}\r\n"
        f"Subject: Question {n}\r\nMessage-ID: <q{n}{tag}@customer.example>\r\n"
        f"\r\nBody {n}\r\n"
    ).encode()


def imap_inbox(server, account, security="none", host="127.0.0.1", **imap) -> Inbox:
    username, password = account
    inbox = Inbox(name="Support", support_address="support@example.com", mode="imap")
    inbox.imap = ImapSettings(
        host=host,
        port=server.port,
        security=security,
        username=username,
        password=password,
        **imap,
    )
    db.session.add(inbox)
    db.session.commit()
    return inbox


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def settings_of(inbox: Inbox) -> ImapSettings:
    db.session.expire_all()
    return db.session.get(ImapSettings, inbox.id)


def folder_flags(server, account, folder="INBOX") -> list[tuple]:
    with server.client(*account) as imap:
        imap.select_folder(folder, readonly=True)
        found = sorted(imap.get_flags(imap.search("ALL")).items())
    return [tuple(f for f in flags if f != b"\\Recent") for _, flags in found]  # per session


def test_new_mail_is_imported_once_into_the_polled_inbox(app, dovecot, imap_account):
    inbox = imap_inbox(dovecot, imap_account)
    # Sent to an alias the mailbox receives: it still belongs to the inbox being polled.
    dovecot.append(*imap_account, email(1, to="help@company.example"))

    assert poll_inbox(inbox.id) == "imported 1 message"
    assert poll_inbox(inbox.id) == "no new mail"
    assert bodies_fetched(dovecot, imap_account[0]) == 1  # `UID 2:*` still matches UID 1
    work_inbound(app)

    inbound = db.session.scalars(select(InboundEmail)).one()
    assert inbound.inbox_id == inbox.id and inbound.source == f"imap:{inbox.id}:INBOX"
    assert inbound.status == "delivered", inbound.reason
    message = db.session.scalars(select(Message)).one()
    conversation = db.session.get(Conversation, message.conversation_id)
    assert conversation.inbox_id == inbox.id and message.message_id == "q1@customer.example"

    settings = settings_of(inbox)
    assert settings.last_poll_result == "no new mail" and settings.consecutive_failures == 0
    wait = settings.next_poll_at - settings.last_poll_at
    assert wait == timedelta(seconds=settings.poll_interval_seconds)
    state = db.session.scalars(select(ImapFolderState)).one()
    assert state.last_uid == 1 and state.uidvalidity and state.last_success_at


def test_messages_are_left_untouched_by_default(app, dovecot, imap_account):
    inbox = imap_inbox(dovecot, imap_account)
    dovecot.append(*imap_account, email(1))
    dovecot.append(*imap_account, email(2))
    with dovecot.client(*imap_account) as imap:
        imap.select_folder("INBOX")
        imap.add_flags([2], [b"\\Flagged"])

    assert poll_inbox(inbox.id) == "imported 2 messages"

    assert folder_flags(dovecot, imap_account) == [(), (b"\\Flagged",)]


@pytest.mark.parametrize("action", ["mark", "move", "delete"])
def test_after_import_actions(app, dovecot, imap_account, action):
    inbox = imap_inbox(dovecot, imap_account, after_import=action, move_to_folder="Imported")
    with dovecot.client(*imap_account) as imap:
        imap.create_folder("Imported")
    dovecot.append(*imap_account, email(1))
    dovecot.append(*imap_account, email(2))

    assert poll_inbox(inbox.id) == "imported 2 messages"

    left = folder_flags(dovecot, imap_account)
    moved = folder_flags(dovecot, imap_account, "Imported")
    expected = {
        "mark": ([(b"\\Seen",), (b"\\Seen",)], []),
        "move": ([], [(), ()]),
        "delete": ([], []),
    }
    assert (left, moved) == expected[action]
    assert count(InboundEmail) == 2
    assert poll_inbox(inbox.id) == "no new mail"


def test_a_failing_move_keeps_the_import_and_says_why(app, dovecot, imap_account):
    inbox = imap_inbox(dovecot, imap_account, after_import="move", move_to_folder="Nowhere")
    dovecot.append(*imap_account, email(1))

    result = poll_inbox(inbox.id)

    assert result.startswith("imported 1 message; imported, but move to 'Nowhere' failed: ")
    assert count(InboundEmail) == 1 and len(folder_flags(dovecot, imap_account)) == 1
    assert poll_inbox(inbox.id) == "no new mail"  # not imported again


def test_five_hundred_messages_arrive_in_batches_none_missing_or_twice(app, dovecot, imap_account):
    inbox = imap_inbox(dovecot, imap_account)
    with dovecot.client(*imap_account) as imap:
        for n in range(500):
            imap.append("INBOX", email(n))

    results = [poll_inbox(inbox.id, batch_size=150) for _ in range(4)]
    assert results == ["imported 150 messages; more to fetch"] * 3 + ["imported 50 messages"]
    assert poll_inbox(inbox.id, batch_size=150) == "no new mail"

    ids = list(db.session.scalars(select(InboundEmail.message_id)))
    assert sorted(ids) == sorted(f"q{n}@customer.example" for n in range(500))
    assert folder_flags(dovecot, imap_account) == [()] * 500


def test_more_waiting_makes_the_inbox_due_again_at_once(app, dovecot, imap_account):
    inbox = imap_inbox(dovecot, imap_account)
    for n in range(3):
        dovecot.append(*imap_account, email(n))

    assert poll_inbox(inbox.id, batch_size=2) == "imported 2 messages; more to fetch"
    assert settings_of(inbox).next_poll_at <= utcnow()
    assert enqueue_due_imap_polls() == 1

    assert poll_inbox(inbox.id, batch_size=2) == "imported 1 message"
    assert settings_of(inbox).next_poll_at > utcnow() + timedelta(seconds=30)


def append_many(server, account, count: int) -> None:
    with server.client(*account) as imap:
        for n in range(count):
            imap.append("INBOX", email(n))


def imported_ids() -> list[str]:
    return sorted(db.session.scalars(select(InboundEmail.message_id)))


def test_a_backlog_larger_than_one_fetch_is_imported_in_one_poll_each_message_once(
    app, dovecot, imap_account
):
    inbox = imap_inbox(dovecot, imap_account)
    count_ = 2 * FETCH_MESSAGES + 10  # three FETCHes
    append_many(dovecot, imap_account, count_)

    assert poll_inbox(inbox.id) == f"imported {count_} messages"

    assert imported_ids() == sorted(f"q{n}@customer.example" for n in range(count_))
    assert bodies_fetched(dovecot, imap_account[0]) == count_
    state = db.session.scalars(select(ImapFolderState)).one()
    assert state.last_uid == count_
    assert poll_inbox(inbox.id) == "no new mail"


def test_a_crash_between_fetches_resumes_where_it_stopped_without_duplicates(
    app, dovecot, imap_account
):
    inbox = imap_inbox(dovecot, imap_account)
    count_ = 2 * FETCH_MESSAGES + 10
    append_many(dovecot, imap_account, count_)
    settings = settings_of(inbox)
    plan = ImportPlan.from_settings(settings)
    calls = []

    def die_before_the_second_fetch():
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the worker was killed")

    with connect(ImapTarget.from_settings(settings), 20) as client:
        with pytest.raises(RuntimeError):
            import_folder(client, plan, "INBOX", 1000, die_before_the_second_fetch)
    db.session.rollback()  # whatever the dead worker had not committed is gone
    assert count(InboundEmail) == FETCH_MESSAGES  # the first FETCH's messages, committed

    assert poll_inbox(inbox.id) == f"imported {count_ - FETCH_MESSAGES} messages"

    assert imported_ids() == sorted(f"q{n}@customer.example" for n in range(count_))
    assert bodies_fetched(dovecot, imap_account[0]) == count_  # none fetched twice


def test_a_poll_past_its_time_stops_between_fetches_and_is_due_again(app, dovecot, imap_account):
    inbox = imap_inbox(dovecot, imap_account)
    count_ = FETCH_MESSAGES + 5
    append_many(dovecot, imap_account, count_)

    # Out of time from the start: one FETCH still runs, so every poll makes progress.
    result = poll_inbox(inbox.id, seconds=0)

    assert result == f"imported {FETCH_MESSAGES} messages; more to fetch"
    assert settings_of(inbox).next_poll_at <= utcnow()
    assert poll_inbox(inbox.id) == "imported 5 messages"
    assert imported_ids() == sorted(f"q{n}@customer.example" for n in range(count_))


def test_an_outage_backs_off_and_loses_nothing(app, dovecot, imap_account):
    inbox = imap_inbox(dovecot, imap_account)
    dovecot.append(*imap_account, email(1))
    assert poll_inbox(inbox.id) == "imported 1 message"

    dovecot.stop()
    try:
        for failures, minutes in ((1, 1), (2, 2), (3, 4)):
            result = poll_inbox(inbox.id)
            assert "cannot connect to 127.0.0.1" in result and "Connection refused" in result
            settings = settings_of(inbox)
            assert settings.consecutive_failures == failures
            assert settings.next_poll_at - settings.last_poll_at == timedelta(minutes=minutes)
            assert f"next try in {minutes} min" in settings.last_poll_result
        assert enqueue_due_imap_polls() == 0  # backing off: not due yet
        dovecot.deliver(imap_account[0], email(2))
        dovecot.deliver(imap_account[0], email(3))
    finally:
        dovecot.start()

    assert poll_inbox(inbox.id) == "imported 2 messages"
    settings = settings_of(inbox)
    assert settings.consecutive_failures == 0 and settings.last_poll_result == "imported 2 messages"
    assert sorted(db.session.scalars(select(InboundEmail.message_id))) == [
        f"q{n}@customer.example" for n in (1, 2, 3)
    ]


def test_uidvalidity_change_resyncs_without_duplicates(app, dovecot, imap_account):
    inbox = imap_inbox(dovecot, imap_account)
    dovecot.append(*imap_account, email(1))
    dovecot.append(*imap_account, email(2))
    assert poll_inbox(inbox.id) == "imported 2 messages"
    before = db.session.scalars(select(ImapFolderState)).one().uidvalidity

    dovecot.stop()
    try:
        dovecot.reset_uidvalidity(imap_account[0])
        dovecot.deliver(imap_account[0], email(3))
    finally:
        dovecot.start()
    with dovecot.client(*imap_account) as imap:
        assert imap.select_folder("INBOX")[b"UIDVALIDITY"] != before

    assert poll_inbox(inbox.id) == "imported 1 message"
    assert poll_inbox(inbox.id) == "no new mail"
    work_inbound(app)

    state = db.session.scalars(select(ImapFolderState)).one()
    assert state.uidvalidity != before and state.last_uid == 3
    assert count(InboundEmail) == 3 and count(Message) == 3


def test_first_sync_starts_one_day_back_or_at_the_chosen_date(app, dovecot, imap_account):
    old = datetime.now(UTC) - timedelta(days=5)
    with dovecot.client(*imap_account) as imap:
        imap.append("INBOX", email(1), msg_time=old)
        imap.append("INBOX", email(2))
    inbox = imap_inbox(dovecot, imap_account)
    assert poll_inbox(inbox.id) == "imported 1 message"
    assert db.session.scalars(select(InboundEmail.message_id)).all() == ["q2@customer.example"]

    username, password = add_account(dovecot)
    with dovecot.client(username, password) as imap:
        imap.append("INBOX", email(3), msg_time=old)
    second = Inbox(name="Sales", support_address="sales@example.com", mode="imap")
    second.imap = ImapSettings(
        host="127.0.0.1",
        port=dovecot.port,
        security="none",
        username=username,
        password=password,
        import_since=old - timedelta(days=1),
    )
    db.session.add(second)
    db.session.commit()
    assert poll_inbox(second.id) == "imported 1 message"


def test_a_forwarded_copy_and_the_imap_copy_make_one_message(app, client, dovecot, imap_account):
    inbox = imap_inbox(dovecot, imap_account)
    raw = email(7)
    post_relay(client, raw)
    dovecot.append(*imap_account, raw)

    assert poll_inbox(inbox.id) == "imported 1 message"
    work_inbound(app)

    assert count(Message) == 1 and count(Conversation) == 1
    assert count(InboundEmail, InboundEmail.status == "delivered") == 2


def test_wrong_password_needs_attention_in_the_servers_words(app):
    # A failed sign-in makes Dovecot delay the next one from 127.0.0.1 by seconds: own server.
    with private_dovecot() as dovecot:
        imap_account = add_account(dovecot)
        inbox = imap_inbox(dovecot, (imap_account[0], "wrong password"))
        result = poll_inbox(inbox.id)

    assert result.endswith("refused the sign-in: [AUTHENTICATIONFAILED] Authentication failed.")
    db.session.expire_all()
    inbox = db.session.get(Inbox, inbox.id)
    assert "[AUTHENTICATIONFAILED] Authentication failed." in inbox.needs_attention
    assert "app password" in inbox.needs_attention  # and what to do about it
    assert inbox.imap.last_poll_result == result and inbox.imap.next_poll_at is None
    assert enqueue_due_imap_polls() == 0
    assert poll_inbox(inbox.id) == "skipped"  # a job queued before does nothing either

    # Saving the settings (the settings page) clears the flag: polling resumes by itself.
    inbox.imap.password = imap_account[1]
    inbox.needs_attention = None
    db.session.commit()
    assert enqueue_due_imap_polls() == 1


def test_a_folder_that_cannot_be_read_does_not_stop_the_others(app, dovecot, imap_account):
    inbox = imap_inbox(dovecot, imap_account, folders="INBOX\nNo such folder")
    dovecot.append(*imap_account, email(1))

    result = poll_inbox(inbox.id)

    assert result.startswith("imported 1 message; folder 'No such folder': ")
    assert "Mailbox doesn't exist" in result
    settings = settings_of(inbox)
    assert settings.consecutive_failures == 0
    broken = db.session.scalars(
        select(ImapFolderState).where(ImapFolderState.folder == "No such folder")
    ).one()
    assert broken.consecutive_errors == 1 and "Mailbox doesn't exist" in broken.last_error


def test_tls_is_verified_and_a_private_ca_comes_from_ssl_cert_file(app, dovecot_tls, monkeypatch):
    account = add_account(dovecot_tls)
    dovecot_tls.append(*account, email(1))
    inbox = imap_inbox(dovecot_tls, account, security="ssl", host="localhost")

    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    result = poll_inbox(inbox.id)
    assert "TLS with localhost" in result and "CERTIFICATE_VERIFY_FAILED" in result
    assert count(InboundEmail) == 0

    monkeypatch.setenv("SSL_CERT_FILE", str(dovecot_tls.cert_path))
    assert poll_inbox(inbox.id) == "imported 1 message"


def test_a_poll_already_running_elsewhere_is_left_alone(app, dovecot, imap_account):
    inbox = imap_inbox(dovecot, imap_account)
    dovecot.append(*imap_account, email(1))
    held = get_redis().lock(lock_name(inbox.id), timeout=30)
    assert held.acquire(blocking=False)
    try:
        assert poll_inbox(inbox.id) == "busy"
        assert count(InboundEmail) == 0 and settings_of(inbox).last_poll_at is None
    finally:
        held.release()
    assert poll_inbox(inbox.id) == "imported 1 message"


POLLER = """
import sys, time
from app import create_app
from extensions import get_redis
from jobs.imap_poll import poll_inbox
app = create_app()
with app.app_context():
    get_redis().incr("test:imap-ready")
    while not get_redis().exists("test:imap-go"):
        time.sleep(0.005)
    print(poll_inbox(int(sys.argv[1]), batch_size=1000))
"""


def test_two_processes_polling_at_once_import_each_message_once(
    app, app_config, dovecot, imap_account
):
    inbox = imap_inbox(dovecot, imap_account)
    with dovecot.client(*imap_account) as imap:
        for n in range(120):
            imap.append("INBOX", email(n))
    env = dict(os.environ)
    for name in ("SECRET_KEY", "INBOUND_EMAIL_PASSWORD", "DATABASE_URL", "REDIS_URL"):
        env[name] = str(app_config[name])
    env.update(INSTANCE_PATH=str(app_config["INSTANCE_PATH"]), ENV_FILE=os.devnull)
    command = [sys.executable, "-c", POLLER, str(inbox.id)]
    pollers = [
        subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        # Both are started and waiting before either may begin: the polls truly overlap.
        # (Importing the app can take one process a second longer than the other, longer
        # than the whole poll, so "started" means each has said it is ready.)
        deadline = time.monotonic() + 60
        while int(get_redis().get("test:imap-ready") or 0) < 2:
            assert time.monotonic() < deadline, "the pollers never became ready"
            assert all(p.poll() is None for p in pollers), "a poller exited early"
            time.sleep(0.01)
        get_redis().set("test:imap-go", 1)
        outputs = [p.communicate(timeout=120)[0].strip() for p in pollers]
    finally:
        for p in pollers:
            p.kill()
    assert sorted(outputs) == ["busy", "imported 120 messages"]
    ids = list(db.session.scalars(select(InboundEmail.message_id)))
    assert len(ids) == 120 and len(set(ids)) == 120
    assert bodies_fetched(dovecot, imap_account[0]) == 120


def test_only_due_healthy_imap_inboxes_are_enqueued(app):
    now = utcnow()

    def make(name, mode="imap", **imap):
        inbox = Inbox(name=name, support_address=f"{name}@example.com", mode=mode)
        inbox.needs_attention = imap.pop("needs_attention", None)
        inbox.imap = ImapSettings(host="imap.example.com", username="u", password="p", **imap)
        db.session.add(inbox)
        db.session.commit()
        return inbox.id

    never_polled = make("never")
    due = make("due", next_poll_at=now - timedelta(seconds=1))
    make("later", next_poll_at=now + timedelta(minutes=2))
    make("forwarding", mode="forwarding")
    make("disabled", enabled=False)
    make("attention", needs_attention="IMAP sign-in failed: ...")

    assert enqueue_due_imap_polls() == 2
    queued = Queue("default", connection=get_redis()).get_job_ids()
    assert sorted(queued) == sorted([poll_job_id(never_polled), poll_job_id(due)])
    job = Queue("default", connection=get_redis()).fetch_job(poll_job_id(due))
    assert job.func_name == "jobs.imap_poll.poll_inbox" and job.args == (due,)
    assert enqueue_due_imap_polls() == 0  # already waiting: never queued twice


def test_the_scheduler_runs_the_enqueuer_every_30_seconds(redis_server):
    from redis import Redis
    from rq.cron import CronScheduler

    scheduler = CronScheduler(connection=Redis.from_url(redis_server))
    scheduler.load_config_from_file("jobs.schedule")
    jobs = {job.func_name: job for job in scheduler.get_jobs()}
    job = jobs["jobs.imap_poll.enqueue_due_imap_polls"]
    assert job.interval == 30 and job.queue_name == "default"
