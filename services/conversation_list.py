"""The conversation list: filtering, searching and keyset pages, shared by the web UI and the
JSON API (changing a conversation: services/conversations.py)."""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Select, and_, exists, literal, literal_column, or_, select

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
    """The user's conversations, most recent activity first (a search: in the tiers of
    services/search.py, subject and contact matches first), one keyset page at a time.

    `assignee` is "me", "unassigned" or a user id; `q` searches subject, the contact's
    email and name (substrings) and message text (words, the last a prefix), ignoring case
    (services/search.py), and lists the matches in tiers (_search_page); `label` is a label name
    (any case); `cursor` is the previous page's `next_cursor`. Only inboxes the user can see
    are ever listed.
    """
    if status is not None and status not in STATUSES:
        raise ConversationError("status", f"status must be one of {', '.join(STATUSES)}")
    limit = max(1, min(int(limit), MAX_PAGE_SIZE))
    if q is not None and q.strip():

        def filtered(by_index: bool) -> Select:
            return _filtered(user, inbox_id, status, assignee, label, by_index)

        return _search_page(filtered, q.strip(), status, cursor, limit)
    query = _filtered(user, inbox_id, status, assignee, label)
    if cursor:
        query = query.where(_after(_ACTIVITY_ORDER, decode_keys(cursor, 2)))
    query = query.order_by(*_order_by(_ACTIVITY_ORDER))
    return _page(db.session.execute(query.limit(limit + 1)).all(), limit)


def _page(found: list, limit: int) -> ConversationPage:
    """A page of `limit` rows out of `found` (one more when there is a next page): each
    (conversation, contact, assignee, *ranks)."""
    rows = [ConversationRow(*row[:3]) for row in found[:limit]]
    next_cursor = None
    if len(found) > limit:
        last = found[limit - 1]
        conversation, ranks = last[0], tuple(last[3:])  # the tier and best, when searching
        next_cursor = encode_keys((*ranks, conversation.last_activity_at, conversation.id))
    return ConversationPage(rows, next_cursor)


# A search's tiers, listed one after the other (each a keyset walk of its own):
HEAD = 0  # the subject or the contact matches (search.Head), by latest activity
RANKED = 1  # else a message among the latest matches (search.Window), by its rank
OLDER = 2  # else an older matching message (search.older_matches), by latest activity


def _search_page(
    filtered, q: str, status: str | None, cursor: str | None, limit: int
) -> ConversationPage:
    """A search's page: the conversations of each tier in turn (HEAD, RANKED, OLDER), the next
    tier looked at only once a page has room left. Each tier is read with LIMIT page + 1 in
    an order its query can stop early in: a common word or name fills its first pages from
    the list's own index, newest first, without gathering every match; and the message
    window is looked up only when the subject and contact matches run out. `filtered(by_index)`
    is the list query with its filters."""
    after = decode_keys(cursor, 4) if cursor else None
    if after is not None and after[0] not in (HEAD, RANKED, OLDER):
        raise _bad_cursor("cursor is not valid: pass next_cursor unchanged")
    sqlite = db.engine.dialect.name == "sqlite"
    head = search.Head(q, HEAD_FEW)
    window = search.Window(q)
    found: list = []
    if after is None or after[0] == HEAD:
        found = _head_tier(filtered, head, status, after, limit)
    for tier in (RANKED, OLDER):
        if len(found) > limit or (after is not None and tier < after[0]):
            continue
        query, order = _tier(tier, filtered, sqlite, head.condition(), window, q)
        if query is None:
            continue
        if after is not None and tier == after[0]:
            query = query.where(_after(order, after[-len(order) :]))
        query = query.order_by(*_order_by(order)).limit(limit + 1 - len(found))
        found += db.session.execute(query).all()
    return _page(found, limit)


# A subject or contact found this few times is gathered by id and sorted, in one statement;
# found more often, it is walked (_walk_then_gather).
HEAD_FEW = 2000
# How many of the newest conversations of the status a walk goes through, newest first,
# before it gathers the matches older than those: a page of a subject or name in one
# conversation in 40 is found within them, and one the filters leave few of costs no more.
HEAD_WALK = 1000


def _head_tier(filtered, head, status: str | None, after, limit: int) -> list:
    """Up to `limit` + 1 rows of the first tier (after the cursor's values `after`), newest
    first: a few matches gathered by id and sorted, many walked (_walk_then_gather)."""
    sqlite = db.engine.dialect.name == "sqlite"
    keyset = _after(_ACTIVITY_ORDER, after[2:]) if after is not None else None
    if head.few:
        parts = [(not sqlite, head.condition())]
    else:
        parts = _walk_then_gather(head, status, after, sqlite)
    found: list = []
    for by_index, *part in parts:
        query = filtered(by_index).where(*part)
        if keyset is not None:
            query = query.where(keyset)
        query = query.add_columns(literal(HEAD), literal(NO_MESSAGE_RANK))
        query = query.order_by(*_order_by(_ACTIVITY_ORDER)).limit(limit + 1 - len(found))
        found += db.session.execute(query).all()
        if len(found) > limit:
            break
    return found


def _walk_then_gather(head, status: str | None, after, sqlite: bool) -> list:
    """The first tier of a common word or name in two parts, each (by_index, *conditions):
    the newest HEAD_WALK conversations of the status walked through the list's own index and
    tested one by one (a page fills early and the walk stops there), then, only if the page
    is not full yet, the matches older than those, gathered from the subject and contact
    indexes and sorted (a walk through every conversation would take long where the filters
    leave few of them). The parts split at one moment: they neither overlap nor miss one.
    Without a status (no index walks the list in order) the tier is gathered whole."""
    gathered = head.condition(walk=False)
    if status is None:
        return [(not sqlite, gathered)]
    newest = select(Conversation.last_activity_at).where(Conversation.status == status)
    if after is not None:
        newest = newest.where(Conversation.last_activity_at <= after[2])
    # The status alone, not every filter: the index answers it without reading a row, and
    # any moment splits the tier correctly (this one bounds the walk). Looked up on its own,
    # so that the planner weighs both parts knowing where they split.
    floor = db.session.scalar(
        newest.order_by(Conversation.last_activity_at.desc()).offset(HEAD_WALK - 1).limit(1)
    )
    if floor is None:  # fewer conversations than a walk: walk them all
        return [(True, head.condition())]
    return [
        (True, head.condition(), Conversation.last_activity_at >= floor),
        (not sqlite, gathered, Conversation.last_activity_at < floor),
    ]


def _tier(tier: int, filtered, sqlite: bool, head, window, q: str) -> tuple:
    """A search tier's query (RANKED, OLDER), its rows (conversation, contact, assignee,
    tier, best), and its order; (None, None) when the tier is empty."""
    ranked = window.ranked()
    if tier == RANKED:
        if ranked is None:
            return None, None
        # SQLite: conversations looked up by id among the window's (the IN), not every
        # conversation the filters allow walked through their index and each looked up
        # among them, as its planner chose for the join alone.
        query = (
            filtered(not sqlite)
            .join(ranked, ranked.c.conversation_id == Conversation.id)
            .where(Conversation.id.in_(select(ranked.c.conversation_id)), ~head)
            .add_columns(literal(RANKED), ranked.c.best)
        )
        return query, [(ranked.c.best, False), *_ACTIVITY_ORDER]
    if not window.is_full():
        return None, None  # every matching message is in the window
    query = filtered(not sqlite).where(
        search.older_matches(q), Conversation.id.not_in(select(ranked.c.conversation_id)), ~head
    )
    return query.add_columns(literal(OLDER), literal(NO_MESSAGE_RANK)), _ACTIVITY_ORDER


def _order_by(order: list) -> list:
    return [key.desc() if desc else key for key, desc in order]


def _filtered(user: User, inbox_id, status, assignee, label, by_index: bool = True) -> Select:
    """The list query with the filters applied; `by_index=False` keeps SQLite from using an
    index of conversations for them (a search starts from its matches instead)."""
    col = _as_is if by_index else _unindexed
    inbox = col(Conversation.inbox_id)
    query = _rows_query().where(inbox.in_(_visible_inbox_ids(user)))
    if inbox_id is not None:
        query = query.where(inbox == inbox_id)
    if status is not None:
        query = query.where(col(Conversation.status) == status)
    if assignee is not None:
        query = query.where(_assignee_filter(user, assignee, col(Conversation.assignee_id)))
    if label is not None and label.strip():
        query = query.where(_label_filter(label))
    return query


def _as_is(column):
    return column


def _unindexed(column):
    """The column as an expression no index covers (SQLite: +column), so that SQLite's
    planner, which without ANALYZE's statistics takes an equality on an index for a handful
    of rows, does not walk every open conversation of the inboxes to look each one up among
    a search's matches: it starts from the matches and finds their conversations by id."""
    return literal_column(f"+{column.table.name}.{column.name}", column.type)


# A list order: its sort keys, each (expression, descending), the last two always the latest
# activity and the id (newest first), so that every row has its own place.
_ACTIVITY_ORDER = [(Conversation.last_activity_at, True), (Conversation.id, True)]
NO_MESSAGE_RANK = 1.0  # the cursor's rank in the tiers listed by activity alone


def _after(order: list, values: tuple):
    """The keyset condition "after the row with these sort values" in `order`."""
    (key, desc), value = order[-1], values[-1]
    condition = key < value if desc else key > value
    for (key, desc), value in zip(reversed(order[:-1]), reversed(values[:-1]), strict=True):
        condition = or_(key < value if desc else key > value, and_(key == value, condition))
    return condition


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


def _assignee_filter(user: User, assignee: str | int, column=Conversation.assignee_id):
    if assignee == "me":
        return column == user.id
    if assignee == "unassigned":
        return column.is_(None)
    if isinstance(assignee, str) and assignee.isascii() and assignee.isdigit():
        assignee = int(assignee)  # (isascii: "²" is a digit to isdigit() but not to int())
    if isinstance(assignee, bool) or not isinstance(assignee, int) or not 0 < assignee <= MAX_ID:
        raise ConversationError("assignee", 'assignee must be "me", "unassigned" or a user id')
    return column == assignee


def _label_filter(label: str):
    name = " ".join(label.split()).lower()
    return exists().where(
        ConversationLabel.conversation_id == Conversation.id,
        ConversationLabel.label_id == Label.id,
        Label.name == name,
    )


def before(moment_column, id_column, cursor: str):
    """The keyset condition "older than the cursor's row" for (moment, id) newest-first
    pages; ties on the moment are broken by id. Raises ConversationError on a bad cursor."""
    at, last_id = decode_cursor(cursor)
    return or_(moment_column < at, and_(moment_column == at, id_column < last_id))


def encode_cursor(last_activity_at: datetime, conversation_id: int) -> str:
    return _encode(f"{last_activity_at.isoformat()}|{conversation_id}")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    return _moment_and_id(_decode(cursor))


def encode_keys(values: tuple) -> str:
    """A cursor for a row's sort values: (moment, id), or (head, best, moment, id) for a
    ranked search, whose rank is written exactly (repr of a float reads back the same)."""
    *ranks, moment, conversation_id = values
    tail = f"{moment.isoformat()}|{conversation_id}"
    return _encode("|".join([*(repr(float(r)) if r is not None else "" for r in ranks), tail]))


def decode_keys(cursor: str, count: int) -> tuple:
    """encode_keys' values back, `count` of them (the order the cursor is used with: a
    ranked cursor does not fit an unranked list, nor the other way round)."""
    raw = _decode(cursor)
    parts = raw.split("|")
    if len(parts) != count:
        raise _bad_cursor("cursor does not fit this list: pass next_cursor from the same list")
    ranks = []
    for part in parts[:-2]:
        try:
            value = float(part)
        except ValueError:
            raise _bad_cursor("cursor is not valid: pass next_cursor unchanged") from None
        if not math.isfinite(value):
            raise _bad_cursor("cursor is not valid: pass next_cursor unchanged")
        ranks.append(value)
    return (*ranks, *_moment_and_id("|".join(parts[-2:])))


def _encode(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _bad_cursor("cursor is not valid: pass next_cursor from the previous page") from None


def _bad_cursor(message: str) -> ConversationError:
    return ConversationError("cursor", message)


def _moment_and_id(raw: str) -> tuple[datetime, int]:
    try:
        stamp, _, number = raw.partition("|")
        at, conversation_id = datetime.fromisoformat(stamp), int(number)
    except ValueError:
        raise _bad_cursor("cursor is not valid: pass next_cursor from the previous page") from None
    if at.tzinfo is None or not 0 < conversation_id <= MAX_ID:
        raise _bad_cursor("cursor is not valid: pass next_cursor unchanged")
    try:
        return at.astimezone(UTC), conversation_id
    except OverflowError:  # a forged stamp at the edge of year 1 or 9999
        raise _bad_cursor("cursor is not valid: pass next_cursor unchanged") from None


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
    when the list holds nothing else. `after` need not match the criteria any more (nor
    the search: then there is no place below it, and the top of the list is next)."""
    ranks = _search_ranks(after.id, criteria.get("q"))
    if ranks is not None:
        cursor = encode_keys((*ranks, after.last_activity_at, after.id))
        below = list_conversations(user, cursor=cursor, limit=1, **criteria).rows
        if below:
            return below[0].conversation
    top = list_conversations(user, limit=2, **criteria).rows
    return next((r.conversation for r in top if r.conversation.id != after.id), None)


def _search_ranks(conversation_id: int, q: str | None) -> tuple | None:
    """The sort values ahead of (moment, id) that place this conversation in the list for
    `q` (its tier and rank): none without a search, None when the search does not find it."""
    if q is None or not q.strip():
        return ()
    q = q.strip()
    one = select(Conversation.id).where(Conversation.id == conversation_id)
    if db.session.scalar(one.where(search.Head(q, HEAD_FEW).condition())) is not None:
        return (HEAD, NO_MESSAGE_RANK)
    ranked = search.Window(q).ranked()
    if ranked is not None:
        best = db.session.scalar(
            select(ranked.c.best).where(ranked.c.conversation_id == conversation_id)
        )
        if best is not None:
            return (RANKED, best)
    older = db.session.scalar(one.where(search.older_matches(q)))
    return (OLDER, NO_MESSAGE_RANK) if older is not None else None


def _assignable(inbox_ids) -> Select:
    members = select(InboxMember.user_id).where(InboxMember.inbox_id.in_(inbox_ids))
    return (  # the id and name alone: rows, not users to build (read-only, on every list page)
        select(User.id, User.name)
        .where(User.active, or_(User.role == "admin", User.id.in_(members.scalar_subquery())))
        .order_by(User.name)
    )


# Built once (every list page draws the bulk bar); an agent's `user_id` is bound when run.
_ASSIGNABLE_BY_ADMIN = _assignable(select(Inbox.id))
_ASSIGNABLE_BY_MEMBER = _assignable(MEMBER_INBOX_IDS)


def assignable_users(user: User) -> list:
    """Who the list's bulk bar offers to assign to (rows with their id and name, by name):
    active admins, and active members of an inbox `user` can see (whether each may take a
    given conversation is still checked per conversation, by
    services/conversations.update_conversation)."""
    if user.is_admin:
        return list(db.session.execute(_ASSIGNABLE_BY_ADMIN))
    return list(db.session.execute(_ASSIGNABLE_BY_MEMBER, {"user_id": user.id}))
