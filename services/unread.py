"""Unread markers: a conversation is unread for an agent until they open it, and again
whenever its last activity moves past the moment they last saw it: a new email, or a
colleague's reply or note (status and assignment changes do not count as new).
One row per (user, conversation), upserted when the thread on an agent's screen asks for
it (a POST from the page, never the GET that drew it) or when they act on the thread."""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from extensions import db
from models import Conversation, ConversationRead, utcnow


def mark_read(conversation: Conversation, user_id: int) -> None:
    """Record that `user_id` has seen the thread as it is now. Commits; concurrent tabs are
    fine (an upsert, never a duplicate-key error)."""
    insert = pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
    now = max(utcnow(), conversation.last_activity_at)
    statement = insert(ConversationRead).values(
        user_id=user_id, conversation_id=conversation.id, read_at=now
    )
    statement = statement.on_conflict_do_update(
        index_elements=["user_id", "conversation_id"], set_={"read_at": now}
    )
    db.session.execute(statement)
    db.session.commit()


_READ_AT = select(ConversationRead.conversation_id, ConversationRead.read_at).where(
    ConversationRead.user_id == bindparam("user_id"),
    ConversationRead.conversation_id.in_(bindparam("ids", expanding=True)),
)  # built once: every list page and poll runs it


def unread_ids(user_id: int, conversations: list[Conversation]) -> set[int]:
    """Which of these conversations changed since `user_id` last looked (or never did)."""
    if not conversations:
        return set()
    seen = dict(
        db.session.execute(
            _READ_AT, {"user_id": user_id, "ids": [c.id for c in conversations]}
        ).all()
    )
    return {c.id for c in conversations if c.id not in seen or seen[c.id] < c.last_activity_at}
