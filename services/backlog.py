"""What is waiting and who would do it: live workers, queue depths, pending inbound mail and
replies stuck in `sending`. Gathered once, shown by `flask doctor` and the admin System page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Worker
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from extensions import QUEUE_NAMES, db
from jobs.sweeps import STALE_PENDING_AFTER, STALE_SENDING_AFTER
from models import InboundEmail, Message, utcnow

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
    stale_pending_inbound: int = 0  # pending for longer than the sweep's STALE_PENDING_AFTER
    queued_replies: int = 0
    stale_queued_replies: int = 0
    stuck_sending: int = 0  # `sending` for longer than the sweep's STALE_SENDING_AFTER
    oldest_stuck_age: timedelta | None = None

    @property
    def mail_waiting(self) -> bool:
        """Mail a worker should have picked up by now (the sweep's own notion of stale)."""
        return bool(self.stale_pending_inbound or self.stale_queued_replies)


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


def _gather_from_database(now: datetime, workers, queues) -> Backlog:
    pending, oldest_pending = db.session.execute(
        select(func.count(), func.min(InboundEmail.created_at)).where(
            InboundEmail.status == "pending"
        )
    ).one()
    stale_pending = db.session.scalar(
        select(func.count()).where(
            InboundEmail.status == "pending", InboundEmail.created_at < now - STALE_PENDING_AFTER
        )
    )
    outgoing = Message.direction == "outgoing"
    queued = db.session.scalar(
        select(func.count()).where(outgoing, Message.delivery_status == "queued")
    )
    stale_queued = db.session.scalar(
        select(func.count()).where(
            outgoing,
            Message.delivery_status == "queued",
            Message.updated_at < now - STALE_PENDING_AFTER,
        )
    )
    stuck, oldest_stuck = db.session.execute(
        select(func.count(), func.min(Message.updated_at)).where(
            outgoing,
            Message.delivery_status == "sending",
            Message.updated_at < now - STALE_SENDING_AFTER,
        )
    ).one()
    return Backlog(
        workers=workers,
        queues=queues,
        pending_inbound=pending,
        oldest_pending_age=_age(now, oldest_pending),
        stale_pending_inbound=stale_pending,
        queued_replies=queued,
        stale_queued_replies=stale_queued,
        stuck_sending=stuck,
        oldest_stuck_age=_age(now, oldest_stuck),
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
