"""Every post an ingress refused, recorded (models/ingress_refusals.py): some providers drop
a 4xx without retrying or telling anyone, so our answer alone would leave no trace.

A refusal keeps the time, the ingress, the client's address, the status and the reason. The
From, To, Subject and Message-ID are read from the header block only when the post was
authenticated and its first bytes are the message (the relay's body; never the body of an
unauthenticated post, never more than the header block). The same refusal repeated by the
same client within REPEAT_WINDOW is counted on one row: a misconfigured relay retrying all
night, or someone guessing passwords, is one line that says how often.

Recording never changes the answer: a database that cannot take the row is logged."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.parser import BytesHeaderParser
from email.policy import compat32

from sqlalchemy import delete, func, select
from sqlalchemy.exc import SQLAlchemyError

from extensions import db
from mail.summary import header_block, summary_of
from models import IngressRefusal, utcnow

log = logging.getLogger(__name__)

REPEAT_WINDOW = timedelta(minutes=10)
HEAD_BYTES = 32 * 1024
MAX_REASON = 500
RECENT_HOURS = 24
PAGE = 50


@dataclass
class Headers:
    from_address: str | None = None
    to_addresses: str | None = None
    subject: str | None = None
    message_id: str | None = None


def headers_of(head: bytes | None) -> Headers:
    """From, To, Subject and Message-ID of a message's first bytes; blank when unreadable."""
    if not head:
        return Headers()
    try:
        parsed = BytesHeaderParser(policy=compat32).parsebytes(header_block(head[:HEAD_BYTES]))
        summary = summary_of(parsed)
        message_id = str(parsed.get("Message-ID", "") or "").strip().strip("<>")[:998]
    except Exception:  # noqa: BLE001 - a refusal is recorded even when its headers are junk
        return Headers()
    if not (summary.from_ or summary.to or summary.subject or message_id):
        return Headers()  # not a message at all (a form, JSON): nothing to show
    return Headers(summary.from_, summary.to, summary.subject, message_id or None)


def record(
    ingress: str,
    status: int,
    reason: str,
    client_address: str | None,
    size: int | None = None,
    head: bytes | None = None,
) -> None:
    """Record one refused post (or count it on the row of its recent repeat)."""
    client = (client_address or "unknown")[:64]
    reason = reason[:MAX_REASON]
    headers = headers_of(head)
    log.warning("ingress %s refused a post from %s: %d %s", ingress, client, status, reason)
    now = utcnow()
    try:
        db.session.rollback()  # whatever the refused request left half-done
        repeat = db.session.scalar(
            select(IngressRefusal)
            .where(
                IngressRefusal.ingress == ingress,
                IngressRefusal.status == status,
                IngressRefusal.client_address == client,
                IngressRefusal.reason == reason,
                _same(IngressRefusal.message_id, headers.message_id),
                IngressRefusal.last_at >= now - REPEAT_WINDOW,
            )
            .order_by(IngressRefusal.id.desc())
            .limit(1)
        )
        if repeat is not None:
            repeat.count += 1
            repeat.last_at = now
        else:
            db.session.add(
                IngressRefusal(
                    created_at=now,
                    last_at=now,
                    ingress=ingress,
                    status=status,
                    client_address=client,
                    reason=reason,
                    size=size,
                    from_address=headers.from_address,
                    to_addresses=headers.to_addresses,
                    subject=headers.subject,
                    message_id=headers.message_id,
                )
            )
        db.session.commit()
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.error("the refusal above was not recorded: %s", exc)


def _same(column, value):
    return column.is_(None) if value is None else column == value


def recent(before: int | None = None, limit: int = PAGE) -> list[IngressRefusal]:
    """The latest refusals, newest first; `before` an id for the next page."""
    query = select(IngressRefusal).order_by(IngressRefusal.id.desc()).limit(limit)
    if before is not None:
        query = query.where(IngressRefusal.id < before)
    return list(db.session.scalars(query))


@dataclass
class RecentRefusals:
    posts: int  # refused posts (repeats counted)
    latest: IngressRefusal | None


def since(hours: int = RECENT_HOURS, now: datetime | None = None) -> RecentRefusals:
    """How many posts were refused in the last `hours`, and the latest refusal."""
    cutoff = (now or utcnow()) - timedelta(hours=hours)
    posts = db.session.scalar(
        select(func.coalesce(func.sum(IngressRefusal.count), 0)).where(
            IngressRefusal.last_at >= cutoff
        )
    )
    latest = db.session.scalar(
        select(IngressRefusal)
        .where(IngressRefusal.last_at >= cutoff)
        .order_by(IngressRefusal.last_at.desc(), IngressRefusal.id.desc())
        .limit(1)
    )
    return RecentRefusals(int(posts or 0), latest)


def prune(older_than: timedelta) -> int:
    """Forget refusals last seen before the retention period (the daily sweep)."""
    result = db.session.execute(
        delete(IngressRefusal).where(IngressRefusal.last_at < utcnow() - older_than)
    )
    db.session.commit()
    return result.rowcount
