"""What the agent workspace shows, read in as few queries as possible: the sidebar's counts,
a page of the list with its snippets, labels and unread dots, and one thread with the people
in it. The views parse the request and render; these read.

The fingerprints let the list's and the thread's polls answer "nothing changed" without
rendering anything.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import selectinload

from extensions import db
from models import Contact, Conversation, Inbox, InboxMember, Message, User
from services import list_version
from services.access import visible_inboxes_query
from services.conversation_list import ConversationPage, list_conversations
from services.labels import labels_for, labels_visible_to
from services.unread import unread_ids


def count_open(user: User, inbox_ids: list[int]) -> dict:
    """Open conversations per inbox, in total, assigned to `user` and unassigned: the one
    grouped query behind the sidebar, the inbox overview and the API's inbox list."""
    rows = db.session.execute(
        select(
            Conversation.inbox_id,
            func.count(Conversation.id),
            func.sum(case((Conversation.assignee_id == user.id, 1), else_=0)),
            func.sum(case((Conversation.assignee_id.is_(None), 1), else_=0)),
        )
        .where(Conversation.status == "open", Conversation.inbox_id.in_(inbox_ids))
        .group_by(Conversation.inbox_id)
    ).all()
    per_inbox = {inbox_id: count for inbox_id, count, _, _ in rows}
    return {
        "per_inbox": per_inbox,
        "all": sum(per_inbox.values()),
        "mine": sum(mine or 0 for _, _, mine, _ in rows),
        "unassigned": sum(free or 0 for _, _, _, free in rows),
    }


def sidebar_counts(user: User, inboxes: list[Inbox]) -> dict:
    """`count_open` cached in Redis until anything in the lists changes (a count over every
    open conversation is the costliest part of a list page on a big mailbox)."""
    ids = sorted(inbox.id for inbox in inboxes)
    key = f"sidebar:{user.id}:{','.join(map(str, ids))}"
    counts = list_version.cached(key, lambda: count_open(user, ids))
    counts["per_inbox"] = {int(k): v for k, v in counts["per_inbox"].items()}  # JSON keys
    return counts


def sidebar(user: User) -> dict:
    """The user's inboxes with their counts, and the labels they may filter by."""
    inboxes = db.session.scalars(visible_inboxes_query(user)).all()
    # Labels are read fresh (one indexed query), never from the counts cache: what a user may
    # see changes with inbox membership, which does not move the list version.
    labels = labels_visible_to(user)
    return {"inboxes": inboxes, "counts": sidebar_counts(user, inboxes), "labels": labels}


def list_page(user: User, filters: dict, cursor: str | None = None) -> dict:
    """One page of the list for these filters, with what its rows show. Raises
    ConversationError for a cursor that does not fit the filters."""
    page = list_conversations(
        user,
        inbox_id=filters["inbox_id"],
        status=filters["status"],
        assignee=None if filters["assignee"] == "all" else filters["assignee"],
        q=filters["q"] or None,
        cursor=cursor,
        label=filters["label"] or None,
    )
    conversations = [row.conversation for row in page.rows]
    ids = [c.id for c in conversations]
    unread = unread_ids(user.id, conversations)
    return {
        "page": page,
        "snippets": last_snippets(ids),
        "row_labels": labels_for(ids),
        "unread": unread,
        "list_fp": list_fingerprint(page, unread),
    }


def last_snippets(conversation_ids: list[int]) -> dict[int, str]:
    """The text of each conversation's latest message or reply, in one query."""
    if not conversation_ids:
        return {}
    latest = (
        select(func.max(Message.id))
        .where(
            Message.conversation_id.in_(conversation_ids),
            Message.direction.in_(("incoming", "outgoing")),
        )
        .group_by(Message.conversation_id)
    )
    rows = db.session.execute(
        select(Message.conversation_id, Message.text_body).where(Message.id.in_(latest))
    ).all()
    return {cid: " ".join((text or "").split())[:140] for cid, text in rows}


def list_fingerprint(page: ConversationPage, unread: set[int]) -> str:
    """What the first page shows, minus the clock: the poll re-renders only when it moved."""
    parts = [
        f"{r.conversation.id}:{r.conversation.last_activity_at.timestamp()}:"
        f"{r.conversation.status}:{r.conversation.assignee_id}:{int(r.conversation.id in unread)}"
        for r in page.rows
    ]
    parts.append(str(bool(page.next_cursor)))
    return hashlib.sha1("|".join(parts).encode(), usedforsecurity=False).hexdigest()[:16]


def thread_fingerprint(conversation_id: int) -> str:
    """Changes when a message arrives or any message changes (delivery state); one
    aggregate over the (conversation_id, id) index."""
    count, last_id, changed = db.session.execute(
        select(func.count(Message.id), func.max(Message.id), func.max(Message.updated_at)).where(
            Message.conversation_id == conversation_id
        )
    ).one()
    return _fingerprint(count, last_id, changed)


def _fingerprint(count: int, last_id: int | None, changed: datetime | None) -> str:
    stamp = changed.timestamp() if changed is not None else 0
    return f"{count}-{last_id or 0}-{stamp:.6f}"


def _fingerprint_of(messages: list[Message]) -> str:
    """thread_fingerprint of exactly these messages, without asking the database again."""
    return _fingerprint(
        len(messages),
        max((m.id for m in messages), default=None),
        max((m.updated_at for m in messages), default=None),
    )


def thread_news(messages: list[Message], page_fp: str) -> tuple[list[Message], str] | None:
    """What a page drawn at `page_fp` lacks of `messages` (the thread as just read), and the
    fingerprint it has once they are appended: typically the activity line of a change made
    in the thread. None when appending is not enough (a message the page shows changed or
    moved meanwhile, or `page_fp` is no fingerprint): the page needs the whole list again."""
    try:
        last_id = int(page_fp.split("-")[1])
    except (IndexError, ValueError):
        return None
    if _fingerprint_of([m for m in messages if m.id <= last_id]) != page_fp:
        return None
    return [m for m in messages if m.id > last_id], _fingerprint_of(messages)


def thread_messages(conversation_id: int) -> list[Message]:
    """Every message of a thread in order, with their attachments in one query, not one per
    message (a 500-message thread made 479 queries); the pages and the API read it alike."""
    return list(
        db.session.scalars(
            select(Message)
            .where(Message.conversation_id == conversation_id)
            .order_by(Message.id)
            .options(selectinload(Message.attachments))
        )
    )


def thread(conversation: Conversation) -> dict:
    """A thread's messages, their senders, the contact and who it can be assigned to."""
    messages = thread_messages(conversation.id)
    user_ids = {m.sender_user_id for m in messages if m.sender_user_id}
    users = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(user_ids)))}
    contact = db.session.get(Contact, conversation.contact_id)
    members = db.session.scalars(
        select(User)
        .outerjoin(
            InboxMember,
            (InboxMember.user_id == User.id) & (InboxMember.inbox_id == conversation.inbox_id),
        )
        .where(User.active, (InboxMember.user_id.is_not(None)) | (User.role == "admin"))
        .order_by(User.name)
    ).all()
    return {
        "conversation": conversation,
        "inbox": db.session.get(Inbox, conversation.inbox_id),
        "contact": contact,
        "messages": messages,
        "users": users,
        "members": members,
        "assignee": users.get(conversation.assignee_id)
        or (db.session.get(User, conversation.assignee_id) if conversation.assignee_id else None),
        "fingerprint": thread_fingerprint(conversation.id),
    }
