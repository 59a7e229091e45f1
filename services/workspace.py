"""What the agent workspace shows, read in as few queries as possible: the sidebar's counts,
a page of the list with its snippets, labels and unread dots, and one thread with the people
in it. The views parse the request and render; these read.

The fingerprints let the list's and the thread's polls answer "nothing changed" without
rendering anything.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import bindparam, case, exists, func, select
from sqlalchemy.orm import joinedload, selectinload

from extensions import db
from models import Conversation, Inbox, InboxMember, Message, Notification, User
from services import list_version, reply_drafts, search
from services.access import visible_inboxes
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


def count_spam(inbox_ids: list[int]) -> int:
    """Conversations in the Spam view of these inboxes (the sidebar's Spam entry)."""
    return db.session.scalar(
        select(func.count(Conversation.id)).where(
            Conversation.status == "spam", Conversation.inbox_id.in_(inbox_ids)
        )
    )


def sidebar_counts(user: User, inboxes: list[Inbox]) -> dict:
    """`count_open` and the Spam view's count, cached in Redis until anything in the lists
    changes (a count over every open conversation is the costliest part of a list page on a
    big mailbox). `version`: the list version they are counted for, read with them."""
    ids = sorted(inbox.id for inbox in inboxes)
    key = f"sidebar:{user.id}:{','.join(map(str, ids))}"
    version, counts = list_version.cached(
        key, lambda: {**count_open(user, ids), "spam": count_spam(ids)}
    )
    counts["per_inbox"] = {int(k): v for k, v in counts["per_inbox"].items()}  # JSON keys
    return {**counts, "version": version}


def sidebar(user: User) -> dict:
    """The user's inboxes with their counts, the labels they may filter by and the list
    version.

    An archived inbox receives nothing more, so it is not offered as a filter (`inboxes`
    holds the others); its conversations still count in Mine, Unassigned and All, whose
    lists still show them, and a link filtering by it still works: `archived_inboxes` lets
    the filter name it when it is the one selected."""
    visible = visible_inboxes(user)
    # Labels are read fresh (one indexed query), never from the counts cache: what a user may
    # see changes with inbox membership, which does not move the list version.
    labels = labels_visible_to(user)
    counts = sidebar_counts(user, visible)
    return {
        "inboxes": [inbox for inbox in visible if inbox.archived_at is None],
        "archived_inboxes": [inbox for inbox in visible if inbox.archived_at is not None],
        "counts": counts,
        "labels": labels,
        # What the list's poll compares (list_views.list_updates): the version the counts are
        # for, read in the same round trip as them.
        "list_version": counts["version"],
    }


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
    # A search shows where it matched (highlighted), else the latest words as always: those
    # read only for the rows without a match (none left: no statement).
    matched = search.snippets(ids, filters["q"] or "")
    return {
        "page": page,
        "snippets": last_snippets([i for i in ids if i not in matched]) | matched,
        "row_labels": labels_for(ids),
        "unread": unread,
        "list_fp": list_fingerprint(page, unread),
    }


# Built once. The latest email or agent reply: an automatic acknowledgement says nothing
# the row should show instead of the customer's words.
_SNIPPETS = select(Message.conversation_id, Message.text_body).where(
    Message.id.in_(
        select(func.max(Message.id))
        .where(
            Message.conversation_id.in_(bindparam("ids", expanding=True)),
            (Message.direction == "incoming")
            | ((Message.direction == "outgoing") & Message.auto_flag.is_(None)),
        )
        .group_by(Message.conversation_id)
    )
)


def last_snippets(conversation_ids: list[int]) -> dict[int, str]:
    """The text of each conversation's latest message or reply, in one query."""
    if not conversation_ids:
        return {}
    rows = db.session.execute(_SNIPPETS, {"ids": list(conversation_ids)}).all()
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


LATEST = 10  # a long thread shows its latest emails, replies and notes


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


def thread_news(
    conversation_id: int, shown: list[Message], page_fp: str, thread_fp: str
) -> tuple[list[Message], str] | None:
    """What a page drawn at `page_fp` lacks (typically the activity line of a change made in
    the thread), and the fingerprint it has once they are appended (`thread_fp`, the thread's
    as just read). `shown` is the thread's latest messages as just read: a long thread's
    earlier ones are not read, so what the page had is checked with one aggregate. None when
    appending is not enough (a message the page shows changed or moved meanwhile, more arrived
    than `shown` holds, or `page_fp` is no fingerprint): the page needs the whole list."""
    try:
        last_id = int(page_fp.split("-")[1])
        total = int(thread_fp.split("-")[0])
    except (IndexError, ValueError):
        return None
    count, top, changed = db.session.execute(
        select(func.count(Message.id), func.max(Message.id), func.max(Message.updated_at)).where(
            Message.conversation_id == conversation_id, Message.id <= last_id
        )
    ).one()
    news = [m for m in shown if m.id > last_id]
    if _fingerprint(count, top, changed) != page_fp or count + len(news) != total:
        return None
    return news, thread_fp


def thread_messages(conversation_id: int, before: int | None = None) -> list[Message]:
    """Every message of a thread in order (or those older than message `before`), with their
    attachments in one query, not one per message (a 500-message thread made 479 queries);
    the pages and the API read it alike."""
    query = select(Message).where(Message.conversation_id == conversation_id)
    if before is not None:
        query = query.where(Message.id < before)
    return list(
        db.session.scalars(query.order_by(Message.id).options(selectinload(Message.attachments)))
    )


def _fold_point(conversation_id: int, latest: int = LATEST):
    """The newest email, reply or note beyond the `latest` ones (activity lines do not count):
    it and everything before it are folded away. NULL when the thread shows everything."""
    return (
        select(Message.id)
        .where(Message.conversation_id == conversation_id, Message.direction != "activity")
        .order_by(Message.id.desc())
        .offset(latest)
        .limit(1)
    )


def earlier_start(conversation_id: int, latest: int = LATEST) -> int | None:
    """The first message a long thread shows: after the newest email, reply or note beyond
    the `latest` ones. None when the thread shows everything."""
    hidden = db.session.scalar(_fold_point(conversation_id, latest))
    return None if hidden is None else hidden + 1


# The thread's statements, built once: constructing a select (and its cache key) cost more
# than running it (0.5 ms of 1.3 for the aggregate on SQLite); each run binds the ids.
_CONVERSATION = bindparam("conversation_id")
_FOLD = func.coalesce(_fold_point(_CONVERSATION).scalar_subquery(), 0)
_MESSAGES = (
    select(Message)
    .where(Message.conversation_id == _CONVERSATION)
    .order_by(Message.id)
    .options(joinedload(Message.attachments))
)
_LATEST_MESSAGES = _MESSAGES.where(Message.id > _FOLD)
_TOTALS = select(
    func.count(Message.id),
    func.max(Message.id),
    func.max(Message.updated_at),
    func.sum(case(((Message.id <= _FOLD) & (Message.direction != "activity"), 1), else_=0)),
).where(Message.conversation_id == _CONVERSATION)
# …and, for the agent drawing it, whether they have unread notifications about it
# (notifications.events.has_unread): one statement fewer per page.
_TOTALS_FOR_AGENT = _TOTALS.add_columns(
    exists()
    .where(
        Notification.user_id == bindparam("user_id"),
        Notification.conversation_id == _CONVERSATION,
        Notification.read_at.is_(None),
    )
    .correlate(None)
)
_ASSIGNABLE = User.active & (InboxMember.user_id.is_not(None) | (User.role == "admin"))
_PEOPLE = (
    select(User, _ASSIGNABLE.label("assignable"))
    .outerjoin(
        InboxMember,
        (InboxMember.user_id == User.id) & (InboxMember.inbox_id == bindparam("inbox_id")),
    )
    .where(_ASSIGNABLE | User.id.in_(bindparam("senders", expanding=True)))
    .order_by(User.name)
)


def thread(conversation: Conversation, show_all: bool = False, agent_id: int | None = None) -> dict:
    """A thread's latest messages (all with `show_all`), how many earlier ones are folded
    away, their senders, the contact and who it can be assigned to. Four statements, whatever
    the thread's size: the messages with their attachments (the fold point a subquery), one
    aggregate (fingerprint and folded count), the people (senders and who may be assigned)
    and the drafts on it; the conversation came with its inbox and contact
    (services.access.visible_conversation). With `agent_id`, the aggregate also answers
    whether that agent has unread notifications about it (`unread_notifications`)."""
    ids = {"conversation_id": conversation.id}
    messages = list(
        db.session.scalars(_MESSAGES if show_all else _LATEST_MESSAGES, ids).unique().all()
    )
    extra = {}
    if agent_id is None:
        count, last_id, changed, earlier = db.session.execute(_TOTALS, ids).one()
    else:
        count, last_id, changed, earlier, unread = db.session.execute(
            _TOTALS_FOR_AGENT, {**ids, "user_id": agent_id}
        ).one()
        extra["unread_notifications"] = bool(unread)
    if show_all:
        earlier = 0
    users, members = people(conversation, messages)
    start = messages[0].id if earlier and messages else None
    return {
        "conversation": conversation,
        "inbox": conversation.inbox,
        "contact": conversation.contact,
        "messages": messages,
        "users": users,
        "members": members,
        "assignee": users.get(conversation.assignee_id)
        or (db.session.get(User, conversation.assignee_id) if conversation.assignee_id else None),
        "drafts": reply_drafts.on_conversation(conversation.id),
        "fingerprint": _fingerprint(count, last_id, changed),
        # The earlier emails, replies and notes folded away (their activity lines too), for
        # "N earlier messages": thread_messages(before=start) loads them on demand.
        "earlier": {"count": earlier, "before": start} if earlier else None,
        **extra,
    }


def people(conversation: Conversation, messages: list[Message]) -> tuple[dict, list[User]]:
    """In one query: the agents who wrote these replies and notes (by id), and who the
    conversation can be assigned to (active members of its inbox and admins, by name)."""
    sender_ids = {m.sender_user_id for m in messages if m.sender_user_id}
    rows = db.session.execute(
        _PEOPLE, {"inbox_id": conversation.inbox_id, "senders": list(sender_ids)}
    ).all()
    users = {user.id: user for user, _ in rows if user.id in sender_ids}
    return users, [user for user, assignable in rows if assignable]


def senders(messages: list[Message]) -> dict[int, User]:
    """The agents who wrote these replies and notes, by id, in one query."""
    user_ids = {m.sender_user_id for m in messages if m.sender_user_id}
    if not user_ids:
        return {}
    return {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(user_ids)))}
