"""From, To and Subject of inbound emails for the admin Inbound log, and its search.

A delivered email's headers are its stored Message's (one query per page). An email that
became no message (pending, bounced, failed) has only its raw bytes: their header block is
read from storage, at most HEADER_BYTES of each and only for the rows on the page, so a page
costs at most PAGE_SIZE small reads; a raw message already deleted shows nothing.

The search matches the From, To, Cc and Subject of delivered email and the Message-ID,
source and reason (a bounce names its recipients) of every email, in SQL; and the raw From,
To and Subject of the RAW_SCAN newest emails that became no message, read like a page's (so a
search costs at most RAW_SCAN small reads). Older undelivered mail is found by its Message-ID
or reason only: storing the three headers on InboundEmail would lift that limit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import default

from sqlalchemy import ColumnElement, exists, or_, select

from extensions import db, get_storage
from models import InboundEmail, Message
from storage import StorageError

log = logging.getLogger(__name__)

HEADER_BYTES = 32 * 1024
MAX_QUERY = 200
RAW_SCAN = 200


@dataclass
class Summary:
    from_: str = ""
    to: str = ""
    subject: str = ""


def search_condition(text: str) -> ColumnElement[bool]:
    """Rows whose From, To, Cc, Subject (delivered), Message-ID, source or reason contain
    `text`, case-insensitively."""
    text = text[:MAX_QUERY]
    in_message = exists(
        select(Message.id).where(
            Message.inbound_email_id == InboundEmail.id,
            or_(
                Message.from_address.icontains(text, autoescape=True),
                Message.to_addresses.icontains(text, autoescape=True),
                Message.cc_addresses.icontains(text, autoescape=True),
                Message.subject.icontains(text, autoescape=True),
            ),
        )
    )
    return or_(
        in_message,
        InboundEmail.message_id.icontains(text, autoescape=True),
        InboundEmail.source.icontains(text, autoescape=True),
        InboundEmail.reason.icontains(text, autoescape=True),
        InboundEmail.id.in_(raw_matches(text)),
    )


def raw_matches(text: str) -> list[int]:
    """Ids of the newest emails without a message whose raw From, To or Subject contain
    `text` (case-insensitively)."""
    wanted = text.casefold()
    candidates = db.session.execute(
        select(InboundEmail.id, InboundEmail.storage_key)
        .where(
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
    """From, To and Subject per row id: the stored message's, else the raw headers'."""
    if not rows:
        return {}
    found: dict[int, Summary] = {}
    stored = db.session.execute(
        select(
            Message.inbound_email_id, Message.from_address, Message.to_addresses, Message.subject
        )
        .where(Message.inbound_email_id.in_([row.id for row in rows]))
        .order_by(Message.id)
    )
    for inbound_id, from_, to, subject in stored:
        found.setdefault(inbound_id, Summary(from_ or "", to or "", subject or ""))
    for row in rows:
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
    return parse_summary(head)


def parse_summary(head: bytes) -> Summary:
    """The From, To and Subject of a raw message's first bytes (encoded words decoded)."""
    end = head.find(b"\r\n\r\n")
    end = head.find(b"\n\n") if end < 0 else end
    block = head if end < 0 else head[:end]
    try:
        headers = BytesHeaderParser(policy=default).parsebytes(block)
        return Summary(
            _header(headers, "From"), _header(headers, "To"), _header(headers, "Subject")
        )
    except Exception:  # a header too broken to parse shows blank, never breaks the log
        return Summary()


def _header(headers, name: str) -> str:
    value = headers.get(name)
    return " ".join(str(value).split())[:500] if value is not None else ""
