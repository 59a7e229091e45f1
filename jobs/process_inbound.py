"""The RQ job that processes one InboundEmail: claim it, deliver it, record the outcome.

Status lifecycle: pending → processing → delivered | bounced | failed. A failure records
its reason and re-raises so RQ retries with backoff; the last failure stays `failed`.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import or_, update

from extensions import db, get_storage
from models import InboundEmail, utcnow
from services.inbound_delivery import deliver
from storage import DamagedObject

log = logging.getLogger(__name__)

FINAL = ("delivered", "bounced")
# A worker killed mid-job leaves `processing`; after this long another may take over.
STALE_CLAIM = timedelta(minutes=10)
DAMAGED_HINT = (
    "not delivered; it is retried, and a post of the same message by the sender rewrites the "
    "copy (or restore the object from a backup and run `flask inbound reprocess`)"
)


def claim(inbound_email_id: int) -> bool:
    """Atomically move the row to processing; False if another worker holds it or it's done."""
    now = utcnow()
    result = db.session.execute(
        update(InboundEmail)
        .where(
            InboundEmail.id == inbound_email_id,
            or_(
                InboundEmail.status.in_(("pending", "failed")),
                (InboundEmail.status == "processing")
                & (InboundEmail.updated_at < now - STALE_CLAIM),
            ),
        )
        .values(status="processing", attempts=InboundEmail.attempts + 1, updated_at=now)
    )
    db.session.commit()
    return result.rowcount == 1


def process_inbound_email(inbound_email_id: int) -> str:
    row = db.session.get(InboundEmail, inbound_email_id)
    if row is None:
        log.warning("inbound #%d does not exist; nothing to do", inbound_email_id)
        return "missing"
    if row.status in FINAL or not claim(inbound_email_id):
        return row.status
    db.session.refresh(row)
    try:
        if row.storage_key is None:
            raise LookupError("the raw message was already deleted after the retention period")
        raw = get_storage().get_verified_bytes(row.storage_key, row.size, row.checksum)
        outcome = deliver(row, raw)
    except DamagedObject as exc:
        # Never processed as the message (an empty one would bounce as "no recipients"): fail
        # retryably; the sender's next post of the message rewrites the copy (ingress/receive).
        db.session.rollback()
        _record(inbound_email_id, "failed", f"{exc}; {DAMAGED_HINT}")
        log.error("inbound #%d not processed: %s", inbound_email_id, exc)
        raise
    except Exception as exc:
        db.session.rollback()
        _record(inbound_email_id, "failed", f"{type(exc).__name__}: {exc}")
        log.exception("inbound #%d failed", inbound_email_id)
        raise  # RQ retries with backoff; the last failure stays recorded
    _record(inbound_email_id, outcome.status, outcome.reason, processed=True)
    return outcome.status


def _record(inbound_email_id: int, status: str, reason: str | None, processed=False) -> None:
    row = db.session.get(InboundEmail, inbound_email_id)
    row.status = status
    row.reason = reason[:2000] if reason else None
    if processed:
        row.processed_at = utcnow()
    db.session.commit()
