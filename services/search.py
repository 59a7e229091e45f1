"""The list's search on an index instead of a scan of every message (issue 20).

What a search matches, on both databases:
- the subject, the contact's name and the contact's email: any substring, ignoring case, as
  the LIKE search always did (SQLite: FTS5 trigram tables; PostgreSQL: pg_trgm indexes that
  its ILIKE uses). A search shorter than 3 characters has no trigram to look up and scans
  these two small tables with LIKE, as before;
- message text (every message but activity lines): the search's words as a phrase, the last
  one a prefix ("body text 7" finds "body text 7" and "body text 71"; "parc" finds "parcel").
  A word is a run of letters and digits: "100%" looks for the word 100, "eve@shop" for
  "eve" followed by "shop*". Unlike LIKE, it does not find the middle of a word ("arcel"
  no longer finds "parcel"): a word index cannot, and a trigram index over a million
  messages is several times their size and slower on common trigrams.
  (SQLite: an FTS5 unicode61 table; PostgreSQL: a GIN index on to_tsvector('simple', …)
  of the text with its punctuation read as spaces, so both split words alike.)

The indexes are built and kept in step by migration 0017 (SQLite triggers in the writing
transaction; PostgreSQL expression indexes): nothing here writes.

A search lists its conversations in three tiers, one after the other, each in an order its
query can stop in once a page is full (services/conversation_list.py, _search_page; the
cursor carries the tier, the rank and the latest activity and id):
1. those whose subject or contact matches (Head), by latest activity, newest first: a
   common word or name is walked through the list's own index and fills a page early,
   a rare one is gathered by id and sorted;
2. else those with one of the latest WINDOW matching messages (Window), best first by the
   rank of their best one among them (bm25 / ts_rank), then by latest activity;
3. else those with an older matching message (older_matches), by latest activity.
So a search never ranks or sorts every match: only the latest WINDOW messages are ranked,
and the window is looked up only once a page reaches the second tier. SQLite's FTS5 hands
them over newest first inside the list query; on PostgreSQL they are looked up first, in
statements of their own, among the newest ids (PG_SPANS) before all of them (_pg_window).

Each matching conversation's row shows the best-ranked matching message's words around the
match (bm25 / ts_rank), highlighted: `snippets` answers HTML that is escaped first and only
then marked, since the database's snippet and headline functions return the user's text
with markers inserted, not HTML.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterator
from contextlib import contextmanager

from markupsafe import Markup, escape
from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Select,
    bindparam,
    cast,
    column,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
    true,
    union,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY

from extensions import db
from models import Contact, Conversation, Message

TRIGRAM = 3  # characters in the shortest substring the trigram indexes can look up
SNIPPET_WORDS = 12
PG_TEXT_LIMIT = 100_000  # characters of a message's text PostgreSQL indexes (tsvector's cap)

# Read as spaces in message text before PostgreSQL splits it into words: ASCII punctuation
# and the common typographic marks and spaces (its parser would otherwise keep an email
# address, a path or a hyphenated word as one token, and, in the C locale, glue a word to
# any non-ASCII character beside it). The same string is in migration 0017's index.
PG_PUNCTUATION = string.punctuation + "‘’‚‛“”„‟«»‹›–—―‐…·•¡¿§¶†‡′″\u00a0\u2009\u200b\u202f\u3000"


def pg_string(value: str) -> str:
    """A PostgreSQL string literal of Unicode escapes only: no quote, percent sign or colon
    for any layer between here and the server to read as syntax."""
    return "U&'" + "".join(f"\\{ord(c):04x}" for c in value) + "'"


def pg_message_words(text_column: str) -> str:
    """The words of a message's text as the index holds them (migration 0017 builds its
    index on this expression; the planner uses it only for the very same expression)."""
    return (
        f"to_tsvector('simple'::regconfig, translate(left(coalesce({text_column}, ''), "
        f"{PG_TEXT_LIMIT}), {pg_string(PG_PUNCTUATION)}, {pg_string(' ' * len(PG_PUNCTUATION))}))"
    )


PG_MESSAGE_WORDS_SQL = pg_message_words("messages.text_body")
_PG_MESSAGE_WORDS = literal_column(PG_MESSAGE_WORDS_SQL)

# The punctuation as one regular expression bracket: ] \ ^ - [ escaped, the rest as they are.
_PG_PUNCTUATION_CLASS = (
    "[" + "".join("\\" + c if c in "]\\^-[" else c for c in PG_PUNCTUATION) + "]"
)


def pg_computed_words(text_column: str) -> str:
    """The same words as pg_message_words, for a message whose words are computed, not
    looked up (the rank of the window, the snippets): the punctuation replaced by one
    regexp_replace, not translate(), which looks each character up in the 60 marks one by
    one (~45 µs for a 100-character message, against ~2 µs). Not for a lookup: the index is
    on pg_message_words' expression, and the planner uses it only for that very one."""
    return (
        f"to_tsvector('simple'::regconfig, regexp_replace(left(coalesce({text_column}, ''), "
        f"{PG_TEXT_LIMIT}), {pg_string(_PG_PUNCTUATION_CLASS)}, ' ', 'g'))"
    )


# SQLite's FTS5 tables (migration 0017): rowid is the indexed row's id.
_messages_fts = table("messages_fts", column("rowid"), column("text_body"))
_conversations_fts = table("conversations_fts", column("rowid"), column("subject"))
_contacts_fts = table("contacts_fts", column("rowid"), column("name"), column("email"))

# A literal, not a bound value: PostgreSQL uses a partial index only for a query whose
# condition implies the index's own, and cannot tell that of a parameter in a generic plan.
_SEARCHED = Message.direction != literal_column("'activity'")

_START, _STOP = "\ue000", "\ue001"  # private-use characters: the match markers, never HTML


def words(q: str) -> list[str]:
    """The search's words: runs of letters and digits (what both indexes call a word)."""
    return re.findall(r"[^\W_]+", q.translate(_PG_BLANKS).lower())


_PG_BLANKS = str.maketrans(PG_PUNCTUATION, " " * len(PG_PUNCTUATION))


def matching_conversations(q: str) -> Select:
    """The ids of the conversations `q` finds (subject, contact, message text): for
    `Conversation.id.in_(…)`, so the list's own filters, order and pages apply as always."""
    sqlite = db.engine.dialect.name == "sqlite"
    parts = _head_matches(q, sqlite)
    found = words(q)
    if found:
        parts.append(_message_matches(found, sqlite).with_only_columns(Message.conversation_id))
    # Never correlated: the list query around it selects from conversations and contacts too.
    return union(*(part.correlate(None) for part in parts))


# How many of the latest matching messages a search ranks. Ranking every match would cost
# a bm25 / ts_rank per match (a common word is in tens of thousands of messages: hundreds of
# milliseconds); the latest few hundred rank in a few, and fill the first pages.
WINDOW = 300


class Head:
    """The first tier's matches: the conversations whose subject `q` finds and those of the
    contacts it finds. Each of the two is looked up first, at most `most` + 1 of it, in one
    statement: one that finds no more than `most` is then named by its ids, and when both
    do (`few`) the tier is gathered by id and sorted; a common one is left to a condition
    each row is tested with, for a walk through the list that stops at a page."""

    def __init__(self, q: str, most: int):
        self.q = q
        self.sqlite = db.engine.dialect.name == "sqlite"
        parts = [
            part.limit(most + 1).subquery()
            for part in (_subject_matches(q, self.sqlite), _contact_matches(q, self.sqlite))
        ]
        rows = db.session.execute(
            union_all(*(select(literal(kind), part.c[0]) for kind, part in enumerate(parts)))
        ).all()
        found: tuple[list[int], list[int]] = ([], [])
        for kind, found_id in rows:
            found[kind].append(found_id)
        self.subjects, self.contacts = (ids if len(ids) <= most else None for ids in found)

    @property
    def few(self) -> bool:
        return self.subjects is not None and self.contacts is not None

    def condition(self, walk: bool = True) -> ColumnElement:
        """The list query's condition "its subject or its contact `q` finds": to test the
        rows a walk goes through (`walk`), else to gather the matches from the indexes; by
        id where `few` named them. SQLite: FTS5's sets, looked up once a statement (its LIKE
        folds the case of ASCII letters only, unlike the trigram index); PostgreSQL walks
        testing each row's own subject (a common string's trigram bitmap costs more than a
        thousand rows' test)."""
        if self.subjects is not None:
            subject = self._among(Conversation.id, self.subjects)
        elif walk and not self.sqlite:
            subject = Conversation.subject.ilike(_like_pattern(self.q), escape="\\")
        else:
            subject = Conversation.id.in_(_subject_matches(self.q, self.sqlite).correlate(None))
        if self.contacts is not None:
            contact = self._among(Conversation.contact_id, self.contacts)
        else:
            contact = Conversation.contact_id.in_(_contact_matches(self.q, self.sqlite))
        return or_(subject, contact)

    def _among(self, key, ids: list[int]) -> ColumnElement:
        if self.sqlite:
            # One JSON parameter, not an IN list of up to 2,000: SQLAlchemy renders and binds
            # each element of a list every time (~1 ms for 1,000), json_each reads them in C.
            listed = func.json_each(bindparam(None, json.dumps(ids), unique=True))
            return key.in_(select(listed.table_valued("value").c.value))
        # One array parameter, not an IN list of up to 2,000: PostgreSQL's planner weighs
        # each element of a list (~10 ms of planning for 1,000), not those of a parameter.
        return key == func.any(bindparam(None, ids, ARRAY(Integer), unique=True))


class Window:
    """The latest WINDOW messages `q`'s words find, ranked: the second tier's conversations.
    Looked up at most once (PostgreSQL: statements of their own, _pg_window) however many
    times a page asks."""

    def __init__(self, q: str):
        self.found = words(q)
        self.sqlite = db.engine.dialect.name == "sqlite"
        self._pg_rows: list[tuple[int, float]] | None = None

    def ranked(self):
        """The conversations with one of these messages, each with the rank of its best one
        (conversation_id, best), smaller is better (SQLite: bm25, negative; PostgreSQL:
        minus ts_rank), as a CTE; None when `q` has no words (PostgreSQL: or finds none)."""
        if not self.found:
            return None
        if self.sqlite:
            hits = _sqlite_window(self.found)
            return (
                select(
                    Message.conversation_id.label("conversation_id"),
                    cast(func.min(hits.c.rank), Float).label("best"),
                )
                .join_from(hits, Message, Message.id == hits.c.id)
                .group_by(Message.conversation_id)
                .cte("ranked")
            )
        best: dict[int, float] = {}
        for conversation_id, rank in self._pg()[:WINDOW]:
            best[conversation_id] = min(rank, best.get(conversation_id, rank))
        if not best:
            return None
        # Two array parameters, not a VALUES list of 300 rows: a statement of the same shape
        # every time, compiled once (a 300-row VALUES took ~14 ms to compile).
        hits = (
            func.unnest(
                bindparam("window_ids", list(best), ARRAY(Integer), unique=True),
                bindparam("window_ranks", list(best.values()), ARRAY(Float), unique=True),
            )
            .table_valued(column("conversation_id", Integer), column("best", Float))
            .render_derived(name="window")
        )
        return select(hits.c.conversation_id, hits.c.best).cte("ranked")

    def is_full(self) -> bool:
        """Whether the words find more messages than the window ranks (then older_matches)."""
        if not self.found:
            return False
        if not self.sqlite:
            return len(self._pg()) > WINDOW
        hits = _latest_fts(self.found, WINDOW + 1)
        return db.session.scalar(select(func.count()).select_from(hits.subquery())) > WINDOW

    def _pg(self) -> list[tuple[int, float]]:
        if self._pg_rows is None:
            self._pg_rows = _pg_window(self.found)
        return self._pg_rows


# PostgreSQL: the latest matches in id order, but not read through the primary key's order:
# for "the first 300 by id" its planner walks the messages backwards testing each one's text
# until 300 match, seconds for a word in few or no messages; `id + 0` makes it take the
# matches from the index and sort them.
_NOT_BY_PRIMARY_KEY = Message.id + literal_column("0")

# PostgreSQL: how many of the newest message ids the window is looked for among first, then
# the next span, then every message. A common word's posting list is read whole from the
# word index whatever the span (tens of thousands of ids, a few ms), but only its matches
# among the newest ids are read from the table (a few hundred pages, not the tens of
# thousands all of its matches are spread over: hundreds of ms when not in memory).
PG_SPANS = (20_000, 200_000)


def _sqlite_window(found: list[str]):
    """SQLite: the latest WINDOW messages the words find, with their rank (id, rank): the
    newest first, which FTS5 hands over walking its doclist backwards, and only these are
    ranked (bm25, negative: smaller is better). Its rank column is read in a subquery: its
    functions refuse an aggregate."""
    return (
        _latest_fts(found, WINDOW)
        .add_columns(literal_column("rank").label("rank"))
        .subquery("hits")
    )


def _pg_window(found: list[str]) -> list[tuple[int, float]]:
    """PostgreSQL: the latest WINDOW + 1 messages the words find, newest first, each as
    (conversation_id, rank), rank minus ts_rank (smaller is better): looked up in a
    statement of its own among the newest PG_SPANS ids first, widening until WINDOW + 1
    are found (the latest that many are then all within the span) or every message was
    looked among. More than WINDOW: the window is full (Window.is_full)."""
    with _bitmap_scans_only(select(func.max(Message.id)).scalar_subquery()) as (newest,):
        newest = newest or 0
        spans = [span for span in PG_SPANS if newest - span > 0]
        while True:
            span = spans.pop(0) if spans else newest
            rows = db.session.execute(pg_latest(found, newest - span)).all()
            if len(rows) > WINDOW or span == newest:
                return [(conversation_id, rank) for _, conversation_id, rank in rows]
            # Too few here for the next span to fill the window at this rate: every message
            # at once (a rare word's bitmap is small; a wide span's primary key one is not).
            if spans and len(rows) * spans[0] <= WINDOW * span:
                spans = []


def pg_latest(found: list[str], floor: int) -> Select:
    """PostgreSQL: the latest WINDOW + 1 messages above id `floor` the words find, newest
    first: (id, conversation_id, rank)."""
    query = func.to_tsquery(literal_column("'simple'"), tsquery(found))
    latest = (
        select(Message.id, Message.conversation_id, Message.text_body)
        .where(_SEARCHED, _PG_MESSAGE_WORDS.op("@@")(query))
        .order_by(_NOT_BY_PRIMARY_KEY.desc())
        .limit(WINDOW + 1)
    )
    if floor:  # a literal: the planner weighs the range it really is
        latest = latest.where(Message.id > literal_column(str(int(floor))))
    latest = latest.subquery("latest")
    # Ranked outside the LIMIT: ts_rank re-reads the text, for these rows only.
    words_of_latest = literal_column(pg_computed_words("latest.text_body"))
    return select(
        latest.c.id, latest.c.conversation_id, -func.ts_rank(words_of_latest, query)
    ).order_by(latest.c.id.desc())


@contextmanager
def _bitmap_scans_only(*columns) -> Iterator[tuple]:
    """PostgreSQL: no plain index scans for the statements inside (this transaction only).
    For the newest matches of a word, the cheap plan ANDs the word index's bitmap with the
    primary key's for the span; the planner, which prices the text's to_tsvector far below
    its real cost, would otherwise walk the span through the primary key computing it for
    every message (a second for 20,000). Set in one statement, which also answers
    `columns` (planned before the settings apply), and put back in one."""
    settings = [func.set_config(name, value, True) for name, value in _BITMAP_SCANS_ONLY.items()]
    row = db.session.execute(select(*columns, *settings)).one()
    try:
        yield tuple(row[: len(columns)])
    finally:
        pg_settings = table("pg_settings", column("name"), column("reset_val"))
        db.session.execute(  # what SET LOCAL … TO DEFAULT sets: the session's own value
            select(func.set_config(pg_settings.c.name, pg_settings.c.reset_val, True)).where(
                pg_settings.c.name.in_(list(_BITMAP_SCANS_ONLY))
            )
        )


# ... and no parallel workers: starting them costs more (5-10 ms) than the few hundred rows
# read from the table, and the planner, without statistics for a word, expects thousands.
_BITMAP_SCANS_ONLY = {"enable_indexscan": "off", "max_parallel_workers_per_gather": "0"}


def _latest_fts(found: list[str], limit: int) -> Select:
    """SQLite: the ids of the latest `limit` messages the words find, newest first."""
    return (
        select(_messages_fts.c.rowid.label("id"))
        .where(literal_column("messages_fts").op("MATCH")(fts5_query(found)))
        .order_by(_messages_fts.c.rowid.desc())
        .limit(limit)
    )


def _window_start(found: list[str]) -> int:
    """SQLite: the oldest message id in the window (looked up on its own: FTS5 seeks to a
    value it is given, not to a subquery's)."""
    hits = _latest_fts(found, WINDOW).subquery()
    return db.session.scalar(select(func.min(hits.c.id))) or 0


def older_matches(q: str) -> ColumnElement:
    """Conversations with a message `q`'s words find, any message (window or not)."""
    found = words(q)
    sqlite = db.engine.dialect.name == "sqlite"
    return Conversation.id.in_(
        _message_matches(found, sqlite).with_only_columns(Message.conversation_id)
    )


def _head_matches(q: str, sqlite: bool) -> list[Select]:
    """The ids of the conversations whose subject or contact `q` finds (two selects)."""
    return [
        _subject_matches(q, sqlite),
        select(Conversation.id).where(Conversation.contact_id.in_(_contact_matches(q, sqlite))),
    ]


def _like_pattern(q: str) -> str:
    return "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _trigram_phrase(q: str) -> str:
    return '"' + q.replace('"', '""') + '"'


def _subject_matches(q: str, sqlite: bool) -> Select:
    if sqlite and len(q) >= TRIGRAM:
        return select(_conversations_fts.c.rowid).where(
            literal_column("conversations_fts").op("MATCH")(_trigram_phrase(q))
        )
    return select(Conversation.id).where(Conversation.subject.ilike(_like_pattern(q), escape="\\"))


def _contact_matches(q: str, sqlite: bool) -> Select:
    if sqlite and len(q) >= TRIGRAM:
        return select(_contacts_fts.c.rowid).where(
            literal_column("contacts_fts").op("MATCH")(_trigram_phrase(q))
        )
    pattern = _like_pattern(q)
    return (
        select(Contact.id)
        .where(
            or_(
                Contact.email.ilike(pattern, escape="\\"),
                Contact.name.ilike(pattern, escape="\\"),
            )
        )
        .correlate(None)
    )


def fts5_query(found: list[str]) -> str:
    """FTS5: the words as one phrase, the last a prefix (words hold no quote to escape)."""
    return '"' + " ".join(found) + '"*'


def tsquery(found: list[str]) -> str:
    """PostgreSQL: the same phrase as a tsquery (words hold no tsquery operator)."""
    return " <-> ".join(found) + ":*"


def _message_text_match(found: list[str], sqlite: bool) -> ColumnElement:
    if sqlite:
        return Message.id.in_(
            select(_messages_fts.c.rowid).where(
                literal_column("messages_fts").op("MATCH")(fts5_query(found))
            )
        )
    return _PG_MESSAGE_WORDS.op("@@")(func.to_tsquery(literal_column("'simple'"), tsquery(found)))


def _message_matches(found: list[str], sqlite: bool) -> Select:
    return select(Message.id).where(_SEARCHED, _message_text_match(found, sqlite))


def like_reference(q: str) -> ColumnElement:
    """The search as it was before the indexes: a LIKE scan of subjects, contacts and every
    message (needs the query to join Contact). Not used by the app: the tests compare the
    index's answers with it and bench/ui.py times it beside the index."""
    pattern = _like_pattern(q)
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


def snippets(conversation_ids: list[int], q: str) -> dict[int, Markup]:
    """For each of these conversations whose message text `q` finds: the words around the
    match in its best-ranked message, the match in <mark>, as safe HTML (escaped first).
    SQLite: among the latest WINDOW matching messages (the ranked ones), so a conversation
    listed among the older matches of a common word shows its latest words unmarked."""
    found = words(q)
    if not conversation_ids or not found:
        return {}
    if db.engine.dialect.name == "sqlite":
        rows = db.session.execute(
            select(
                Message.conversation_id,
                func.snippet(literal_column("messages_fts"), 0, _START, _STOP, "…", SNIPPET_WORDS),
            )
            .select_from(_messages_fts)
            .join(Message, Message.id == _messages_fts.c.rowid)
            .where(
                literal_column("messages_fts").op("MATCH")(fts5_query(found)),
                # Within the window the list ranked: FTS5 seeks its doclist to the window's
                # oldest message instead of walking every match of a common word.
                _messages_fts.c.rowid >= _window_start(found),
                Message.conversation_id.in_(conversation_ids),
            )
            .order_by(Message.conversation_id, func.bm25(literal_column("messages_fts")))
        ).all()
    else:
        query = func.to_tsquery(literal_column("'simple'"), tsquery(found))
        # Each message's words computed once, for the match and the rank (OFFSET 0 keeps the
        # planner from copying the expression into both: its translate() is ~25 µs a message),
        # and only for messages that hold every word as a substring, which a match needs.
        computed = literal_column(pg_computed_words("messages.text_body"))
        message_words = select(computed.label("words")).offset(0).lateral("words")
        ranked = (
            select(
                Message.conversation_id,
                Message.text_body,
                func.row_number()
                .over(
                    partition_by=Message.conversation_id,
                    order_by=(
                        func.ts_rank(message_words.c.words, query).desc(),
                        Message.id.desc(),
                    ),
                )
                .label("place"),
            )
            .join(message_words, true())
            .where(
                Message.conversation_id.in_(conversation_ids),
                _SEARCHED,
                *(func.strpos(func.lower(Message.text_body), word) > 0 for word in found),
                message_words.c.words.op("@@")(query),
            )
            .subquery()
        )
        options = (
            f"StartSel={_START}, StopSel={_STOP}, MaxWords={SNIPPET_WORDS + 3}, "
            "MinWords=5, ShortWord=0"
        )
        rows = db.session.execute(
            select(
                ranked.c.conversation_id,
                func.ts_headline(
                    literal_column("'simple'"),
                    func.left(ranked.c.text_body, PG_TEXT_LIMIT),
                    query,
                    options,
                ),
            ).where(ranked.c.place == 1)
        ).all()
    shown: dict[int, Markup] = {}
    for conversation_id, marked in rows:
        if conversation_id not in shown:  # the best-ranked message comes first
            shown[conversation_id] = highlight(marked or "")
    return shown


def highlight(marked: str) -> Markup:
    """A snippet with match markers as HTML: every piece of text escaped, each marked run in
    <mark>. Markers the text itself happened to hold can only move a <mark>, never leave one
    open (nor an empty one)."""
    out, run = [], None  # run: the marked pieces so far while inside a mark
    for piece in re.split(f"([{_START}{_STOP}])", " ".join(marked.split())):
        if piece == _START:
            run = [] if run is None else run
        elif piece == _STOP:
            if run:
                out.append(Markup("<mark>%s</mark>") % "".join(run))
            run = None
        elif piece:
            (out if run is None else run).append(piece)
    if run:
        out.append(Markup("<mark>%s</mark>") % "".join(run))
    return Markup("").join(escape(p) if not isinstance(p, Markup) else p for p in out)
