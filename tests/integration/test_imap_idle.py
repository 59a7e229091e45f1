"""IMAP IDLE against a real Dovecot, with a real `python worker.py` doing the imports: a
message APPENDed to the watched mailbox is a conversation within seconds, with no poll due; a
connection the server drops is reconnected, and mail that arrived meanwhile is imported."""

import secrets
import subprocess
import threading
import time
import uuid

import pytest
from rq import Worker
from sqlalchemy import func, select

from extensions import db, get_redis
from jobs.imap_idle import IdleSupervisor
from models import Conversation, ImapSettings, Inbox, utcnow
from tests.support.dovecot import DOVEADM, DovecotServer, private_base
from tests.support.waiting import wait_for
from tests.support.worker_processes import WorkerProcesses

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

LATENCY_LIMIT = 5.0  # seconds, issue 17: APPEND -> conversation


@pytest.fixture(scope="module")
def dovecot():
    server = DovecotServer(private_base("threadline-imap-idle-"))
    server.start()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def account(dovecot):
    username, password = f"idle-{uuid.uuid4().hex[:10]}@example.com", secrets.token_hex(8)
    dovecot.add_user(username, password)
    return username, password


@pytest.fixture
def worker(app, app_config, tmp_path):
    """A real `python worker.py` on every queue, ready to take jobs."""
    processes = WorkerProcesses(app_config, tmp_path)
    processes.start("worker")
    try:
        started = wait_for(lambda: Worker.all(connection=get_redis()), timeout=30)
        assert started, processes.logs()
        yield processes
    finally:
        processes.stop_all()


@pytest.fixture
def supervisor(app):
    """The IDLE supervisor in a thread of this process (as `worker.py --idle` runs it)."""
    supervisor = IdleSupervisor(app, rescan_seconds=1)
    thread = threading.Thread(target=supervisor.run, daemon=True)
    thread.start()
    yield supervisor
    supervisor.stop()
    thread.join(15)
    assert not thread.is_alive()


def idle_inbox(server, account) -> Inbox:
    """An IMAP inbox whose next poll is an hour away: only IDLE can bring mail in sooner."""
    username, password = account
    inbox = Inbox(name="Support", support_address="support@example.com", mode="imap")
    inbox.imap = ImapSettings(
        host=server.host,
        port=server.port,
        security="none",
        username=username,
        password=password,
        poll_interval_seconds=3600,
        next_poll_at=utcnow().replace(year=utcnow().year + 1),
    )
    db.session.add(inbox)
    db.session.commit()
    return inbox


def email(subject: str) -> bytes:
    return (
        f"From: Carla <carla@customer.example>\r\nTo: support@example.com\r\n"
        f"Subject: {subject}\r\nMessage-ID: <{uuid.uuid4().hex}@customer.example>\r\n"
        f"\r\nHello\r\n"
    ).encode()


def conversations(inbox: Inbox) -> int:
    db.session.rollback()  # a fresh look at what the worker process committed
    return db.session.scalar(
        select(func.count()).select_from(Conversation).where(Conversation.inbox_id == inbox.id)
    )


def watcher_connected(supervisor, inbox: Inbox, connections: int = 1):
    def connected():
        watcher = supervisor.watchers.get(inbox.id)
        return watcher if watcher and watcher.connections >= connections else None

    return connected


def wait_until_idle(supervisor, inbox, connections: int = 1):
    """Connected, in IDLE, and the poll every connection queues has run."""
    watcher = wait_for(watcher_connected(supervisor, inbox, connections), timeout=30)
    assert watcher, "the IDLE watcher never connected"
    assert wait_for(lambda: watcher._poll_pending is False, timeout=10)
    time.sleep(1.0)  # the catch-up poll's job finishes; IDLE was issued before it
    return watcher


def test_an_appended_message_is_a_conversation_within_five_seconds(
    app, dovecot, account, worker, supervisor
):
    inbox = idle_inbox(dovecot, account)
    wait_until_idle(supervisor, inbox)
    latencies = []
    for n in range(3):
        before = conversations(inbox)
        appended = time.monotonic()
        dovecot.append(*account, email(f"Printer on fire {n}"))
        arrived = wait_for(lambda b=before: conversations(inbox) > b, timeout=30, interval=0.05)
        latencies.append(time.monotonic() - appended)
        assert arrived, worker.logs()
    print(f"IDLE APPEND -> conversation: {', '.join(f'{s:.2f} s' for s in latencies)}")
    assert max(latencies) <= LATENCY_LIMIT, latencies


def test_a_connection_the_server_drops_is_reconnected_and_nothing_is_missed(
    app, dovecot, account, worker, supervisor
):
    inbox = idle_inbox(dovecot, account)
    wait_until_idle(supervisor, inbox)

    # Kicked by the server: the watcher reconnects (1 s backoff) and IDLE works again.
    subprocess.run(
        [DOVEADM, "-c", str(dovecot.config_path), "kick", account[0]],
        check=True,
        capture_output=True,
    )
    wait_until_idle(supervisor, inbox, connections=2)
    dovecot.append(*account, email("After the kick"))
    assert wait_for(lambda: conversations(inbox) == 1, timeout=LATENCY_LIMIT, interval=0.05)

    # The whole server down: mail delivered meanwhile is imported by the poll queued on
    # reconnecting, with no IDLE notification for it.
    dovecot.stop()
    dovecot.deliver(account[0], email("During the outage"))
    time.sleep(2)  # at least one reconnect attempt fails
    dovecot.start()
    assert wait_for(watcher_connected(supervisor, inbox, 3), timeout=60)
    assert wait_for(lambda: conversations(inbox) == 2, timeout=30), worker.logs()


def test_only_inboxes_polling_would_poll_are_watched(app, dovecot, account, supervisor):
    inbox = idle_inbox(dovecot, account)
    assert wait_for(watcher_connected(supervisor, inbox), timeout=30)

    inbox.imap.enabled = False
    db.session.commit()
    assert wait_for(lambda: inbox.id not in supervisor.watchers, timeout=10)

    # IDLE turned off (the settings' check box): polling alone, no watcher.
    inbox.imap.enabled = True
    db.session.commit()
    assert wait_for(watcher_connected(supervisor, inbox), timeout=30)
    inbox.imap.use_idle = False
    db.session.commit()
    assert wait_for(lambda: inbox.id not in supervisor.watchers, timeout=10)
