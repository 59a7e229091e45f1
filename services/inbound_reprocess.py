"""Run an InboundEmail through processing again: shared by `flask inbound reprocess` and the
admin Inbound log. Idempotent: a delivered message is never duplicated."""

from __future__ import annotations

from extensions import db
from ingress.receive import enqueue_processing
from jobs.process_inbound import STALE_CLAIM
from models import InboundEmail, utcnow


class ReprocessError(Exception):
    """Nothing was queued; the message says why and what to do."""


class NotQueued(Exception):
    """Reset to pending but Redis refused the job: the periodic sweep will queue it."""


def reprocess(row: InboundEmail) -> None:
    """Reset to pending and enqueue. Raises ReprocessError (nothing changed) or NotQueued."""
    if row.storage_key is None:
        raise ReprocessError(
            f"inbound email #{row.id}'s raw message was deleted after the retention period"
        )
    if row.status == "processing" and row.updated_at > utcnow() - STALE_CLAIM:
        # Resetting it now would let a second worker claim it next to the first.
        raise ReprocessError(
            f"inbound email #{row.id} is being processed right now; look again in a minute"
        )
    row.status, row.reason = "pending", None
    db.session.commit()
    if not enqueue_processing(row):
        raise NotQueued(
            f"inbound email #{row.id} is pending but could not be queued (is Redis up?); "
            "the periodic sweep will queue it"
        )
