"""What is waiting and who would do it: live workers, queue depths, pending inbound mail, rows
whose worker died (past their lease, services/leases.py) and replies of unknown fate. Gathered
once, shown by `flask doctor` and the admin System page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Worker
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from extensions import QUEUE_NAMES, db
from models import InboundEmail, Message, utcnow
from services import ingress_refusals
from services.ingress_refusals import RecentRefusals
from services.leases import INBOUND, OUTGOING, lease_expired
from services.send_later import due

# Mail older than this should have been picked up: with no live worker, doctor fails.
WAITING_AFTER = timedelta(minutes=1)
START_WORKERS = (
    "start the workers: make run (it starts everything), or python worker.py "
    "(in production: systemctl start threadline-worker@1 threadline-scheduler)"
)


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    hostname: str
    pid: int | None
    state: str
    heartbeat_age: timedelta | None


@dataclass(frozen=True)
class QueueDepth:
    name: str
    waiting: int
    failed: int


@dataclass(frozen=True)
class Backlog:
    workers: list[WorkerInfo] | None  # None: Redis could not be asked
    queues: list[QueueDepth] | None
    database_error: str | None = None  # the counts below are 0 when the database was not read
    pending_inbound: int = 0
    oldest_pending_age: timedelta | None = None
    stale_pending_inbound: int = 0  # pending for longer than WAITING_AFTER
    past_lease_inbound: int = 0  # `processing`, but the worker stopped renewing its lease
    queued_replies: int = 0
    stale_queued_replies: int = 0
    past_lease_sending: int = 0  # `sending`, but the worker stopped renewing its lease
    unknown_replies: int = 0  # handed to SMTP by a worker that died: an agent decides
    oldest_stuck_age: timedelta | None = None  # since the first of those leases ran out
    refusals: RecentRefusals | None = None  # posts the ingresses refused lately

    @property
    def mail_waiting(self) -> bool:
        """Mail a worker should have picked up, or taken over from a dead one, by now."""
        return bool(
            self.stale_pending_inbound
            or self.stale_queued_replies
            or self.past_lease_inbound
            or self.past_lease_sending
        )


def _age(now: datetime, then: datetime | None) -> timedelta | None:
    return max(now - then, timedelta(0)) if then else None


def gather_backlog(connection: Redis | None) -> Backlog:
    """Workers and queues from Redis (skipped when `connection` is None), the rest from the
    database. Reads only."""
    now = utcnow()
    workers = queues = None
    if connection is not None:
        try:
            workers = [
                WorkerInfo(
                    w.name,
                    w.hostname or "?",
                    w.pid,
                    w.get_state(),
                    _age(now, w.last_heartbeat),
                )
                for w in Worker.all(connection=connection)
            ]
            queues = []
            for name in QUEUE_NAMES:
                queue = Queue(name, connection=connection)
                queues.append(QueueDepth(name, queue.count, queue.failed_job_registry.count))
        except (RedisError, OSError):
            workers = queues = None
    try:
        return _gather_from_database(now, workers, queues)
    except SQLAlchemyError as exc:
        db.session.rollback()
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return Backlog(workers, queues, database_error=reason)


def ran_out(model):
    """SQL: when a row's lease ran out (a row claimed before leases existed: its last write)."""
    return func.coalesce(model.lease_expires_at, model.updated_at)


def _gather_from_database(now: datetime, workers, queues) -> Backlog:
    def count(*where):
        return db.session.scalar(select(func.count()).where(*where))

    pending, oldest_pending = db.session.execute(
        select(func.count(), func.min(InboundEmail.created_at)).where(
            InboundEmail.status == "pending"
        )
    ).one()
    past_inbound, oldest_inbound = db.session.execute(
        select(func.count(), func.min(ran_out(InboundEmail))).where(
            InboundEmail.status == "processing", lease_expired(INBOUND, now)
        )
    ).one()
    outgoing = Message.direction == "outgoing"
    # A reply in its undo window or scheduled for later waits on purpose (services/send_later).
    queued = (Message.delivery_status == "queued") & due(now)
    past_sending, oldest_sending = db.session.execute(
        select(func.count(), func.min(ran_out(Message))).where(
            outgoing, Message.delivery_status == "sending", lease_expired(OUTGOING, now)
        )
    ).one()
    oldest_stuck = min((t for t in (oldest_inbound, oldest_sending) if t), default=None)
    return Backlog(
        workers=workers,
        queues=queues,
        pending_inbound=pending,
        oldest_pending_age=_age(now, oldest_pending),
        stale_pending_inbound=count(
            InboundEmail.status == "pending", InboundEmail.created_at < now - WAITING_AFTER
        ),
        past_lease_inbound=past_inbound,
        queued_replies=count(outgoing, queued),
        stale_queued_replies=count(
            outgoing, queued, due(now - WAITING_AFTER), Message.updated_at < now - WAITING_AFTER
        ),
        past_lease_sending=past_sending,
        unknown_replies=count(outgoing, Message.delivery_status == "unknown"),
        oldest_stuck_age=_age(now, oldest_stuck),
        refusals=ingress_refusals.since(now=now),
    )


def describe_age(age: timedelta | None) -> str:
    """'12 s', '5 min', '3 h', '2 d': enough to tell a hiccup from an outage."""
    if age is None:
        return "never"
    seconds = int(age.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def describe_worker(worker: WorkerInfo) -> str:
    return (
        f"{worker.name} on {worker.hostname} pid {worker.pid}: {worker.state}, "
        f"heartbeat {describe_age(worker.heartbeat_age)} ago"
    )
