"""Auto-assignment: a new conversation goes round robin to the inbox's available members.

"Available" means an active user whose availability is "online"; among those, the member
assigned longest ago (never-assigned members first, then by user id) gets the conversation.

Concurrency: two workers creating conversations in the same inbox at the same moment may
both read the same "longest ago" member and assign it twice. That is accepted: the next
conversation goes to someone else, and the imbalance is one conversation. No row locks are
taken, so delivery never waits on assignment.
"""

from __future__ import annotations

from sqlalchemy import select

from extensions import db
from models import Conversation, Inbox, InboxMember, User, utcnow


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
    return user
