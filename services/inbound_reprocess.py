"""Run an InboundEmail through processing again: shared by `flask inbound reprocess` and the
admin Inbound log. Idempotent: a delivered message is never duplicated."""

from __future__ import annotations

from extensions import db, get_settings
from ingress.receive import enqueue_processing
from models import InboundEmail
from models.inbound import is_too_large
from services.leases import lease_runs, lease_text


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
    if row.status == "processing" and lease_runs(row.lease_expires_at):
        # Its worker is alive (it renews the lease): a second one next to it gains nothing.
        raise ReprocessError(
            f"inbound email #{row.id} is being processed right now: its worker's lease "
            f"{lease_text(row.lease_expires_at)}; look again then"
        )
    limit = get_settings().inbound_max_bytes
    if is_too_large(row) and row.size > limit:
        raise ReprocessError(
            f"inbound email #{row.id} is {row.size} bytes, still over INBOUND_EMAIL_MAX_BYTES "
            f"({limit}): raise it in the settings and restart Threadline, then reprocess"
        )
    row.reprocess()
    db.session.commit()
    if not enqueue_processing(row):
        raise NotQueued(
            f"inbound email #{row.id} is pending but could not be queued (is Redis up?); "
            "the periodic sweep will queue it"
        )
