"""Claim leases: a job holds its row while it runs, and only while it runs.

A job claims a row by moving it to its working status (`processing`, `sending`) and bumping
the row's attempt counter; the new count names this claim. While the job runs, a heartbeat
thread renews the row's `lease_expires_at` every RENEW_EVERY seconds, and the job records its
outcome only if the claim is still its own. When a worker dies (SIGKILL, out of memory, a
lost machine) the renewals stop, the lease runs out within LEASE and the sweep
(jobs/sweeps.py) hands the row to another worker: liveness comes from the work itself, not
from a fixed staleness window nor from what RQ's registries say.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, or_, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import InstrumentedAttribute

from extensions import db
from models import InboundEmail, Message, utcnow
from runtime.beats import Beats

LEASE = timedelta(seconds=20)
RENEW_EVERY = 5.0  # seconds: three renewals may fail (a busy database) before the lease ends

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claimable:
    """A kind of row a job claims: its status column, working status and attempt counter."""

    model: type
    status: InstrumentedAttribute
    working: str
    attempts: InstrumentedAttribute

    @property
    def label(self) -> str:
        return self.model.__tablename__


INBOUND = Claimable(InboundEmail, InboundEmail.status, "processing", InboundEmail.attempts)
OUTGOING = Claimable(Message, Message.delivery_status, "sending", Message.delivery_attempts)


def lease_expired(kind: Claimable, now: datetime):
    """SQL: the row's lease has run out (a row claimed before leases existed has none)."""
    column = kind.model.lease_expires_at
    return or_(column.is_(None), column < now)


def lease_runs(expires_at: datetime | None) -> bool:
    """The holder of a row with this lease is alive (Python's twin of lease_expired)."""
    return expires_at is not None and expires_at > utcnow()


def lease_text(expires_at: datetime | None) -> str:
    """How an admin reads a lease: "runs until 10:04:31 UTC (in 12 s)" or "has run out"."""
    if not lease_runs(expires_at):
        return "has run out"
    seconds = max(1, round((expires_at - utcnow()).total_seconds()))
    return f"runs until {expires_at:%H:%M:%S} UTC (in {seconds} s)"


def held(kind: Claimable, row_id: int, claim: int):
    """SQL: the row is still in this claim's hands."""
    return (kind.model.id == row_id) & (kind.status == kind.working) & (kind.attempts == claim)


def claim(kind: Claimable, row_id: int, claimable, **values) -> int | None:
    """Move the row to its working status (setting `values` too) when `claimable` (SQL)
    holds; the claim's number, or None when another job holds it or it is done. Atomic: one
    UPDATE … RETURNING."""
    now = utcnow()
    claimed = db.session.execute(
        update(kind.model)
        .where(kind.model.id == row_id, claimable)
        .values(
            {
                kind.status: kind.working,
                kind.attempts: kind.attempts + 1,
                kind.model.lease_expires_at: now + LEASE,
                kind.model.updated_at: now,
                **{getattr(kind.model, name): value for name, value in values.items()},
            }
        )
        .returning(kind.attempts)
        .execution_options(synchronize_session=False)
    ).scalar()
    db.session.commit()
    return claimed


def finish(kind: Claimable, row_id: int, claim: int, **values) -> bool:
    """Record the outcome and end the lease, only if the claim is still ours; False (and a
    warning) when another worker took the row over after this one stalled past its lease."""
    changed = db.session.execute(
        update(kind.model)
        .where(held(kind, row_id, claim))
        .values(lease_expires_at=None, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if not changed:
        log.warning(
            "%s #%d: another worker took over after this one stalled past its lease; "
            "this outcome (%s) is not recorded",
            kind.label,
            row_id,
            values.get(kind.status.key, "?"),
        )
    return bool(changed)


class LeaseKeeper:
    """Renews one claimed row's lease for as long as the job runs.

    The renewals are made by the process's one renewal thread (runtime/beats.py), with its own
    database connections (a session is not shared across threads). A renewal that fails is
    retried at the next beat, and a lost claim ends the keeping; leaving the keeper waits for
    a renewal under way, so none lands after the outcome is recorded."""

    def __init__(self, kind: Claimable, row_id: int, claim: int, engine: Engine | None = None):
        self.kind, self.row_id, self.claim = kind, row_id, claim
        self.engine = engine or db.engine

    def __enter__(self) -> LeaseKeeper:
        _RENEWALS.keep(self, self.beat, RENEW_EVERY)
        return self

    def __exit__(self, *exc_info) -> None:
        _RENEWALS.drop(self)

    @property
    def keeping(self) -> bool:
        """Still renewed: the job runs and the claim was not lost."""
        return _RENEWALS.keeps(self)

    def renew(self) -> bool:
        """One renewal; False once the row is no longer in this claim's hands."""
        statement = (
            update(self.kind.model)
            .where(held(self.kind, self.row_id, self.claim))
            .values(lease_expires_at=utcnow() + LEASE)
        )
        with self.engine.begin() as connection:
            return connection.execute(statement).rowcount == 1

    def beat(self) -> bool:
        """One renewal from the renewal thread; False once the claim is lost."""
        try:
            return self.renew()
        except SQLAlchemyError as exc:
            log.warning("%s #%d: lease not renewed: %s", self.kind.label, self.row_id, exc)
            return True  # the next beat tries again


_RENEWALS = Beats("lease-renewals")
