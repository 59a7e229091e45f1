"""Who may see what: admins see every inbox, agents only the inboxes they are members of."""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import joinedload

from extensions import db
from models import Conversation, Inbox, InboxMember, User


def visible_inboxes_query(user: User) -> Select:
    query = select(Inbox).order_by(Inbox.name)
    if not user.is_admin:
        query = query.join(InboxMember).where(InboxMember.user_id == user.id)
    return query


def can_view_inbox(user: User, inbox_id: int) -> bool:
    if user.is_admin:
        return True
    member = db.session.get(InboxMember, (inbox_id, user.id))
    return member is not None


def visible_conversation(user: User, conversation_id: int) -> Conversation | None:
    """The conversation if `user` may see it, else None: "not visible" and "not found" are
    one answer, so callers cannot confirm that someone else's conversation exists."""
    # With its inbox and contact, which every page of it shows: one statement, not three.
    conversation = db.session.get(
        Conversation,
        conversation_id,
        options=[joinedload(Conversation.inbox), joinedload(Conversation.contact)],
    )
    if conversation is None or not can_view_inbox(user, conversation.inbox_id):
        return None
    return conversation
