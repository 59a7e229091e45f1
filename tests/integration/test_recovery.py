"""Recovery without a human (issue 13), through real processes: `python worker.py` workers
and the `python worker.py --cron` scheduler as the Procfile runs them, on PostgreSQL (what
production runs; tests/support/postgres.py), a Redis of this module's own and a real SMTP
server (aiosmtpd). Mail is posted to the real relay ingress of an app in this process.

A worker is killed the way the out-of-memory killer or systemd's stop of a hung service does
it (SIGKILL to the main process, its work horse and RQ's scheduler child; RQ puts the horse in
a process group of its own) at a moment the test chooses:

- in the middle of processing a message: the test holds PostgreSQL's lock on the contacts
  table, so the work horse has claimed the message (from a new customer) and waits to
  INSERT its contact (the periodic sweeps never touch contacts, so they run on);
- in the middle of sending a reply: the SMTP server holds its answer to RCPT, or to DATA
  (after recording the message: from then on the server has it).

Nothing is done by hand afterwards: the leases (services/leases.py) run out and the periodic
sweep hands the work to a live worker.
"""

from __future__ import annotations

import time
import uuid

import pytest
from rq import Worker
from rq.job import Job
from sqlalchemy import create_engine, func, select, text

from runtime.embedded_redis import EmbeddedRedis
from tests.conftest import base_config, global_smtp
from tests.integration.test_outbound_loop import customer_email
from tests.support.inbound import post_relay
from tests.support.postgres import fresh_database, postgres_server
from tests.support.waiting import wait_for
from tests.support.worker_processes import WorkerProcesses

# Always on PostgreSQL (tests/support/postgres.py), so not marked `db`: the PostgreSQL rerun
# of .ci/run would only run it twice.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

WITHIN = 60  # seconds: a dead worker's work is finished by another within a minute


@pytest.fixture(scope="module")
def world(tmp_path_factory, smtp):
    """PostgreSQL, Redis, SMTP, the migrated schema, an inbox with an agent, the scheduler."""
    from flask_migrate import upgrade

    from app import create_app
    from extensions import db
    from models import Inbox, InboxMember
    from services.users import create_user

    base = tmp_path_factory.mktemp("recovery")
    with (
        postgres_server() as server,
        fresh_database(server) as database_url,
        EmbeddedRedis(str(base / "redis.sock"), str(base / "redis")) as redis,
    ):
        config = {
            **base_config(database_url, redis.url, base / "instance"),
            **global_smtp(smtp),
        }
        app = create_app(config)
        processes = WorkerProcesses(config, base)
        with app.app_context():
            upgrade()
            inbox = Inbox(name="Support", support_address="support@example.com")
            db.session.add(inbox)
            db.session.commit()
            agent = create_user("ana@example.com", "Ana Agent", "correct horse battery")
            db.session.add(InboxMember(inbox_id=inbox.id, user_id=agent.id))
            db.session.commit()
            processes.start("scheduler", "--cron")
            try:
                yield World(app, processes, smtp, database_url, agent.id)
            finally:
                processes.stop_all()
                db.session.remove()
                db.engine.dispose()


class World:
    def __init__(self, app, processes: WorkerProcesses, smtp, database_url: str, agent_id: int):
        self.app, self.processes, self.smtp = app, processes, smtp
        self.database_url, self.agent_id = database_url, agent_id
        self.client = app.test_client()

    def post(self, count: int = 1, subject: str = "Printer on fire") -> list[str]:
        """Post `count` customer emails to the relay ingress; their Message-IDs."""
        ids = [f"{uuid.uuid4().hex}@customer.example" for _ in range(count)]
        for message_id in ids:  # each from a new customer: its contact is created
            raw = customer_email(
                From=f"Carla <{message_id}>", Message_ID=f"<{message_id}>", Subject=subject
            )
            post_relay(self.client, raw)
        return ids

    def rows(self, message_ids: list[str]):
        from extensions import db
        from models import InboundEmail

        db.session.expire_all()
        return db.session.scalars(
            select(InboundEmail).where(InboundEmail.message_id.in_(message_ids))
        ).all()

    def delivered_once(self, message_ids: list[str]) -> bool:
        """Every message delivered, and exactly one conversation message for each."""
        from extensions import db
        from models import Message

        rows = self.rows(message_ids)
        if len(rows) != len(message_ids) or any(r.status != "delivered" for r in rows):
            return False
        counts = db.session.execute(
            select(Message.message_id, func.count())
            .where(Message.message_id.in_(message_ids))
            .group_by(Message.message_id)
        ).all()
        assert all(n == 1 for _, n in counts), f"delivered twice: {counts}"
        return len(counts) == len(message_ids)

    def workers(self) -> list[Worker]:
        from extensions import get_redis

        ours = {p.pid: name for name, p in self.processes.procs.items()}
        return [w for w in Worker.all(connection=get_redis()) if w.pid in ours]

    def start_workers(self, *names: str) -> None:
        for name in names:
            self.processes.start(name)
        ready = wait_for(lambda: len(self.workers()) >= len(names), 30)
        assert ready, f"the workers did not start:\n{self.processes.logs()}"

    def name_of_worker_running(self, job_id: str) -> str | None:
        ours = {p.pid: name for name, p in self.processes.procs.items()}
        for worker in self.workers():
            if worker.get_current_job_id() == job_id:
                return ours[worker.pid]
        return None


class contacts_locked:
    """Hold PostgreSQL's EXCLUSIVE lock on `contacts`: reads go on, every INSERT waits. A work
    horse that claimed a message from a new customer waits there, in the middle of its job."""

    def __init__(self, database_url: str):
        self.engine = create_engine(database_url)
        self.connection = None

    def __enter__(self):
        self.connection = self.engine.connect()
        self.connection.execute(text("LOCK TABLE contacts IN EXCLUSIVE MODE"))
        return self

    def release(self) -> None:
        if self.connection is not None:
            self.connection.rollback()
            self.connection.close()
            self.connection = None

    def __exit__(self, *exc):
        self.release()
        self.engine.dispose()


def claimed(world: World, message_ids: list[str], count: int) -> list:
    """Wait until `count` of the messages are `processing`; those rows (empty on timeout)."""

    def processing():
        rows = [r for r in world.rows(message_ids) if r.status == "processing"]
        return rows if len(rows) >= count else []

    return wait_for(processing, 30)


def test_a_worker_killed_mid_job_has_its_message_delivered_once_by_another_within_a_minute(
    world,
):
    from extensions import get_redis
    from models import utcnow
    from services.background import job_is_waiting, processing_job_id
    from services.leases import LEASE

    world.start_workers("worker-a", "worker-b")
    ours = {p.pid: name for name, p in world.processes.procs.items()}
    rq_names = {ours[w.pid]: w.name for w in world.workers()}
    with contacts_locked(world.database_url) as lock:
        [message_id] = world.post()
        rows = claimed(world, [message_id], 1)
        assert rows, f"no worker claimed the message:\n{world.processes.logs()}"
        job_id = processing_job_id(rows[0].id)
        victim = wait_for(lambda: world.name_of_worker_running(job_id), 10)
        assert victim, f"no worker runs {job_id}:\n{world.processes.logs()}"
        # A live job longer than its lease keeps it: renewed, and nobody takes it over.
        time.sleep(LEASE.total_seconds() + 5)
        [row] = world.rows([message_id])
        assert row.status == "processing" and row.attempts == 1
        assert row.lease_expires_at > utcnow(), "the work horse did not renew its lease"
        assert job_is_waiting(job_id), "RQ's heartbeat of the running job is stale"
        world.processes.kill(victim)
        killed_at = time.monotonic()
        lock.release()
        done = wait_for(lambda: world.delivered_once([message_id]), WITHIN + 5)
    took = time.monotonic() - killed_at
    survivor = "worker-b" if victim == "worker-a" else "worker-a"
    assert done and took <= WITHIN, (
        f"not delivered {took:.0f} s after its worker died:\n{world.processes.logs()}"
    )
    [row] = world.rows([message_id])
    assert row.attempts == 2  # the dead worker's claim, then the survivor's
    assert Job.fetch(job_id, connection=get_redis()).worker_name == rq_names[survivor]
    print(f"delivered {took:.1f} s after {victim} was killed mid-job")
    world.processes.kill(survivor)


def test_all_workers_killed_then_one_started_delivers_every_message_once(world):
    world.start_workers("worker-c", "worker-d")
    with contacts_locked(world.database_url) as lock:
        message_ids = world.post(12)
        # Each worker holds one message in the middle of its job; ten wait in the queue.
        assert claimed(world, message_ids, 2), f"not claimed:\n{world.processes.logs()}"
        world.processes.kill("worker-c")
        world.processes.kill("worker-d")
        lock.release()
        killed_at = time.monotonic()
        waiting = [r for r in world.rows(message_ids) if r.status != "delivered"]
        assert len(waiting) == 12  # nothing was delivered before the kill
        world.start_workers("worker-e")
        done = wait_for(lambda: world.delivered_once(message_ids), WITHIN + 5)
    took = time.monotonic() - killed_at
    assert done and took <= WITHIN, (
        f"{[r.status for r in world.rows(message_ids)]} {took:.0f} s after every worker "
        f"died:\n{world.processes.logs()}"
    )
    print(f"12 messages delivered {took:.1f} s after every worker was killed")
    world.processes.kill("worker-e")


def start_reply(world: World, text_body: str):
    """A conversation, delivered by the workers, and an agent's reply to it (queued)."""
    from extensions import db
    from models import Conversation, Message, User
    from services.replies import create_reply

    [message_id] = world.post(subject=text_body)
    assert wait_for(lambda: world.delivered_once([message_id]), 30), world.processes.logs()
    conversation = db.session.scalar(
        select(Conversation).join(Message).where(Message.message_id == message_id)
    )
    return create_reply(conversation, db.session.get(User, world.agent_id), text_body)


@pytest.mark.parametrize(
    ("stage", "outcome"),
    [
        # Killed before DATA: the server cannot have it, so it is sent again, once.
        ("RCPT", "sent"),
        # Killed after the message reached the server, before its answer was recorded:
        # never sent again blindly; an agent decides (send again, or mark as sent).
        ("DATA", "unknown"),
    ],
)
def test_a_reply_whose_worker_is_killed_mid_send_is_neither_lost_nor_sent_twice(
    world, stage, outcome
):
    from extensions import db
    from models import Message
    from services.background import send_job_id

    smtp = world.smtp
    world.start_workers("sender-a", "sender-b")
    text_body = f"Killed at {stage}: {uuid.uuid4().hex}"

    def copies() -> int:
        return sum(text_body in e.content.decode(errors="replace") for e in smtp.envelopes)

    smtp.held.clear()
    smtp.release.clear()
    smtp.hold_at = stage
    try:
        reply = start_reply(world, text_body)
        assert smtp.held.wait(30), f"the reply never reached {stage}:\n{world.processes.logs()}"
        victim = wait_for(lambda: world.name_of_worker_running(send_job_id(reply.id)), 10)
        assert victim, world.processes.logs()
        world.processes.kill(victim)
        killed_at = time.monotonic()
    finally:
        smtp.hold_at = None
        smtp.release.set()

    def settled() -> bool:
        db.session.expire_all()
        return db.session.get(Message, reply.id).delivery_status == outcome

    assert wait_for(settled, WITHIN + 5), (
        f"{db.session.get(Message, reply.id).delivery_status} instead of {outcome}:\n"
        f"{world.processes.logs()}"
    )
    took = time.monotonic() - killed_at
    assert took <= WITHIN
    time.sleep(20)  # another sweep or more: nothing changes any more
    db.session.expire_all()
    message = db.session.get(Message, reply.id)
    assert message.delivery_status == outcome
    assert copies() == 1, f"the SMTP server has {copies()} copies"
    if outcome == "unknown":
        assert "may have been sent" in message.delivery_error
        assert message.handed_over_at is not None
    else:
        assert message.smtp_response.startswith("250")
    print(f"killed at {stage}: {outcome} {took:.1f} s later, {copies()} copy on the server")
    for name in [n for n in world.processes.procs if n.startswith("sender-")]:
        world.processes.kill(name)
