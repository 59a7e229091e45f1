"""Periodic housekeeping: delete processed raw messages after the retention period, re-enqueue
what was lost, and wake snoozed conversations."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select, update

from extensions import db, get_settings, get_storage
from jobs import job_is_waiting
from models import Conversation, InboundEmail, Message, utcnow

log = logging.getLogger(__name__)

# Failed and pending messages are kept: an admin may still reprocess them.
INCINERATE_STATUSES = ("delivered", "bounced")
BATCH = 500


def incinerate_processed_raw_emails() -> int:
    """Delete raw bytes of delivered/bounced messages older than the retention; keep the rows."""
    cutoff = utcnow() - timedelta(days=get_settings().inbound_retention_days)
    storage = get_storage()
    done = 0
    while True:
        rows = db.session.scalars(
            select(InboundEmail)
            .where(
                InboundEmail.status.in_(INCINERATE_STATUSES),
                InboundEmail.storage_key.is_not(None),
                InboundEmail.processed_at < cutoff,
            )
            .limit(BATCH)
        ).all()
        if not rows:
            break
        for row in rows:
            storage.delete(row.storage_key)
            row.storage_key = None
            row.incinerated_at = utcnow()
        db.session.commit()
        done += len(rows)
    if done:
        log.info("incinerated %d raw messages processed before %s", done, cutoff.isoformat())
    return done


STALE_PENDING_AFTER = timedelta(minutes=1)


def enqueue_stale_pending() -> int:
    """Re-enqueue pending messages older than a minute: their enqueue failed (Redis was down)
    or their job was lost. Jobs already waiting are left alone, so this never duplicates."""
    from ingress.receive import enqueue_processing

    cutoff = utcnow() - STALE_PENDING_AFTER
    rows = db.session.scalars(
        select(InboundEmail)
        .where(InboundEmail.status == "pending", InboundEmail.created_at < cutoff)
        .order_by(InboundEmail.id)
        .limit(BATCH * 10)
    ).all()
    enqueued = sum(1 for row in rows if enqueue_processing(row))
    if enqueued:  # rows whose job is still waiting (busy workers) are not news every minute
        log.info("sweep: %d stale pending inbound email(s), %d (re)enqueued", len(rows), enqueued)
    return enqueued


STALE_SENDING_AFTER = timedelta(minutes=10)


def requeue_stale_outgoing() -> int:
    """Replies whose send job was never queued (Redis down) or whose worker died mid-send.

    A reply left `sending` by a killed worker is sent again: the customer may get it twice,
    which beats never getting it (SMTP gives no way to ask whether it was accepted)."""
    from services.replies import enqueue_send

    now = utcnow()
    rows = db.session.scalars(
        select(Message).where(
            Message.direction == "outgoing",
            (
                (Message.delivery_status == "queued")
                & (Message.updated_at < now - STALE_PENDING_AFTER)
            )
            | (
                (Message.delivery_status == "sending")
                & (Message.updated_at < now - STALE_SENDING_AFTER)
            ),
        )
    ).all()
    requeued = 0
    for message in rows:
        if job_is_waiting(f"send-message-{message.id}"):
            continue
        message.delivery_status = "queued"
        db.session.commit()
        enqueue_send(message.id)
        requeued += 1
    if requeued:
        log.info("sweep: %d stale outgoing message(s) requeued", requeued)
    return requeued


def wake_snoozed() -> int:
    """Reopen snoozed conversations whose time has come, each with a "Snooze ended" line.

    The status check is repeated in the UPDATE, so a conversation an agent changed in the
    meantime (or two overlapping runs) is never reopened twice or against their will."""
    now = utcnow()
    due = db.session.scalars(
        select(Conversation.id)
        .where(Conversation.status == "snoozed", Conversation.snoozed_until <= now)
        .order_by(Conversation.snoozed_until)
        .limit(BATCH * 10)
    ).all()
    woken = 0
    for conversation_id in due:
        changed = db.session.execute(
            update(Conversation)
            .where(
                Conversation.id == conversation_id,
                Conversation.status == "snoozed",
                Conversation.snoozed_until <= now,
            )
            .values(status="open", snoozed_until=None, last_activity_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if changed:
            conversation = db.session.get(Conversation, conversation_id)
            db.session.refresh(conversation)
            db.session.add(conversation.activity("Snooze ended"))
            woken += 1
        db.session.commit()
    if woken:
        log.info("sweep: %d snoozed conversation(s) reopened", woken)
    return woken
