"""What agents are told about: the events, each person's choices (email and/or in the app),
and `record`, which the places where things happen call inside their own transaction.

Nobody hears of their own actions; deactivated people and people who cannot see the inbox
hear nothing. An email is not sent here: the person's NotificationThread for the
conversation gets a due time, and later events fold into that one email
(services/notifications/email.py sends it).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import bindparam, exists, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import selectinload

from extensions import db
from models import (
    Conversation,
    InboxMember,
    Message,
    Notification,
    NotificationPreference,
    NotificationThread,
    User,
    utcnow,
)
from models.enums import NotificationEvent as Event

# (label, what it means) per event, in the order the profile page lists them.
EVENTS: dict[str, tuple[str, str]] = {
    Event.NEW_CONVERSATION: ("New conversation", "a new conversation in one of my inboxes"),
    Event.ASSIGNED: ("Assigned to me", "a conversation assigned to me by someone else or a rule"),
    Event.CUSTOMER_REPLY: ("Customer replied", "a new customer message on my conversation"),
    Event.UNASSIGNED_REPLY: (
        "Customer replied, unassigned",
        "a new customer message on an unassigned conversation in my inbox",
    ),
    Event.MENTION: ("Mentioned", "someone @mentioned me in a note"),
    Event.SEND_FAILED: ("My reply failed", "a reply of mine could not be sent"),
}
# (email, in the app) when a person has not chosen.
DEFAULTS: dict[str, tuple[bool, bool]] = {
    Event.NEW_CONVERSATION: (False, True),
    Event.ASSIGNED: (True, True),
    Event.CUSTOMER_REPLY: (True, True),
    Event.UNASSIGNED_REPLY: (False, True),
    Event.MENTION: (True, True),
    Event.SEND_FAILED: (True, True),
}
# The first email goes out shortly after its event (so the events of one delivery, say a
# new conversation and its auto-assignment, are one email); later ones at most this often.
FIRST_DELAY = timedelta(seconds=10)
FOLD = timedelta(seconds=180)


def preferences(user: User) -> dict[str, tuple[bool, bool]]:
    """(email, in the app) per event: the person's choices over the defaults."""
    chosen = dict(DEFAULTS)
    rows = db.session.scalars(
        select(NotificationPreference).where(NotificationPreference.user_id == user.id)
    )
    for row in rows:
        if row.event in chosen:
            chosen[row.event] = (row.email, row.in_app)
    return chosen


def set_preferences(user: User, prefs: dict[str, tuple[bool, bool]]) -> None:
    """Store the choices for the events given (commits). Unknown events raise ValueError."""
    unknown = set(prefs) - set(EVENTS)
    if unknown:
        raise ValueError(f"unknown notification event(s): {', '.join(sorted(unknown))}")
    for event, (email, in_app) in prefs.items():
        db.session.merge(
            NotificationPreference(
                user_id=user.id, event=event, email=bool(email), in_app=bool(in_app)
            )
        )
    db.session.commit()


def set_email_preference(user_id: int, event: str, on: bool) -> None:
    """One event's email on or off, its in-app choice kept (the unsubscribe link; commits)."""
    user = db.session.get(User, user_id)
    if user is None:
        raise ValueError("no such user")
    _, in_app = preferences(user)[event]
    set_preferences(user, {event: (on, in_app)})


def _active(user_ids: Iterable[int]) -> list[User]:
    ids = set(user_ids)
    if not ids:
        return []
    return list(db.session.scalars(select(User).where(User.id.in_(ids), User.active.is_(True))))


def _members(inbox_id: int) -> set[int]:
    return set(
        db.session.scalars(select(InboxMember.user_id).where(InboxMember.inbox_id == inbox_id))
    )


def _audience(
    event: str, conversation: Conversation, message: Message | None, members: set[int]
) -> Iterable[int]:
    """Who an event concerns, before preferences (`members`: the inbox's, read once by
    `record`, which also needs them for the access check)."""
    if event == Event.NEW_CONVERSATION:
        return members
    if event == Event.ASSIGNED:
        return [conversation.assignee_id] if conversation.assignee_id else []
    if event == Event.CUSTOMER_REPLY:
        return [conversation.assignee_id] if conversation.assignee_id else []
    if event == Event.UNASSIGNED_REPLY:
        return [] if conversation.assignee_id else members
    if event == Event.SEND_FAILED:
        return [message.sender_user_id] if message is not None and message.sender_user_id else []
    return []  # mentions name their people


def _choices(event: str, user_ids: list[int]) -> dict[int, tuple[bool, bool]]:
    """(email, in the app) for this one event per person, in one query whatever their
    number (a new conversation concerns every member of the inbox)."""
    chosen = dict.fromkeys(user_ids, DEFAULTS[event])
    if not user_ids:
        return chosen
    rows = db.session.execute(
        select(
            NotificationPreference.user_id,
            NotificationPreference.email,
            NotificationPreference.in_app,
        ).where(NotificationPreference.user_id.in_(user_ids), NotificationPreference.event == event)
    )
    for user_id, email, in_app in rows:
        chosen[user_id] = (email, in_app)
    return chosen


def record(
    event: str,
    conversation: Conversation,
    *,
    message: Message | None = None,
    actor_id: int | None = None,
    users: Iterable[User] | None = None,
) -> list[Notification]:
    """Tell the people this event concerns (or `users`), as each chose; no commit.
    A fixed number of queries however many people that is."""
    if event not in EVENTS:
        raise ValueError(f"unknown notification event {event!r}")
    members = _members(conversation.inbox_id)
    if users is not None:
        wanted = [u.id for u in users]
    else:
        wanted = _audience(event, conversation, message, members)
    people = [
        user
        for user in _active(u for u in wanted if u != actor_id)
        if user.is_admin or user.id in members  # (else: lost access to the inbox)
    ]
    choices = _choices(event, [user.id for user in people])
    message_id = message.id if message is not None else None
    now = utcnow()
    rows = []
    for user in people:
        email, in_app = choices[user.id]
        if email or in_app:
            rows.append(
                {
                    "user_id": user.id,
                    "conversation_id": conversation.id,
                    "message_id": message_id,
                    "event": event,
                    "actor_id": actor_id,
                    "in_app": in_app,
                    "email": "pending" if email else None,
                    "created_at": now,
                }
            )
    if not rows:
        return []
    # One INSERT for everyone: a flush would send one per row (SQLite), and render_nulls
    # keeps the rows with and without an email in the same statement.
    made = sorted(
        db.session.scalars(
            insert(Notification).returning(Notification).execution_options(render_nulls=True),
            rows,
        ),
        key=lambda note: note.id,
    )
    emailed = [row["user_id"] for row in rows if row["email"]]
    _emails_due(emailed, conversation.id, now)
    return made


def _threads(user_ids: Iterable[int], conversation_id: int) -> list[NotificationThread]:
    return list(
        db.session.scalars(
            select(NotificationThread).where(
                NotificationThread.conversation_id == conversation_id,
                NotificationThread.user_id.in_(list(user_ids)),
            )
        )
    )


def _emails_due(user_ids: list[int], conversation_id: int, now) -> None:
    """Give each person's email about this conversation a due time, unless one is pending:
    then this event folds into it. The missing threads are made in one INSERT that skips
    any another worker made at the same moment, then read with the rest."""
    if not user_ids:
        return
    threads = _threads(user_ids, conversation_id)
    missing = set(user_ids) - {thread.user_id for thread in threads}
    if missing:
        dialect_insert = pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
        db.session.execute(
            dialect_insert(NotificationThread)
            .values([{"user_id": u, "conversation_id": conversation_id} for u in sorted(missing)])
            .on_conflict_do_nothing(index_elements=["user_id", "conversation_id"])
        )
        threads += _threads(missing, conversation_id)
    for thread in threads:
        if thread.due_at is not None:
            continue
        due = now + FIRST_DELAY
        if thread.last_sent_at is not None:
            due = max(due, thread.last_sent_at + FOLD)
        thread.due_at = due


# Built once, bound when run: the bell on every full page counts them (building the select
# cost more than running it).
_UNREAD_COUNT = select(func.count(Notification.id)).where(
    Notification.user_id == bindparam("user_id"),
    Notification.in_app.is_(True),
    Notification.read_at.is_(None),
)


def unread_count(user: User) -> int:
    return db.session.scalar(_UNREAD_COUNT, {"user_id": user.id})


def has_unread(user: User, conversation_id: int) -> bool:
    """Unread notifications about this conversation (one indexed EXISTS)."""
    return bool(
        db.session.scalar(
            select(
                exists().where(
                    Notification.user_id == user.id,
                    Notification.conversation_id == conversation_id,
                    Notification.read_at.is_(None),
                )
            )
        )
    )


def recent(user: User, *, mentions_only: bool = False, limit: int = 50) -> list[Notification]:
    """The person's in-app notifications, newest first, with what the list shows of each
    (conversation and contact, who did it, the message) loaded in a few queries."""
    query = (
        select(Notification)
        .where(Notification.user_id == user.id, Notification.in_app.is_(True))
        .options(
            selectinload(Notification.conversation).selectinload(Conversation.contact),
            selectinload(Notification.actor),
            selectinload(Notification.message),
        )
    )
    if mentions_only:
        query = query.where(Notification.event == Event.MENTION)
    return list(db.session.scalars(query.order_by(Notification.id.desc()).limit(limit)))


def mark_read(
    user: User, ids: Iterable[int] | None = None, conversation_id: int | None = None
) -> int:
    """Mark the person's unread notifications read: those `ids`, those of one conversation,
    or all; the number marked (commits)."""
    query = update(Notification).where(
        Notification.user_id == user.id, Notification.read_at.is_(None)
    )
    if ids is not None:
        query = query.where(Notification.id.in_(list(ids)))
    if conversation_id is not None:
        query = query.where(Notification.conversation_id == conversation_id)
    marked = db.session.execute(
        query.values(read_at=utcnow()).execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return marked
