"""Conversation actions and the conversation list, shared by the web UI and the JSON API.

Callers check that the user may see the conversation's inbox first (services/access.py);
these functions validate the change itself and record what happened as activity lines.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Select, and_, exists, func, or_, select
from sqlalchemy.exc import IntegrityError

from extensions import db
from models import (
    Contact,
    Conversation,
    ConversationLabel,
    Inbox,
    InboxMember,
    Label,
    Message,
    User,
    utcnow,
)
from models.conversations import STATUSES
from services.access import visible_inboxes_query

NUMBER_RETRIES = 5
DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
# The largest id a row can have: ids are INTEGER columns, 32-bit on PostgreSQL. A larger
# number from a URL or a request is simply not found; binding it would fail instead
# (PostgreSQL: "integer out of range"; SQLite beyond 64 bits: OverflowError).
MAX_ID = 2**31 - 1
_UNCHANGED = object()  # "assignee_id not given"; None means "unassign"

STATUS_PHRASES = {
    "open": "reopened this conversation",
    "pending": "marked this conversation as pending",
    "resolved": "resolved this conversation",
    "snoozed": "snoozed this conversation",
}


class ConversationError(ValueError):
    """A change or a query that cannot be accepted; `field` names what to fix."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def new_conversation(inbox_id: int, contact_id: int, subject: str) -> Conversation:
    """A new open conversation with the next display number; a concurrent worker taking the
    same number makes us try again. Added and flushed, not committed."""
    for _ in range(NUMBER_RETRIES):
        number = (db.session.scalar(select(func.max(Conversation.display_number))) or 0) + 1
        conversation = Conversation(
            inbox_id=inbox_id, contact_id=contact_id, display_number=number, subject=subject[:998]
        )
        try:
            with db.session.begin_nested():
                db.session.add(conversation)
            return conversation
        except IntegrityError:
            continue
    raise RuntimeError("could not allocate a conversation number; retry")


def update_conversation(
    conversation: Conversation,
    actor: User,
    status: str | None = None,
    assignee_id: int | None | object = _UNCHANGED,
    snoozed_until: datetime | None = None,
) -> list[Message]:
    """Change status and/or assignee; both are validated before anything changes.

    Snoozing needs `snoozed_until`, a time in the future: the wake_snoozed sweep reopens
    the conversation then (a new message from the contact reopens it sooner).
    Returns the activity lines added (none when nothing actually changed).
    """
    if status is not None and status not in STATUSES:
        raise ConversationError("status", f"status must be one of {', '.join(STATUSES)}")
    _check_snooze(status, snoozed_until)
    assignee = current = None
    if assignee_id is not _UNCHANGED and assignee_id is not None:
        if isinstance(assignee_id, bool) or not isinstance(assignee_id, int):
            raise ConversationError(
                "assignee_id", "assignee_id must be a user id (integer) or null"
            )
    change_assignee = assignee_id is not _UNCHANGED and assignee_id != conversation.assignee_id
    if change_assignee and assignee_id is not None:
        assignee = _assignable_user(conversation, assignee_id)
    if change_assignee and conversation.assignee_id is not None:
        current = conversation.assignee

    lines = []
    if change_assignee:
        conversation.assignee_id = assignee.id if assignee else None
        if assignee is not None:
            lines.append(f"{actor.name} assigned this to {assignee.name}")
        else:
            former = current.name if current is not None else "the previous assignee"
            lines.append(f"{actor.name} unassigned {former}")
    if status == "snoozed" and (
        conversation.status != "snoozed" or conversation.snoozed_until != snoozed_until
    ):
        conversation.snooze(snoozed_until)
        lines.append(
            f"{actor.name} {STATUS_PHRASES['snoozed']} until {snooze_label(snoozed_until)}"
        )
    elif status is not None and status != conversation.status:
        conversation.move_to(status)
        lines.append(f"{actor.name} {STATUS_PHRASES[status]}")

    activity = [conversation.activity(line, actor.id) for line in lines]
    db.session.add_all(activity)
    db.session.commit()
    return activity


def _check_snooze(status: str | None, snoozed_until: datetime | None) -> None:
    if snoozed_until is not None and status != "snoozed":
        raise ConversationError("snoozed_until", 'snoozed_until goes with status "snoozed"')
    if status != "snoozed":
        return
    if snoozed_until is None:
        raise ConversationError("snoozed_until", "snoozing needs snoozed_until: when to reopen")
    if not isinstance(snoozed_until, datetime) or snoozed_until.tzinfo is None:
        raise ConversationError(
            "snoozed_until", "snoozed_until must be a date and time with a time zone"
        )
    if snoozed_until <= utcnow():
        raise ConversationError("snoozed_until", "snoozed_until must be in the future")


def snooze_label(moment: datetime) -> str:
    """ "2026-11-23 09:00 UTC": how activity lines and the thread show a snooze's end."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _assignable_user(conversation: Conversation, assignee_id: int) -> User:
    user = db.session.get(User, assignee_id) if 0 < assignee_id <= MAX_ID else None
    if user is None or not user.active:
        raise ConversationError("assignee_id", f"assignee_id {assignee_id}: no active user")
    member = db.session.get(InboxMember, (conversation.inbox_id, user.id))
    if member is None and not user.is_admin:
        raise ConversationError(
            "assignee_id",
            f"assignee_id {assignee_id}: {user.name} is not a member of this conversation's inbox",
        )
    return user


@dataclass
class ConversationRow:
    conversation: Conversation
    contact: Contact
    assignee: User | None


@dataclass
class ConversationPage:
    rows: list[ConversationRow]
    next_cursor: str | None


def list_conversations(
    user: User,
    inbox_id: int | None = None,
    status: str | None = None,
    assignee: str | int | None = None,
    q: str | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    label: str | None = None,
) -> ConversationPage:
    """The user's conversations, most recent activity first, one keyset page at a time.

    `assignee` is "me", "unassigned" or a user id; `q` searches subject, the contact's
    email and name, and message text (case-insensitive); `label` is a label name (any
    case); `cursor` is the previous page's `next_cursor`. Only inboxes the user can see
    are ever listed.
    """
    if status is not None and status not in STATUSES:
        raise ConversationError("status", f"status must be one of {', '.join(STATUSES)}")
    limit = max(1, min(int(limit), MAX_PAGE_SIZE))
    query = _rows_query().where(Conversation.inbox_id.in_(_visible_inbox_ids(user)))
    if inbox_id is not None:
        query = query.where(Conversation.inbox_id == inbox_id)
    if status is not None:
        query = query.where(Conversation.status == status)
    if assignee is not None:
        query = query.where(_assignee_filter(user, assignee))
    if q is not None and q.strip():
        query = query.where(_search_filter(q.strip()))
    if label is not None and label.strip():
        query = query.where(_label_filter(label))
    if cursor:
        query = query.where(before(Conversation.last_activity_at, Conversation.id, cursor))
    query = query.order_by(Conversation.last_activity_at.desc(), Conversation.id.desc())
    found = [ConversationRow(*row) for row in db.session.execute(query.limit(limit + 1)).all()]
    rows = found[:limit]
    next_cursor = None
    if len(found) > limit:
        last = rows[-1].conversation
        next_cursor = encode_cursor(last.last_activity_at, last.id)
    return ConversationPage(rows, next_cursor)


def _visible_inbox_ids(user: User):
    return visible_inboxes_query(user).with_only_columns(Inbox.id).order_by(None).scalar_subquery()


def _rows_query() -> Select:
    return (
        select(Conversation, Contact, User)
        .join(Contact, Contact.id == Conversation.contact_id)
        .outerjoin(User, User.id == Conversation.assignee_id)
    )


def contact_conversations(user: User, contact: Contact) -> list[ConversationRow]:
    """Every conversation of this contact in an inbox the user can see, most recent first."""
    query = (
        _rows_query()
        .where(
            Conversation.contact_id == contact.id,
            Conversation.inbox_id.in_(_visible_inbox_ids(user)),
        )
        .order_by(Conversation.last_activity_at.desc(), Conversation.id.desc())
    )
    return [ConversationRow(*row) for row in db.session.execute(query).all()]


def _assignee_filter(user: User, assignee: str | int):
    if assignee == "me":
        return Conversation.assignee_id == user.id
    if assignee == "unassigned":
        return Conversation.assignee_id.is_(None)
    if isinstance(assignee, str) and assignee.isascii() and assignee.isdigit():
        assignee = int(assignee)  # (isascii: "²" is a digit to isdigit() but not to int())
    if isinstance(assignee, bool) or not isinstance(assignee, int) or not 0 < assignee <= MAX_ID:
        raise ConversationError("assignee", 'assignee must be "me", "unassigned" or a user id')
    return Conversation.assignee_id == assignee


def _label_filter(label: str):
    name = " ".join(label.split()).lower()
    return exists().where(
        ConversationLabel.conversation_id == Conversation.id,
        ConversationLabel.label_id == Label.id,
        Label.name == name,
    )


def _search_filter(q: str):
    pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    in_text = exists().where(
        Message.conversation_id == Conversation.id,
        Message.direction != "activity",
        Message.text_body.ilike(pattern, escape="\\"),
    )
    return or_(
        Conversation.subject.ilike(pattern, escape="\\"),
        Contact.email.ilike(pattern, escape="\\"),
        Contact.name.ilike(pattern, escape="\\"),
        in_text,
    )


def before(moment_column, id_column, cursor: str):
    """The keyset condition "older than the cursor's row" for (moment, id) newest-first
    pages; ties on the moment are broken by id. Raises ConversationError on a bad cursor."""
    at, last_id = decode_cursor(cursor)
    return or_(moment_column < at, and_(moment_column == at, id_column < last_id))


def encode_cursor(last_activity_at: datetime, conversation_id: int) -> str:
    raw = f"{last_activity_at.isoformat()}|{conversation_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, number = raw.partition("|")
        at, conversation_id = datetime.fromisoformat(stamp), int(number)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ConversationError(
            "cursor", "cursor is not valid: pass next_cursor from the previous page"
        ) from None
    if at.tzinfo is None or not 0 < conversation_id <= MAX_ID:
        raise ConversationError("cursor", "cursor is not valid: pass next_cursor unchanged")
    try:
        return at.astimezone(UTC), conversation_id
    except OverflowError:  # a forged stamp at the edge of year 1 or 9999
        raise ConversationError(
            "cursor", "cursor is not valid: pass next_cursor unchanged"
        ) from None
