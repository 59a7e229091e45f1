"""Auto-assignment: a new conversation goes round robin to the inbox's available members.

"Available" means an active user whose availability is "online"; among those, the member
assigned longest ago (never-assigned members first, then by user id) gets the conversation.

Concurrency: two workers creating conversations in the same inbox at the same moment may
both read the same "longest ago" member and assign it twice. That is accepted: the next
conversation goes to someone else, and the imbalance is one conversation. No row locks are
taken, so delivery never waits on assignment.
"""

from __future__ import annotations

from sqlalchemy import func, or_, select

from extensions import db
from models import Conversation, Inbox, InboxMember, User, utcnow
from models.enums import NotificationEvent as Event
from models.enums import Role
from services.notifications import events as notifications


def auto_assign(conversation: Conversation, inbox: Inbox) -> User | None:
    """Assign `conversation` to the next available member of `inbox`, if the inbox wants it.

    Adds the activity line in the caller's transaction; the caller commits. Returns the
    assignee, or None when auto-assignment is off or nobody is available.
    """
    if not inbox.auto_assign:
        return None
    found = db.session.execute(
        select(InboxMember, User)
        .join(User, User.id == InboxMember.user_id)
        .where(
            InboxMember.inbox_id == inbox.id,
            User.active.is_(True),
            User.availability == "online",
        )
        .order_by(
            InboxMember.last_assigned_at.is_(None).desc(),
            InboxMember.last_assigned_at.asc(),
            User.id.asc(),
        )
        .limit(1)
    ).first()
    if found is None:
        return None
    member, user = found
    member.last_assigned_at = utcnow()
    conversation.assignee_id = user.id
    db.session.add(conversation.activity(f"Auto-assigned to {user.name}"))
    notifications.record(Event.ASSIGNED, conversation)
    return user


def next_among(inbox: Inbox, user_ids: list[int]) -> User | None:
    """Round robin among chosen people (an automation rule's): the active one, among
    `user_ids`, who may take the inbox's conversations (a member, or an admin) and was
    assigned longest ago (never first, then by user id); availability is not asked, the
    rule's author chose them. A member's turn is InboxMember.last_assigned_at, recorded
    here; an admin outside the inbox has no such row, so their turn is their latest
    conversation of the inbox. Returns None when nobody of them may take it."""
    if not user_ids:
        return None
    latest_conversation = (
        select(func.max(Conversation.created_at))
        .where(Conversation.inbox_id == inbox.id, Conversation.assignee_id == User.id)
        .correlate(User)
        .scalar_subquery()
    )
    turn = func.coalesce(InboxMember.last_assigned_at, latest_conversation)
    found = db.session.execute(
        select(User, InboxMember)
        .outerjoin(
            InboxMember, (InboxMember.user_id == User.id) & (InboxMember.inbox_id == inbox.id)
        )
        .where(
            User.id.in_(user_ids),
            User.active.is_(True),
            or_(InboxMember.user_id.is_not(None), User.role == Role.ADMIN.value),
        )
        .order_by(turn.is_(None).desc(), turn.asc(), User.id.asc())
        .limit(1)
    ).first()
    if found is None:
        return None
    user, member = found
    if member is not None:
        member.last_assigned_at = utcnow()
    return user
