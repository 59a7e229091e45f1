"""Put the corpora into a migrated database: the rows the benchmarks read or work on.

The mailbox goes in by Core bulk inserts, each table's insert (and the lazy build of its
rows) timed for bench/ui.py's seeding line; the MIME messages through the real `receive()`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

from sqlalchemy import MetaData, Table, func, insert, inspect, select, text
from sqlalchemy.engine import Engine

from bench.corpus import mailbox
from bench.corpus.mime import SUPPORT

CHUNK = 10_000


def _batches(rows: Iterable[dict], size: int = CHUNK) -> Iterator[list[dict]]:
    batch: list[dict] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _insert(engine: Engine, table, rows: Iterable[dict]) -> None:
    """Core executemany, one transaction per chunk of CHUNK rows, into the table as the
    migrations have built it so far: bench/ui.py seeds before the search index's revision,
    and a column the models gained later (messages.from_name, 0018) is left to the
    migration that adds it."""
    present = {column["name"] for column in inspect(engine).get_columns(table.name)}
    if present.issuperset(table.columns.keys()):
        stmt = insert(table)
    else:
        # The model's columns, defaults included, less those the schema does not have yet.
        kept = [c._copy() for c in table.columns if c.name in present]
        stmt = insert(Table(table.name, MetaData(), *kept))
        rows = ({k: v for k, v in row.items() if k in present} for row in rows)
    for batch in _batches(rows):
        with engine.begin() as conn:
            conn.execute(stmt, batch)


def seed(engine: Engine) -> dict:
    """Fill the migrated database; return what was made and how long it took."""
    from models import Contact, Conversation, Inbox, InboxMember, Message, User

    models = (Inbox, User, InboxMember, Contact, Conversation, Message)
    by_name = {model.__tablename__: model.__table__ for model in models}
    started = time.perf_counter()
    timings: dict[str, float] = {}
    for name, rows in mailbox.tables():
        t0 = time.perf_counter()
        _insert(engine, by_name[name], rows)
        timings[name] = time.perf_counter() - t0
    if engine.dialect.name == "postgresql":
        t0 = time.perf_counter()
        with engine.begin() as conn:
            for table in ("inboxes", "users", "contacts", "conversations", "messages"):
                conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
                )
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))  # what autovacuum does after a bulk load
        timings["vacuum analyze"] = time.perf_counter() - t0
    total = time.perf_counter() - started
    with engine.connect() as conn:
        counts = {
            t.__tablename__: conn.scalar(select(func.count()).select_from(t.__table__))
            for t in models
        }
        big_count = conn.scalar(
            select(func.count())
            .select_from(Message.__table__)
            .where(Message.conversation_id == mailbox.BIG_ID)
        )
        word_share = conn.scalar(
            select(func.count())
            .select_from(Conversation.__table__)
            .where(Conversation.subject.contains(mailbox.SEARCH_WORD))
        )
    return {
        "rows": counts,
        "seconds": total,
        "timings": timings,
        "big_id": mailbox.BIG_ID,
        "big_count": big_count,
        "search_matches": word_share,
        "filter_inbox": 1,
    }


def seed_support_inbox() -> None:
    """The support inbox and the corpus's thread, so its replies, tokens and bounces land."""
    from extensions import db
    from models import Inbox
    from tests.support.corpus import seed_corpus_thread

    inbox = Inbox(name="Support", support_address=SUPPORT)
    db.session.add(inbox)
    db.session.flush()
    seed_corpus_thread(inbox.id, status="open", first_message=True)
    db.session.commit()


def receive_all(messages: list[bytes]) -> list[int]:
    """Each message through `receive()` (row, stored bytes, queued job); their row ids."""
    from ingress import RawEmail
    from ingress.receive import receive

    ids = []
    for raw in messages:
        received = receive(RawEmail(raw), source="bench")
        assert not received.duplicate and received.enqueued
        ids.append(received.inbound_email.id)
    return ids
