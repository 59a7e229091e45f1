"""Who may see what: admins see every inbox, agents only the inboxes they are members of."""

from __future__ import annotations

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import joinedload

from extensions import db
from models import Conversation, Inbox, InboxMember, User


def visible_inboxes_query(user: User) -> Select:
    query = select(Inbox).order_by(Inbox.name)
    if not user.is_admin:
        query = query.join(InboxMember).where(InboxMember.user_id == user.id)
    return query


# Built once, for the pages every agent loads all day (building a select costs about what
# running a small one does); a statement's `user_id` is bound when it runs.
_ALL_INBOXES = select(Inbox).order_by(Inbox.name)
_MEMBER_INBOXES = (
    select(Inbox)
    .join(InboxMember)
    .where(InboxMember.user_id == bindparam("user_id"))
    .order_by(Inbox.name)
)
MEMBER_INBOX_IDS = select(InboxMember.inbox_id).where(InboxMember.user_id == bindparam("user_id"))


def visible_inboxes(user: User) -> list[Inbox]:
    """The inboxes `user` may see, by name."""
    if user.is_admin:
        return list(db.session.scalars(_ALL_INBOXES))
    return list(db.session.scalars(_MEMBER_INBOXES, {"user_id": user.id}))


def can_view_inbox(user: User, inbox_id: int) -> bool:
    if user.is_admin:
        return True
    member = db.session.get(InboxMember, (inbox_id, user.id))
    return member is not None


# With its inbox, the inbox's aliases (the composer's From choices) and its contact, which
# every page of it shows: one statement, not four (built once, as every thread request runs
# it; loading the aliases lazily cost 0.6 ms of Python for a 0.02 ms statement on SQLite).
_CONVERSATION = (
    select(Conversation)
    .where(Conversation.id == bindparam("conversation_id"))
    .options(
        joinedload(Conversation.inbox).joinedload(Inbox.aliases),
        joinedload(Conversation.contact),
    )
)


def visible_conversation(user: User, conversation_id: int) -> Conversation | None:
    """The conversation if `user` may see it, else None: "not visible" and "not found" are
    one answer, so callers cannot confirm that someone else's conversation exists."""
    found = db.session.execute(_CONVERSATION, {"conversation_id": conversation_id})
    conversation = found.unique().scalar_one_or_none()  # one row per alias
    if conversation is None or not can_view_inbox(user, conversation.inbox_id):
        return None
    return conversation
