"""Queries behind the admin Inbound log and the per-inbox health page.

Counts and "last received" come from InboundEmail rows (what reached Threadline, whatever
became of it), so a misconfigured inbox shows its failures instead of an empty chart.
Days are UTC days.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import case, func, select

from extensions import db
from models import (
    Conversation,
    ImapFolderState,
    ImapSettings,
    InboundEmail,
    Inbox,
    Message,
    utcnow,
)
from services.conversation_list import before, encode_cursor
from services.conversations import ConversationError
from services.inbox_log import Summary, search_condition, summaries
from services.oauth import token_state

PAGE_SIZE = 50
RECENT = 20
CHART_DAYS = 30
PROBLEM_STATUSES = ("failed", "bounced")


class CursorError(ValueError):
    """A `before` cursor that this page did not produce."""


@dataclass
class Threaded:
    threaded_by: str | None
    conversation_id: int
    display_number: int
    subject: str


@dataclass
class LogPage:
    rows: list[InboundEmail]
    next_cursor: str | None
    threading: dict[int, list[Threaded]] = field(default_factory=dict)
    summaries: dict[int, Summary] = field(default_factory=dict)


def _cursor_condition(cursor: str):
    try:
        return before(InboundEmail.created_at, InboundEmail.id, cursor)
    except ConversationError:
        raise CursorError("this page link is broken") from None


def inbound_page(
    status: str | None = None,
    inbox_id: int | str | None = None,
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
    search: str | None = None,
) -> LogPage:
    """Newest first; `inbox_id="none"` means mail that matched no inbox (unroutable);
    `search` matches From, To, Subject and more (services/inbox_log.py)."""
    query = select(InboundEmail).order_by(InboundEmail.created_at.desc(), InboundEmail.id.desc())
    if status:
        query = query.where(InboundEmail.status == status)
    if inbox_id == "none":
        query = query.where(InboundEmail.inbox_id.is_(None))
    elif inbox_id is not None:
        query = query.where(InboundEmail.inbox_id == inbox_id)
    if search:
        query = query.where(search_condition(search))
    if cursor:
        query = query.where(_cursor_condition(cursor))
    rows = db.session.scalars(query.limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return LogPage(
        rows,
        encode_cursor(rows[-1].created_at, rows[-1].id) if more else None,
        threading_results([row.id for row in rows]),
        summaries(rows),
    )


def threading_results(inbound_ids: list[int]) -> dict[int, list[Threaded]]:
    """The message(s) each inbound email became, with how it was threaded, in one query."""
    if not inbound_ids:
        return {}
    found: dict[int, list[Threaded]] = {}
    rows = db.session.execute(
        select(
            Message.inbound_email_id,
            Message.threaded_by,
            Conversation.id,
            Conversation.display_number,
            Conversation.subject,
        )
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Message.inbound_email_id.in_(inbound_ids))
        .order_by(Message.id)
    )
    for inbound_id, threaded_by, conv_id, number, subject in rows:
        found.setdefault(inbound_id, []).append(Threaded(threaded_by, conv_id, number, subject))
    return found


def status_counts() -> dict[str, int]:
    """How many inbound emails have each status (for the filter links)."""
    rows = db.session.execute(
        select(InboundEmail.status, func.count(InboundEmail.id)).group_by(InboundEmail.status)
    )
    return dict(rows.all())


def inbox_names() -> dict[int, str]:
    return dict(db.session.execute(select(Inbox.id, Inbox.name).order_by(Inbox.name)).all())


@dataclass
class Day:
    day: date
    total: int
    problems: int  # failed or bounced


@dataclass
class InboxHealth:
    inbox: Inbox
    state: str  # ok | attention | never | archived
    last_received: datetime | None
    imap: ImapSettings | None
    folders: list[ImapFolderState]
    days: list[Day]
    recent: LogPage
    unroutable_recently: int
    # Signed in with Microsoft 365 / Google: the token's state and last refresh, one line.
    sign_in: str | None = None

    @property
    def peak(self) -> int:
        return max((d.total for d in self.days), default=0)

    @property
    def total(self) -> int:
        return sum(d.total for d in self.days)


def _day_expression():
    """The UTC calendar day of created_at, as SQL: SQLite stores UTC text, PostgreSQL
    timestamptz is converted explicitly so the session time zone cannot shift days."""
    if db.engine.dialect.name == "postgresql":
        return func.date(func.timezone("UTC", InboundEmail.created_at))
    return func.date(InboundEmail.created_at)


def daily_counts(inbox_id: int, today: date | None = None, days: int = CHART_DAYS) -> list[Day]:
    """Inbound emails per UTC day for the last `days` days (today included), zeros filled."""
    today = today or utcnow().date()
    first = today - timedelta(days=days - 1)
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    day = _day_expression()
    rows = db.session.execute(
        select(
            day,
            func.count(InboundEmail.id),
            func.sum(case((InboundEmail.status.in_(PROBLEM_STATUSES), 1), else_=0)),
        )
        .where(InboundEmail.inbox_id == inbox_id, InboundEmail.created_at >= start)
        .group_by(day)
    ).all()
    counted = {str(value)[:10]: (total, problems or 0) for value, total, problems in rows}
    result = []
    for offset in range(days):
        current = first + timedelta(days=offset)
        total, problems = counted.get(current.isoformat(), (0, 0))
        result.append(Day(current, total, problems))
    return result


def last_received(inbox: Inbox) -> datetime | None:
    newest = db.session.scalar(
        select(func.max(InboundEmail.created_at)).where(InboundEmail.inbox_id == inbox.id)
    )
    if newest is not None and newest.tzinfo is None:  # aggregates skip the column type
        newest = newest.replace(tzinfo=UTC)
    candidates = [moment for moment in (newest, inbox.last_message_at) if moment is not None]
    return max(candidates, default=None)


def health_state(inbox: Inbox, received: datetime | None) -> str:
    """ok | attention | never | archived: the one word the list and the health page show."""
    if inbox.archived_at is not None:
        return "archived"
    if inbox.needs_attention:
        return "attention"
    return "never" if received is None else "ok"


def health_states(inboxes: list[Inbox]) -> dict[int, str]:
    """Every listed inbox's state, with one query for when each last received mail."""
    newest = dict(
        db.session.execute(
            select(InboundEmail.inbox_id, func.max(InboundEmail.created_at))
            .where(InboundEmail.inbox_id.in_([inbox.id for inbox in inboxes]))
            .group_by(InboundEmail.inbox_id)
        ).all()
    )
    return {
        inbox.id: health_state(inbox, newest.get(inbox.id) or inbox.last_message_at)
        for inbox in inboxes
    }


def inbox_health(inbox: Inbox, today: date | None = None) -> InboxHealth:
    received = last_received(inbox)
    state = health_state(inbox, received)
    folders = db.session.scalars(
        select(ImapFolderState)
        .where(ImapFolderState.inbox_id == inbox.id)
        .order_by(ImapFolderState.folder)
    ).all()
    since = utcnow() - timedelta(days=CHART_DAYS)
    unroutable = db.session.scalar(
        select(func.count(InboundEmail.id)).where(
            InboundEmail.inbox_id.is_(None),
            InboundEmail.status == "bounced",
            InboundEmail.created_at >= since,
        )
    )
    return InboxHealth(
        inbox=inbox,
        state=state,
        last_received=received,
        imap=inbox.imap if inbox.mode == "imap" else None,
        folders=list(folders),
        days=daily_counts(inbox.id, today),
        recent=inbound_page(inbox_id=inbox.id, limit=RECENT),
        unroutable_recently=unroutable,
        sign_in=token_state(inbox.oauth) if inbox.oauth is not None else None,
    )
