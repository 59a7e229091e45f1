"""The conversation list: filtering, searching and keyset pages, shared by the web UI and the
JSON API (changing a conversation: services/conversations.py)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Select, and_, exists, or_, select

from extensions import db
from models import (
    Contact,
    Conversation,
    ConversationLabel,
    Inbox,
    InboxMember,
    Label,
    User,
)
from models.conversations import STATUSES
from services import search
from services.access import MEMBER_INBOX_IDS, visible_inboxes_query
from services.conversations import MAX_ID, ConversationError

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100


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
    email and name (substrings) and message text (words, the last a prefix), ignoring case
    (services/search.py); `label` is a label name (any case); `cursor` is the previous
    page's `next_cursor`. Only inboxes the user can see are ever listed.
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
    """Conversations whose subject, contact or message text `q` finds, looked up in the
    full-text indexes (services/search.py says what matches)."""
    return Conversation.id.in_(search.matching_conversations(q))


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


def rows_for(user: User, conversation_ids: list[int]) -> list[ConversationRow]:
    """These conversations as list rows (contact and assignee joined), the ones the user may
    see only, in list order: what an action answers with to redraw its rows at once."""
    if not conversation_ids:
        return []
    query = (
        _rows_query()
        .where(
            Conversation.id.in_(conversation_ids),
            Conversation.inbox_id.in_(_visible_inbox_ids(user)),
        )
        .order_by(Conversation.last_activity_at.desc(), Conversation.id.desc())
    )
    return [ConversationRow(*row) for row in db.session.execute(query).all()]


def next_in_list(user: User, after: Conversation, **criteria) -> Conversation | None:
    """The conversation to open once `after` is done (resolved): the one below it in the list
    with these `criteria` (list_conversations' filters), else the top of that list; None
    when the list holds nothing else. `after` need not match the criteria any more."""
    cursor = encode_cursor(after.last_activity_at, after.id)
    below = list_conversations(user, cursor=cursor, limit=1, **criteria).rows
    if below:
        return below[0].conversation
    top = list_conversations(user, limit=2, **criteria).rows
    return next((r.conversation for r in top if r.conversation.id != after.id), None)


def _assignable(inbox_ids) -> Select:
    members = select(InboxMember.user_id).where(InboxMember.inbox_id.in_(inbox_ids))
    return (
        select(User)
        .where(User.active, or_(User.role == "admin", User.id.in_(members.scalar_subquery())))
        .order_by(User.name)
    )


# Built once (every list page draws the bulk bar); an agent's `user_id` is bound when run.
_ASSIGNABLE_BY_ADMIN = _assignable(select(Inbox.id))
_ASSIGNABLE_BY_MEMBER = _assignable(MEMBER_INBOX_IDS)


def assignable_users(user: User) -> list[User]:
    """Who the list's bulk bar offers to assign to: active admins, and active members of an
    inbox `user` can see (whether each may take a given conversation is still checked per
    conversation, by services/conversations.update_conversation)."""
    if user.is_admin:
        return list(db.session.scalars(_ASSIGNABLE_BY_ADMIN))
    return list(db.session.scalars(_ASSIGNABLE_BY_MEMBER, {"user_id": user.id}))
