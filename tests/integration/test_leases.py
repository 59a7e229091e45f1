"""Claim leases (services/leases.py) and the sweeps that act on them, in one process with real
Redis, a real RQ worker (SimpleWorker) and the real SMTP server: a row is held only while its
holder renews the lease, a second job never reports success for work it did not do, and the
sweep finds every row a dead worker or a lost job left behind, whatever RQ's registries say."""

from __future__ import annotations

import socket
import threading
import time
from datetime import timedelta

import pytest
from rq.job import Job, JobStatus
from sqlalchemy import select

import jobs.process_inbound
import services.leases
from extensions import db, get_queue, get_redis
from jobs.sweeps import recover_inbound, recover_outgoing
from models import Conversation, InboundEmail, Message, utcnow
from services.background import job_is_waiting, processing_job_id, send_job_id
from services.leases import INBOUND, OUTGOING, LeaseKeeper, claim
from services.replies import create_reply
from tests.conftest import global_smtp
from tests.integration.test_outbound_loop import customer_email, send_queued
from tests.support.inbound import post_relay, work_inbound


@pytest.fixture
def app_config(app_config, smtp):
    return {**app_config, **global_smtp(smtp)}


def received(client, message_id="lease@customer.example") -> InboundEmail:
    post_relay(client, customer_email(**{"Message-ID": f"<{message_id}>"}))
    return db.session.scalars(select(InboundEmail).order_by(InboundEmail.id.desc())).first()


def age(row: InboundEmail, seconds: float) -> None:
    """Make the row as old as a row the sweep looks at (past the enqueue grace)."""
    row.created_at = utcnow() - timedelta(seconds=seconds)
    db.session.commit()


def held_by_a_worker(row, lease_seconds: float) -> int:
    """What a worker's claim leaves: `processing`, a claim number, a lease of this length."""
    number = claim(INBOUND, row.id, InboundEmail.status == "pending")
    db.session.refresh(row)
    row.lease_expires_at = utcnow() + timedelta(seconds=lease_seconds)
    db.session.commit()
    return number


def conversations() -> int:
    return db.session.query(Conversation).count()


def test_the_keeper_renews_the_lease_and_stops_when_the_claim_is_lost(
    app, client, inbox, monkeypatch
):
    row = received(client)
    number = held_by_a_worker(row, lease_seconds=1)
    first = row.lease_expires_at
    monkeypatch.setattr(services.leases, "RENEW_EVERY", 0.05)
    with LeaseKeeper(INBOUND, row.id, number) as keeper:
        time.sleep(0.3)
        db.session.refresh(row)
        assert row.lease_expires_at > first + timedelta(seconds=15)  # renewed to a full LEASE
        # The sweep (or an admin) took the row over: the next renewal finds it gone.
        row.status = "pending"
        db.session.commit()
        time.sleep(0.3)
        assert not keeper.keeping
    assert keeper.renew() is False


def test_a_second_job_waits_for_the_holder_then_takes_over_when_its_lease_runs_out(
    app, client, inbox
):
    row = received(client)
    held_by_a_worker(row, lease_seconds=2)  # its worker died just now
    started = time.monotonic()
    work_inbound(app)  # the RQ job enqueued at receive time: it waits, then claims
    waited = time.monotonic() - started
    db.session.refresh(row)
    assert row.status == "delivered" and row.attempts == 2 and row.lease_expires_at is None
    assert 1 < waited < 15, waited
    assert conversations() == 1


def test_a_job_whose_message_is_held_by_a_live_worker_fails_instead_of_reporting_success(
    app, client, inbox, monkeypatch, caplog
):
    row = received(client)
    number = held_by_a_worker(row, lease_seconds=20)
    monkeypatch.setattr(jobs.process_inbound, "WAIT_FOR_HOLDER", timedelta(seconds=1))
    with LeaseKeeper(INBOUND, row.id, number):  # the holder is alive and renews
        work_inbound(app)
    job = Job.fetch(processing_job_id(row.id), connection=get_redis())
    # Not "finished": RQ keeps it for a retry, by when the holder is done or dead.
    assert job.get_status() == JobStatus.SCHEDULED
    assert f"HeldElsewhere: inbound #{row.id} is being processed by another worker" in caplog.text
    db.session.refresh(row)
    assert row.status == "processing" and row.attempts == number
    assert conversations() == 0


def test_the_sweep_takes_over_a_row_whose_lease_ran_out_and_leaves_a_live_one(app, client, inbox):
    dead = received(client, "dead@customer.example")
    alive = received(client, "alive@customer.example")
    get_queue("inbound").empty()  # both jobs were taken by the workers that hold the rows
    held_by_a_worker(dead, lease_seconds=-1)
    held_by_a_worker(alive, lease_seconds=15)
    for row in (dead, alive):
        age(row, 120)

    assert recover_inbound() == 1
    db.session.refresh(dead)
    db.session.refresh(alive)
    assert dead.status == "pending" and alive.status == "processing"
    assert get_queue("inbound").job_ids == [processing_job_id(dead.id)]
    assert recover_inbound() == 0  # its job waits now: never enqueued twice
    work_inbound(app)
    db.session.refresh(dead)
    assert dead.status == "delivered" and conversations() == 1


def test_the_sweep_runs_a_pending_row_whose_job_says_queued_but_is_in_no_queue(app, client, inbox):
    """A worker killed while its BLPOP was pending swallows the next job: RQ still says
    `queued`, the row says `pending`, and no queue holds it (issue 13)."""
    row = received(client)
    job_id = processing_job_id(row.id)
    queue = get_queue("inbound")
    queue.connection.lrem(queue.key, 0, job_id)  # popped by a dead socket
    assert Job.fetch(job_id, connection=get_redis()).get_status() == JobStatus.QUEUED
    assert not job_is_waiting(job_id)

    assert recover_inbound() == 0  # younger than the grace: its enqueue may be in flight
    age(row, 60)
    assert recover_inbound() == 1
    assert queue.job_ids == [job_id]
    work_inbound(app)
    db.session.refresh(row)
    assert row.status == "delivered" and conversations() == 1


def test_reprocess_queues_a_swallowed_job_again_instead_of_trusting_rqs_status(
    app, client, inbox, runner
):
    row = received(client)
    job_id = processing_job_id(row.id)
    queue = get_queue("inbound")
    queue.connection.lrem(queue.key, 0, job_id)  # popped by a dead socket: RQ says `queued`

    result = runner.invoke(args=["inbound", "reprocess", str(row.id)])

    assert result.exit_code == 0, result.output
    assert f"Inbound email #{row.id} queued for processing." in result.output
    assert queue.job_ids == [job_id]  # really in the queue this time
    work_inbound(app)
    db.session.refresh(row)
    assert row.status == "delivered" and conversations() == 1


def test_a_started_job_counts_as_waiting_only_while_its_heartbeat_is_fresh(app, client, inbox):
    row = received(client)
    job = Job.fetch(processing_job_id(row.id), connection=get_redis())
    job.set_status(JobStatus.STARTED)
    job.heartbeat(utcnow(), ttl=60)
    assert job_is_waiting(job.id)
    job.heartbeat(utcnow() - timedelta(minutes=1), ttl=60)  # its worker died a minute ago
    assert not job_is_waiting(job.id)


def sending(reply: Message, handed_over: bool) -> None:
    """What a worker killed mid-send leaves: `sending`, a lease that ran out."""
    number = claim(OUTGOING, reply.id, Message.delivery_status == "queued")
    assert number == 1
    db.session.refresh(reply)
    reply.lease_expires_at = utcnow() - timedelta(seconds=1)
    reply.handed_over_at = utcnow() if handed_over else None
    db.session.commit()


def test_a_reply_whose_worker_died_before_data_is_sent_once_and_one_after_waits(
    app, client, inbox, agent, smtp
):
    post_relay(client, customer_email())
    work_inbound(app)
    conversation = db.session.scalars(select(Conversation)).one()
    before_data = create_reply(conversation, agent, "Died before DATA")
    after_data = create_reply(conversation, agent, "Died during DATA")
    live = create_reply(conversation, agent, "Being sent right now")
    get_queue("outbound").empty()  # the dead workers had taken the jobs
    sending(before_data, handed_over=False)
    sending(after_data, handed_over=True)
    claim(OUTGOING, live.id, Message.delivery_status == "queued")  # a fresh lease

    assert recover_outgoing() == 1
    assert get_queue("outbound").job_ids == [send_job_id(before_data.id)]
    db.session.expire_all()
    assert db.session.get(Message, after_data.id).delivery_status == "unknown"
    assert "may have been sent" in db.session.get(Message, after_data.id).delivery_error
    assert db.session.get(Message, live.id).delivery_status == "sending"

    sent_before = len(smtp.envelopes)
    send_queued(app)
    assert recover_outgoing() == 0
    db.session.expire_all()
    assert db.session.get(Message, before_data.id).delivery_status == "sent"
    assert db.session.get(Message, after_data.id).delivery_status == "unknown"
    texts = [e.content.decode() for e in smtp.envelopes[sent_before:]]
    assert len(texts) == 1 and "Died before DATA" in texts[0]


class DroppingSmtpServer:
    """An SMTP server that drops the connection at one stage (a crash, a cut network): when
    RCPT arrives ("RCPT"), or once the whole message arrived, before its answer ("DATA"). Real
    SMTP up to that point, over a real socket; it counts the messages it received whole."""

    def __init__(self, drop_at: str):
        self.drop_at = drop_at
        self.received = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn, conn.makefile("rb") as lines:
                self._session(conn, lines)

    def _session(self, conn, lines) -> None:
        conn.sendall(b"220 dropping.example ESMTP\r\n")
        for line in lines:
            verb = line[:4].upper()
            if verb == b"EHLO":
                conn.sendall(b"250 dropping.example\r\n")
            elif verb == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                return
            elif verb == b"RCPT" and self.drop_at == "RCPT":
                return
            elif verb == b"DATA":
                conn.sendall(b"354 go ahead\r\n")
                for body_line in lines:
                    if body_line == b".\r\n":
                        break
                self.received += 1
                return  # the message is here; the answer never leaves
            else:
                conn.sendall(b"250 OK\r\n")

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize(
    ("drop_at", "status", "handed_over"),
    [("RCPT", "queued", False), ("DATA", "unknown", True)],
)
def test_a_connection_lost_during_data_makes_the_reply_unknown_and_before_it_a_retry(
    app_config, inbox, make_user, drop_at, status, handed_over
):
    from app import create_app

    server = DroppingSmtpServer(drop_at)
    app = create_app({**app_config, "SMTP_ADDRESS": "127.0.0.1", "SMTP_PORT": str(server.port)})
    try:
        with app.app_context():
            post_relay(app.test_client(), customer_email())
            work_inbound(app)
            conversation = db.session.scalars(select(Conversation)).one()
            author = make_user()
            reply = create_reply(conversation, author, f"Dropped at {drop_at}")
            send_queued(app)
            db.session.expire_all()
            message = db.session.get(Message, reply.id)
            assert message.delivery_status == status, message.delivery_error
            assert (message.handed_over_at is not None) is handed_over
            assert server.received == (1 if drop_at == "DATA" else 0)
            if status == "unknown":
                assert "may have been sent" in message.delivery_error
                job = Job.fetch(send_job_id(reply.id), connection=get_redis())
                assert job.get_status() == JobStatus.FINISHED  # decided: no retry is coming
            else:
                assert message.delivery_error.startswith("will retry: ")
    finally:
        server.close()


def test_one_thread_renews_every_lease_of_a_process(app, client, inbox, monkeypatch):
    """Two jobs at once (here the test and its keeper's twin) and one after the other: the
    same renewal thread renews them all; a thread per job cost a short job ~5 % of its time."""
    first, second = (
        received(client, "one@customer.example"),
        received(client, "two@customer.example"),
    )
    monkeypatch.setattr(services.leases, "RENEW_EVERY", 0.05)
    numbers = [held_by_a_worker(row, lease_seconds=1) for row in (first, second)]
    before = [row.lease_expires_at for row in (first, second)]
    with LeaseKeeper(INBOUND, first.id, numbers[0]), LeaseKeeper(INBOUND, second.id, numbers[1]):
        time.sleep(0.3)
    for row, was in zip((first, second), before, strict=True):
        db.session.refresh(row)
        assert row.lease_expires_at > was + timedelta(seconds=15)
    with LeaseKeeper(INBOUND, first.id, numbers[0]) as again:
        assert again.keeping
    assert not again.keeping
    assert [t.name for t in threading.enumerate()].count("lease-renewals") == 1
