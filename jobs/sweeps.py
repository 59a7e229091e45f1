"""Periodic housekeeping: delete processed raw messages after the retention period, hand what
a dead worker left (or a lost job never started) to a live one, send replies whose wait is
over and wake snoozed conversations."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select, update

from extensions import db, get_settings, get_storage
from models import Conversation, InboundEmail, Message, utcnow
from services import ingress_refusals, send_later
from services.background import (
    enqueue_processing,
    enqueue_send,
    job_is_waiting,
    processing_job_id,
    send_job_id,
)
from services.leases import INBOUND, OUTGOING, lease_expired

log = logging.getLogger(__name__)

# Failed and pending messages are kept: an admin may still reprocess them.
INCINERATE_STATUSES = ("delivered", "bounced", "refused")
BATCH = 500


def incinerate_processed_raw_emails() -> int:
    """Delete raw bytes of delivered/bounced messages older than the retention; keep the rows.
    Refused posts last seen before then are forgotten too (services/ingress_refusals.py)."""
    retention = timedelta(days=get_settings().inbound_retention_days)
    forgotten = ingress_refusals.prune(retention)
    if forgotten:
        log.info("forgot %d ingress refusals older than the retention", forgotten)
    cutoff = utcnow() - retention
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


# A row this young may still have its enqueue in flight (ingress commits, then enqueues).
ENQUEUE_GRACE = timedelta(seconds=15)


def recover_inbound() -> int:
    """Give every unfinished message a job that will really run; the number (re)enqueued.

    `processing` rows whose lease ran out (their worker died) go back to pending, and pending
    rows without a live job (their enqueue failed while Redis was down, or their job was
    swallowed by a dying worker) are enqueued, whatever RQ's registries say. A row whose job
    waits is left alone, and the job's claim (services/leases.py) makes a duplicate harmless."""
    now = utcnow()
    expired = db.session.execute(
        InboundEmail.requeue(InboundEmail.status == "processing", lease_expired(INBOUND, now))
    ).rowcount
    db.session.commit()
    if expired:
        log.warning("sweep: %d inbound email(s) whose worker died taken over", expired)
    rows = db.session.scalars(
        select(InboundEmail)
        .where(
            InboundEmail.status == "pending",
            InboundEmail.created_at < now - ENQUEUE_GRACE,
        )
        .order_by(InboundEmail.id)
        .limit(BATCH * 10)
    ).all()
    enqueued = 0
    for row in rows:  # Redis errors fail this run; the next one, 15 s later, tries again
        if not job_is_waiting(processing_job_id(row.id)):
            enqueue_processing(row.id)
            enqueued += 1
    if enqueued:
        log.info("sweep: %d pending inbound email(s) without a live job (re)enqueued", enqueued)
    return enqueued


def recover_outgoing() -> int:
    """Replies whose send job never ran (Redis was down, the job was swallowed) or whose
    worker died mid-send; the number (re)enqueued.

    A reply left `sending` by a dead worker is sent again only if it never reached SMTP DATA:
    the server cannot have accepted an incomplete message. One handed over (DATA begun) is
    marked `unknown` for an agent to decide (send again or mark as sent): SMTP gives no way
    to ask whether it was accepted, and a reply sent twice is a visible mistake."""
    from services.replies import UNKNOWN_FATE

    now = utcnow()
    outgoing_past_lease = (
        (Message.direction == "outgoing")
        & (Message.delivery_status == "sending")
        & lease_expired(OUTGOING, now)
    )
    unknown = db.session.execute(
        update(Message)
        .where(outgoing_past_lease, Message.handed_over_at.is_not(None))
        .values(
            delivery_status="unknown",
            delivery_error="The worker stopped after handing this reply to the mail server, "
            f"before the server's answer was recorded. {UNKNOWN_FATE}",
            lease_expires_at=None,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if unknown:
        log.warning("sweep: %d reply(ies) of unknown fate need an agent's decision", unknown)
    resend = db.session.scalars(
        update(Message)
        .where(outgoing_past_lease, Message.handed_over_at.is_(None))
        .values(delivery_status="queued", lease_expires_at=None)
        .returning(Message.id)
        .execution_options(synchronize_session=False)
    ).all()
    db.session.commit()
    stale_queued = db.session.scalars(
        select(Message.id).where(
            Message.direction == "outgoing",
            Message.delivery_status == "queued",
            Message.updated_at < now - ENQUEUE_GRACE,
            send_later.due(now),  # an undo window or a scheduled time is no lost job
        )
    ).all()
    requeued = _give_send_jobs(sorted(set(resend) | set(stale_queued)))
    if requeued:
        log.info("sweep: %d reply(ies) without a live send job (re)enqueued", requeued)
    return requeued


def send_due_replies() -> int:
    """Every few seconds: hold the scheduled replies the customer wrote after, and give each
    reply whose wait is over (undo window, scheduled time) its send job; the number enqueued.

    Waiting replies have no job until then (services/send_later.py); a reply whose job waits
    (a retry's backoff) is left to it, and the job's claim makes a duplicate harmless."""
    send_later.hold_answered()
    now = utcnow()
    due = db.session.scalars(
        select(Message.id)
        .where(
            Message.delivery_status == "queued",
            Message.send_after <= now,
            Message.direction == "outgoing",
        )
        .order_by(Message.send_after)
        .limit(BATCH)
    ).all()
    enqueued = _give_send_jobs(due)
    if enqueued:
        log.debug("%d reply(ies) due after their wait enqueued", enqueued)
    return enqueued


def _give_send_jobs(message_pks: list[int]) -> int:
    """Enqueue a send job for each reply without a live one; how many. Redis errors fail the
    run: the next one tries again."""
    enqueued = 0
    for message_pk in message_pks:
        if not job_is_waiting(send_job_id(message_pk)):
            enqueue_send(message_pk)
            enqueued += 1
    return enqueued


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
