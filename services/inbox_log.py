"""From, To and Subject of inbound emails for the admin Inbound log, and its search.

Every email accepted since migration 0009 carries its header block's From, To and Subject
on its InboundEmail row (written by ingress/receive.py, as mail/summary.py reads them), so
a page shows them without another query and the search matches them in SQL for every row,
delivered or not, however old.

Rows accepted before 0009 have NULL there until the processing job runs on them again. For
those only, a page falls back to the stored Message's headers, else to the raw bytes' header
block read from storage (at most HEADER_BYTES of each, only for the rows on the page; a raw
message already deleted shows nothing). The search also reads the raw headers of the
RAW_SCAN newest such rows that became no message: that scan is kept, not dropped, so an old
bounce is still found by its sender until its raw copy is incinerated, and it costs one
cheap query once no NULL row is left.

The search matches the stored From, To and Subject, the From, To, Cc and Subject of the
delivered message, and the Message-ID, source and reason (a bounce names its recipients, a
refused agent answer by email says why: services/notifications/reply_by_email.py).
"""

from __future__ import annotations

import logging

from sqlalchemy import ColumnElement, Text, exists, or_, select, type_coerce

from extensions import db, get_storage
from mail.model import Person
from mail.summary import Summary, summary_of_bytes
from models import InboundEmail, Message
from storage import StorageError

log = logging.getLogger(__name__)

HEADER_BYTES = 32 * 1024
MAX_QUERY = 200
RAW_SCAN = 200


def headers_unknown() -> ColumnElement[bool]:
    """Rows accepted before From, To and Subject were stored (all three are set together)."""
    return InboundEmail.from_address.is_(None)


def search_condition(text: str) -> ColumnElement[bool]:
    """Rows whose From, To, Subject, delivered Cc, Message-ID, source or reason contain
    `text`, case-insensitively."""
    text = text[:MAX_QUERY]

    def has(column) -> ColumnElement[bool]:
        # as plain text: a People column (models/base.py PeopleType) would otherwise read
        # the pattern itself as an address list
        return type_coerce(column, Text).icontains(text, autoescape=True)

    in_message = exists(
        select(Message.id).where(
            Message.inbound_email_id == InboundEmail.id,
            or_(
                has(Message.from_address),
                has(Message.to_addresses),
                has(Message.cc_addresses),
                has(Message.subject),
            ),
        )
    )
    return or_(
        has(InboundEmail.from_address),
        has(InboundEmail.to_addresses),
        has(InboundEmail.subject),
        in_message,
        has(InboundEmail.message_id),
        has(InboundEmail.source),
        has(InboundEmail.reason),
        InboundEmail.id.in_(raw_matches(text)),
    )


def raw_matches(text: str) -> list[int]:
    """Ids of the newest rows without stored headers or a message whose raw From, To or
    Subject contain `text` (case-insensitively)."""
    wanted = text.casefold()
    candidates = db.session.execute(
        select(InboundEmail.id, InboundEmail.storage_key)
        .where(
            headers_unknown(),
            InboundEmail.storage_key.is_not(None),
            ~exists(select(Message.id).where(Message.inbound_email_id == InboundEmail.id)),
        )
        .order_by(InboundEmail.created_at.desc(), InboundEmail.id.desc())
        .limit(RAW_SCAN)
    ).all()
    found = []
    for inbound_id, key in candidates:
        summary = raw_summary(key)
        if any(wanted in part.casefold() for part in (summary.from_, summary.to, summary.subject)):
            found.append(inbound_id)
    return found


def summaries(rows: list[InboundEmail]) -> dict[int, Summary]:
    """From, To and Subject per row id: the stored ones; for a row accepted before they
    were stored, its message's, else its raw headers'."""
    found = {
        row.id: Summary(row.from_address, row.to_addresses or "", row.subject or "")
        for row in rows
        if row.from_address is not None
    }
    older = [row for row in rows if row.from_address is None]
    if not older:
        return found
    stored = db.session.execute(
        select(
            Message.inbound_email_id,
            Message.from_address,
            Message.from_name,
            Message.to_addresses,
            Message.subject,
        )
        .where(Message.inbound_email_id.in_([row.id for row in older]))
        .order_by(Message.id)
    )
    for inbound_id, address, name, to, subject in stored:
        found.setdefault(inbound_id, Summary(Person(address, name).formatted(), str(to), subject))
    for row in older:
        if row.id not in found and row.storage_key:
            found[row.id] = raw_summary(row.storage_key)
    return found


def raw_summary(key: str) -> Summary:
    try:
        with get_storage().open(key) as stream:
            head = stream.read(HEADER_BYTES)
    except (StorageError, OSError) as exc:
        log.debug("inbound log: headers of %s unreadable: %s", key, exc)
        return Summary()
    return summary_of_bytes(head)
