"""The RQ job that processes one InboundEmail: claim it, deliver it, record the outcome.

Status lifecycle: pending → processing → delivered | bounced | refused | failed (refused: an
agent's answer by email that was not posted, services/notifications/reply_by_email.py). A
failure records its reason and re-raises so RQ retries with backoff; the last failure stays
`failed`. The claim is a lease renewed while the job runs (services/leases.py): a killed
worker's message is taken over by the sweep once the lease runs out.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from sqlalchemy import or_
from sqlalchemy.exc import OperationalError

from extensions import commit_without_waiting_for_the_disk, db, get_storage
from ingress.receive import HEADER_SCAN
from mail.summary import summary_of_bytes
from models import InboundEmail, utcnow
from services import automations
from services.inbound_delivery import deliver
from services.leases import (
    INBOUND,
    LEASE,
    RENEW_EVERY,
    LeaseKeeper,
    claim,
    finish,
    lease_expired,
    lease_text,
)
from storage import DamagedObject

log = logging.getLogger(__name__)

FINAL = ("delivered", "bounced", "refused")
DAMAGED_HINT = (
    "not delivered; it is retried, and a post of the same message by the sender rewrites the "
    "copy (or restore the object from a backup and run `flask inbound reprocess`)"
)
WAIT_FOR_HOLDER = LEASE + timedelta(seconds=2 * RENEW_EVERY)
POLL_SECONDS = 1.0


class HeldElsewhere(Exception):
    """Another worker still holds the message: this job did nothing, so it must not report
    success. RQ retries it; by then the message is finished, or its lease has run out."""


def claimable(now):
    """Pending or failed, or `processing` by a worker whose lease ran out (it died)."""
    return or_(
        InboundEmail.status.in_(("pending", "failed")),
        (InboundEmail.status == "processing") & lease_expired(INBOUND, now),
    )


def claim_or_wait(inbound_email_id: int) -> int | None:
    """This job's claim; None when the message is missing or already finished (by another
    job).

    A second job for a message being processed (an RQ retry after its work horse died, an
    admin's reprocess) waits for the holder's outcome or for its lease to run out, never
    longer than the lease, and raises HeldElsewhere if the holder is still alive."""
    deadline = time.monotonic() + WAIT_FOR_HOLDER.total_seconds()
    while True:
        number = claim(INBOUND, inbound_email_id, claimable(utcnow()))
        if number is not None:
            return number
        row = db.session.get(InboundEmail, inbound_email_id, populate_existing=True)
        if row is None or row.status in FINAL:
            return None
        if time.monotonic() >= deadline:
            raise HeldElsewhere(
                f"inbound #{row.id} is being processed by another worker, whose lease "
                f"{lease_text(row.lease_expires_at)}"
            )
        time.sleep(POLL_SECONDS)


def process_inbound_email(inbound_email_id: int) -> str:
    # The row and its raw copy are durable since the ingress acknowledged them; a power cut
    # that undoes this job's last commits puts the row back for the sweep to deliver again.
    commit_without_waiting_for_the_disk(db.session())
    # Claimed first, read after: the claim's commit would expire a row read before it.
    number = claim_or_wait(inbound_email_id)
    row = db.session.get(InboundEmail, inbound_email_id)
    if row is None:
        log.warning("inbound #%d does not exist; nothing to do", inbound_email_id)
        return "missing"
    if number is None:
        return row.status
    headers: dict = {}  # a row accepted before migration 0009 gets its From, To and Subject
    with LeaseKeeper(INBOUND, row.id, number):
        try:
            if row.storage_key is None:
                raise LookupError("the raw message was already deleted after the retention period")
            raw = get_storage().get_verified_bytes(row.storage_key, row.size, row.checksum)
            if row.from_address is None:
                headers = summary_of_bytes(raw[:HEADER_SCAN]).columns()
            outcome = _deliver(row, raw)
        except DamagedObject as exc:
            # Never processed as the message (an empty one would bounce as "no recipients"):
            # fail retryably; the sender's next post rewrites the copy (ingress/receive).
            db.session.rollback()
            _record(inbound_email_id, number, "failed", f"{exc}; {DAMAGED_HINT}")
            log.error("inbound #%d not processed: %s", inbound_email_id, exc)
            raise
        except Exception as exc:
            db.session.rollback()
            _record(inbound_email_id, number, "failed", f"{type(exc).__name__}: {exc}", **headers)
            log.exception("inbound #%d failed", inbound_email_id)
            raise  # RQ retries with backoff; the last failure stays recorded
        # The outcome commits with the delivery's writes (one transaction); then its effects.
        _record(
            inbound_email_id,
            number,
            outcome.status,
            outcome.reason,
            True,
            outcome.inbox_id,
            **headers,
        )
        if outcome.effects is not None:
            automations.after_commit(outcome.effects)
    return outcome.status


# SQLite: a write that meets another process's commit made after this transaction first read
# fails at once with "database is locked" (the busy timeout cannot help: its snapshot is
# stale). That is contention, not the message's fault: roll back and deliver again.
LOCKED_RETRIES = 5


def _deliver(row: InboundEmail, raw: bytes):
    """deliver(), run again after a rollback when SQLite reports the database locked; safe,
    as delivery is exactly-once by its Message-ID and its attachment keys are the row's."""
    for attempt in range(1, LOCKED_RETRIES + 1):
        try:
            return deliver(row, raw)
        except OperationalError as exc:
            if "database is locked" not in str(exc) or attempt == LOCKED_RETRIES:
                raise
            db.session.rollback()
            log.info("inbound #%d met a concurrent write (attempt %d); again", row.id, attempt)
            time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


def _record(
    inbound_email_id: int,
    number: int,
    status: str,
    reason: str | None,
    processed: bool = False,
    inbox_id: int | None = None,
    **headers: str,
) -> None:
    outcome = InboundEmail.outcome(status, reason, processed=processed, inbox_id=inbox_id)
    finish(INBOUND, inbound_email_id, number, **outcome, **headers)
