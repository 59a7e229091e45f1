"""Benchmark the agent UI on a big mailbox: 100,000 conversations, 1,000,000 messages.

For SQLite (temp file) and PostgreSQL (a fresh, dropped-afterwards database) the real
migrations build the schema, Core bulk inserts seed it, and the Flask test client (signed
in as an admin) times the first list page, a filtered list page, a search and a
500-message thread. Beside each page: the SQL that request issued, captured at the driver
and replayed bare on one connection (the main SELECT alone, and every statement of the
request), interleaved with the page requests in the same run. The mailbox is built by
bench/corpus/ (mailbox.py makes the rows, load.py inserts them); the timed loops are in
bench/ui_timing.py.

`BENCH_UI_EXPLAIN=1` prints each page's main query plan to stderr.

While iterating (`python -m bench.ui` prints the section without writing BENCHMARKS.md):
- `BENCH_UI_KEEP=DIR` keeps the seeded mailboxes and reuses them on the next run instead of
  seeding again (SQLite: DIR/bench.db; PostgreSQL: the database threadline_bench_kept, not
  dropped; what the seeding found: DIR/<backend>.json). A kept mailbox is upgraded to the
  newest migration before it is timed; delete DIR (and drop the database) to seed anew;
- `BENCH_UI_ONLY=sqlite` or `postgresql` times one database only;
- `BENCH_UI_PAGES=word,…` times only the pages whose name contains one of the words (e.g.
  `search,first`; `idle` for the idle poll).
Leave all three unset for the run whose section is committed.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, delete, func, select, text
from sqlalchemy.engine import Engine, make_url

from bench.corpus.load import seed
from bench.corpus.mailbox import BIG_THREAD, CONVERSATIONS, MESSAGES, SEARCH_WORD
from bench.ui_timing import WARMUPS, Capture, N, _replay, time_idle_poll, time_page

KEEP = os.environ.get("BENCH_UI_KEEP")
ONLY = os.environ.get("BENCH_UI_ONLY")
PAGES = os.environ.get("BENCH_UI_PAGES")
POSTGRES_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def bench_session(user_id: int) -> str:
    """A live session row for `user_id`; returns the id its cookie carries."""
    from datetime import timedelta

    from extensions import db
    from models import UserSession, utcnow
    from services.sessions import hash_token

    token = "bench-session-token"
    # A kept mailbox (BENCH_UI_KEEP) has the last run's: one session a token.
    db.session.execute(delete(UserSession).where(UserSession.token_hash == hash_token(token)))
    db.session.add(
        UserSession(
            token_hash=hash_token(token),
            user_id=user_id,
            expires_at=utcnow() + timedelta(days=1),
        )
    )
    db.session.commit()
    return token


# The searches timed, each beside the LIKE scan it replaced: name -> q. "search" keeps its
# name from before the index, so the row compares with earlier runs.
SEARCHES = {
    "search": SEARCH_WORD,
    "search, a word prefix": SEARCH_WORD[:5],
    "search, a common word": "refund",  # in a fifth of the replies and 1 topic in 16
    "search, a contact's name": "okafor",  # 1 surname in 12
    "search, a contact's email (substring)": "customer42.example",  # 1 domain in 97
}


def searches() -> dict:
    """SEARCHES and a rare word: the order number of one seeded subject (found in a handful
    of subjects at most, in no message text)."""
    from extensions import db
    from models import Conversation

    subject = db.session.scalar(
        select(Conversation.subject)
        .where(Conversation.subject.contains("(order "))
        .order_by(Conversation.id)
        .limit(1)
    )
    rare = subject.rsplit("(order ", 1)[1].rstrip(")")
    return {**SEARCHES, "search, a rare word (an order number)": rare}


SEARCH_TARGET_MS = 20.0  # issue 20: the search page's p95 at 1 M messages


class LikeScan:
    """The search's main SELECT as it was before the full-text index (services/search.py's
    like_reference in place of the index lookup), replayed bare as time_page's untimed
    `before` hook: so it runs in the same loop as the page it is compared with, once ahead
    of each request, on its own connection, timed by its own clock."""

    def __init__(self, q: str):
        from extensions import db
        from models import Conversation, User
        from services import conversation_list, search

        admin = db.session.get(User, 1)
        query = (
            conversation_list._filtered(admin, None, "open", None, None)
            .where(search.like_reference(q))
            .order_by(Conversation.last_activity_at.desc(), Conversation.id.desc())
            .limit(conversation_list.DEFAULT_PAGE_SIZE + 1)
        )
        with Capture(db.engine) as capture:
            db.session.execute(query).all()
        self.statements = [
            (s, p) for s, p in capture.statements if "JOIN contacts" in " ".join(s.split())
        ][:1]
        assert self.statements, f"no LIKE list query for {q!r}"
        self.found = db.session.scalar(
            select(func.count()).select_from(search.matching_conversations(q).subquery())
        )
        self.conn = db.engine.connect()
        self.samples: list[float] = []

    def __call__(self) -> None:
        t0 = time.perf_counter()
        _replay(self.conn, self.statements)
        self.samples.append((time.perf_counter() - t0) * 1000)

    def finish(self) -> dict:
        self.conn.close()
        return {"like": self.samples[-N:], "found": self.found}


INDEXED_BY = "0017"  # the migration that builds the search index for the mail already there


def _seed_then_index(engine: Engine, upgrade) -> dict:
    """The mailbox as a real upgrade meets it: the schema up to the revision before the
    search index, the rows bulk inserted, then the remaining migrations, whose 0017 indexes
    the mail already there (SQLite: FTS5 tables filled by one INSERT … SELECT and 'rebuild';
    PostgreSQL: GIN indexes built over the table) instead of a trigger firing per row."""
    upgrade(revision=f"{int(INDEXED_BY) - 1:04d}")
    seeded = seed(engine)
    t0 = time.perf_counter()
    upgrade(revision=INDEXED_BY)
    index = time.perf_counter() - t0
    t0 = time.perf_counter()
    upgrade()  # the later ones (0018 reads every message, converting none: they are new)
    later = time.perf_counter() - t0
    t0 = time.perf_counter()
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))  # the new expression index's statistics
    index += time.perf_counter() - t0
    seeded["timings"][f"search index (migration {INDEXED_BY})"] = index
    seeded["timings"]["later migrations"] = later
    seeded["seconds"] += index + later
    return seeded


def list_and_thread_pages(seeded: dict) -> dict:
    """The agent UI section's pages: name -> (url, main-query marker[, htmx[, before]])."""
    from services import list_version

    big = seeded["big_id"]
    return {
        "first list page": ("/conversations", "JOIN contacts"),
        "first list page right after any change (sidebar counts recounted)": (
            "/conversations",
            "JOIN contacts",
            False,
            list_version.bump,
        ),
        "filtered list page": (
            f"/conversations?status=open&assignee=unassigned&inbox_id={seeded['filter_inbox']}",
            "JOIN contacts",
        ),
        **{
            name: (f"/conversations?q={q}", "JOIN contacts", False, LikeScan(q))
            for name, q in searches().items()
        },
        f"{BIG_THREAD}-message thread, full page with the list": (
            f"/conversations/{big}",
            "WHERE messages.conversation_id = ",
        ),
        f"{BIG_THREAD}-message thread, htmx fragment (a click in the list)": (
            f"/conversations/{big}",
            "WHERE messages.conversation_id = ",
            True,
        ),
    }


def thread_pages(seeded: dict) -> dict:
    """The thread section's pages: the big thread folded to its latest messages, as a click
    in the list (htmx) and as a full page, and the first page of its earlier messages loaded
    on demand."""
    from services import workspace
    from services.earlier_messages import PAGE

    big = seeded["big_id"]
    before = workspace.earlier_start(big)
    return {
        "thread with its contact panel, htmx fragment (a click in the list)": (
            f"/conversations/{big}",
            "WHERE messages.conversation_id = ",
            True,
        ),
        "list page with the thread and its contact panel (full page)": (
            f"/conversations/{big}",
            "WHERE messages.conversation_id = ",
        ),
        f"its earlier messages, the first {PAGE} loaded on demand (htmx)": (
            f"/conversations/{big}/messages/earlier?before={before}",
            "WHERE messages.conversation_id = ",
            True,
        ),
    }


def bench_backend(
    database_url: str,
    redis_url: str,
    work: Path,
    pages_for=list_and_thread_pages,
    idle_poll: bool = True,
) -> tuple[dict, dict]:
    from flask_migrate import upgrade

    from app import create_app
    from extensions import db

    app = create_app(
        {
            "SECRET_KEY": "bench-secret-key-0123456789",
            "INBOUND_EMAIL_PASSWORD": "bench",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "INSTANCE_PATH": str(work / "instance"),
        }
    )
    with app.app_context():
        try:
            engine = db.engine
            kept = Path(KEEP) / f"{engine.dialect.name}.json" if KEEP else None
            if kept and kept.exists():
                upgrade()
                seeded = json.loads(kept.read_text())
            else:
                seeded = _seed_then_index(engine, upgrade)
                if kept:
                    kept.write_text(json.dumps(seeded))
            client = app.test_client()
            with client.session_transaction() as session:
                # The admin (sees every inbox), signed in through a server-side session.
                session["_user_id"] = bench_session(user_id=1)
                session["_fresh"] = True
            pages = {
                name: spec
                for name, spec in pages_for(seeded).items()
                if not PAGES or any(word in name for word in PAGES.split(","))
            }
            db.session.remove()
            results = {
                name: {"url": spec[0], **time_page(app, client, engine, *spec)}
                for name, spec in pages.items()
            }
            for name, spec in pages.items():
                if isinstance(spec[-1], LikeScan):  # the search's LIKE baseline, same loop
                    results[name].update(spec[-1].finish())
            if idle_poll and (not PAGES or "idle" in PAGES):
                results["idle list poll"] = time_idle_poll(app, client, engine)
        finally:
            db.session.remove()
            db.engine.dispose()
    return seeded, results


def _on_every_backend(label_rows, pages_for=list_and_thread_pages, idle_poll=True) -> list[str]:
    """SQLite (temp file), then PostgreSQL (a fresh database, dropped afterwards) when a server
    answers at BENCH_POSTGRES_URL: each one's section, drawn by `label_rows(label, seeded,
    results)`."""
    sections = []
    with tempfile.TemporaryDirectory(prefix="threadline-bench-ui-") as tmp:
        work = Path(tmp)
        data = Path(KEEP) if KEEP else work
        data.mkdir(parents=True, exist_ok=True)
        from runtime.embedded_redis import EmbeddedRedis

        with EmbeddedRedis(str(work / "redis.sock"), str(work / "redis")) as redis_server:
            if ONLY in (None, "", "sqlite"):
                if not (data / "sqlite.json").exists():  # none kept, or a seeding unfinished
                    (data / "bench.db").unlink(missing_ok=True)
                sqlite_url = "sqlite:///" + str(data / "bench.db")
                sections += label_rows(
                    "SQLite",
                    *bench_backend(sqlite_url, redis_server.url, work, pages_for, idle_poll),
                )
            if ONLY not in (None, "", "postgresql"):
                return sections
            found = _postgres_database()
            if found is None:
                sections += ["### PostgreSQL", "", "Skipped: no server at BENCH_POSTGRES_URL.", ""]
                return sections
            base_url, admin = found
            name = "threadline_bench_kept" if KEEP else f"threadline_bench_{uuid.uuid4().hex[:10]}"
            with admin.connect() as conn:
                exists = conn.scalar(
                    text("SELECT count(*) FROM pg_database WHERE datname = :name"), {"name": name}
                )
                if not exists:
                    conn.execute(text(f'CREATE DATABASE "{name}"'))
                elif not (data / "postgresql.json").exists():  # a seeding that did not finish
                    conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
                    conn.execute(text(f'CREATE DATABASE "{name}"'))
            try:
                url = make_url(base_url).set(database=name).render_as_string(hide_password=False)
                sections += label_rows(
                    f"PostgreSQL {_server_version(admin)}",
                    *bench_backend(url, redis_server.url, work, pages_for, idle_poll),
                )
            finally:
                if not KEEP:
                    with admin.connect() as conn:
                        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
    return sections


def _postgres_database() -> tuple[str, Engine] | None:
    url = make_url(POSTGRES_URL)
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # no server: the section says so instead of failing the run
        print(
            f"bench.ui: PostgreSQL at {url.render_as_string()} unavailable: {exc}", file=sys.stderr
        )
        admin.dispose()
        return None
    return url.render_as_string(hide_password=False), admin


def _section(label: str, seeded: dict, results: dict) -> list[str]:
    rows = seeded["rows"]
    seeding = ", ".join(f"{k} {v:.1f} s" for k, v in seeded["timings"].items())
    lines = [
        f"### {label}",
        "",
        f"Seeded {', '.join(f'{v:,} {k}' for k, v in rows.items())} in "
        f"{seeded['seconds']:.0f} s ({seeding}). Thread #{seeded['big_id']} has "
        f"{seeded['big_count']} messages; {seeded['search_matches']:,} subjects contain "
        f'"{SEARCH_WORD}".',
        "",
        "| page | SQL stmts | ours p50 | ours p95 | main SELECT p50 | p95 | all SQL p50 | p95 "
        "| ours / main | ours / all SQL |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in results.items():
        o50, o95 = _pct(r["ours"], 0.5), _pct(r["ours"], 0.95)
        m50, m95 = _pct(r["main"], 0.5), _pct(r["main"], 0.95)
        a50, a95 = _pct(r["all"], 0.5), _pct(r["all"], 0.95)
        lines.append(
            f"| {name} (`{r['url']}`) | {r['queries']} | {o50:.1f} | {o95:.1f} | {m50:.2f} "
            f"| {m95:.2f} | {a50:.1f} | {a95:.1f} | {o50 / m50:.1f}x | {o50 / a50:.1f}x |"
        )
    lines.append("")
    return lines + _search_rows(results)


def _search_rows(results: dict) -> list[str]:
    """The searches beside the LIKE scan they replaced (its main SELECT replayed bare in the
    same loop), and the target."""
    searches = {name: r for name, r in results.items() if "like" in r}
    if not searches:
        return []
    lines = [
        "Search on the full-text index against the LIKE scan it replaced (the same list "
        "query with the old LIKE filter, its main SELECT replayed bare in the same loop):",
        "",
        "| search | conversations found | page p50 | page p95 | index main SELECT p50 | p95 "
        "| LIKE main SELECT p50 | p95 | LIKE / index (p50) "
        f"| page p95 ≤ {SEARCH_TARGET_MS:.0f} ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, r in searches.items():
        o50, o95 = _pct(r["ours"], 0.5), _pct(r["ours"], 0.95)
        m50, m95 = _pct(r["main"], 0.5), _pct(r["main"], 0.95)
        l50, l95 = _pct(r["like"], 0.5), _pct(r["like"], 0.95)
        verdict = "met" if o95 <= SEARCH_TARGET_MS else "missed"
        lines.append(
            f"| {name} (`{r['url']}`) | {r['found']:,} | {o50:.1f} | {o95:.1f} | {m50:.2f} "
            f"| {m95:.2f} | {l50:.1f} | {l95:.1f} | {l50 / m50:.0f}x | {verdict} |"
        )
    lines.append("")
    return lines


def run() -> str:
    os.environ["ENV_FILE"] = os.devnull  # measure defaults, not the developer's .env
    sections = _on_every_backend(_section)
    header = [
        "## Agent UI on a big mailbox",
        "",
        f"{CONVERSATIONS:,} conversations with {MESSAGES:,} messages (25% open), seeded "
        "as a real upgrade meets them: Core bulk inserts into the schema migrated up to the "
        f"revision before {INDEXED_BY}, then the remaining migrations, so that {INDEXED_BY} "
        "builds the search index over the mail already there (SQLite: the FTS5 tables filled "
        "by one INSERT … SELECT and 'rebuild', without its triggers firing a million times; "
        "PostgreSQL: the GIN indexes built over the table, then ANALYZE). Server side "
        "through the Flask test client as an admin signed in through a server-side session, "
        "each request in its own app context as in production (so the session lookup is paid "
        f"every time), ms per request, p50/p95 of {N} requests after {WARMUPS} "
        "warm-ups. The list pages default to status=open. Baseline: the SQL the request "
        "issued, captured at the driver and replayed bare on one connection in the same "
        "loop: the page's main SELECT (the list query; the thread's messages select), and "
        "every statement of the request. The idle list poll (what each signed-in agent "
        f"sends every 5 s while nothing changes; {N * 10} requests) issues one SQL "
        "statement, the session lookup: its main baseline is a bare Redis GET of the same "
        "version key, its all-SQL baseline that GET plus the lookup replayed. The sidebar "
        "counts are cached per list version, so a list page pays for counting every open "
        "conversation only on the first load after something changed: that row moves the "
        "version before each request. The searches (on the full-text indexes of migration "
        "0017) are timed once more beside the LIKE scan they replaced: the same list query "
        "with the old LIKE filter, its main SELECT replayed bare in the same loop. A search "
        "lists the conversations whose subject or contact matches first, newest first, then "
        "those with one of the latest 300 matching messages by the bm25 / ts_rank of their "
        "best one, then the older matches by latest activity (services/search.py); the LIKE "
        "scan lists by latest activity.",
        "",
    ]
    return "\n".join(header + sections + SEARCH_NOTES)


SEARCH_NOTES = [
    "Where a search's time goes (SQLite, profiled on this mailbox): ranking is what costs. "
    "FTS5's bm25 reads each match's positions and document size, 10–25 µs a match, and "
    "'refund' is in about 68,000 messages: ranking them all took about 300 ms and walking "
    "them to their conversations 250 ms more. So a search ranks the latest 300 matching "
    "messages only (services/search.py WINDOW, a few ms), and only once a page gets past the "
    "subject and contact matches, which come first, newest first. Those were gathered "
    "whole, grouped with the ranked window and sorted ('refund' is in 6,266 subjects, "
    "'okafor' is the name of 2,469 contacts with 8,277 conversations: 20–24 ms of SQLite's "
    "main SELECT, 34–47 ms of PostgreSQL's). Now both are looked up first, at most 2,001 "
    "ids each in one statement: found at most 2,000 times they are gathered by id and "
    "sorted; found more often, the newest 1,000 open conversations are walked through the "
    "list's own index, each tested, and the walk stops at a page (after about 500 of them "
    "for 'refund', 420 for 'okafor'); what those did not fill is gathered from the older "
    "ones. What is left is "
    "mostly the snippets. SQLite reads the window of the index twice for them (its oldest "
    "id, then the listed conversations' matches from there), and for a prefix FTS5 merges "
    "the doclists of every word it starts each time, about 1.7 ms for 'refund'; then bm25, "
    "which picks each conversation's best message, first counts every message the phrase "
    "is in to weigh it, about 3 ms for 'refund' however few rows it ranks (ranking without "
    "snippet() and drawing the snippet of the best message only was tried: no faster). An "
    "FTS5 prefix index would not help: it answers prefixes of the lengths it lists only, "
    "and a search's last word is a prefix of any length. PostgreSQL computes the words of "
    "the listed conversations' candidate messages, to match and to rank them, for 'okafor' "
    "139 of them: with the index's own expression 45–60 µs a message, most of it "
    "translate(), which looks each character up among the 60 punctuation marks one by one; "
    "with one regexp_replace of the same marks (services/search.py pg_computed_words, the "
    "same words: a test holds them equal) about 18 µs, 7.3 ms → 2.7 ms (EXPLAIN ANALYZE). "
    "The window's rank uses it too; the lookups keep the indexed expression. "
    "Then, for an email fragment, the trigram lookup itself ('customer42.example' is 16 "
    "trigrams, most of them in every contact's address), and on PostgreSQL for a common "
    "subject the first tier's lookup (up to 2,001 subjects rechecked against the pattern, "
    "about 6 ms for 'refund'). The subject and contact ids found are handed to SQLite as "
    "one JSON array (json_each), as to PostgreSQL as one array, not as an IN list that "
    "SQLAlchemy renders and binds element by element (1,022 ids for 'chargeback'); a "
    "row's latest words (what the list shows without a search) are read only for the rows "
    "without a matched snippet: for 'chargeback' and 'okafor' on PostgreSQL none, one "
    "statement less. The rest is what any list page costs, and on PostgreSQL each "
    "statement is a round trip: the plain first list page's 10 statements (the session, "
    "the list, its reads, latest words and labels, the sidebar's inboxes and labels, the "
    "bulk bar's people, the bell's two), replayed bare, take about 40% of its time, a "
    "search's 11–13 about half of its own.",
    "",
    "On PostgreSQL the latest 300 matching messages are looked up before the list query, "
    "in statements of their own (counted and replayed above, their settings included), and "
    "only once a page gets past the subject and contact matches (the first page of "
    "'refund' or 'okafor' issues none of them; a search that did not fill its first page "
    "looked them up twice): among the newest 20,000 message ids first, the word index's "
    "bitmap ANDed with the primary key's, then 200,000, then all (services/search.py "
    "PG_SPANS), straight to all when a span found too few for the next to fill the window "
    "(a rare word's bitmap is small, a 200,000-id span's primary key bitmap is not). The "
    "planner settings they need are set and put back with set_config, one statement each, "
    "the first also reading max(id): a rare word's page issued 23 statements, now 12. The "
    "snippets compute each candidate message's words once, for the match and the rank, "
    "and only for messages that hold every word (translate() of the punctuation is most "
    "of a message's to_tsvector): 14 ms → 6 ms for 'okafor' (EXPLAIN ANALYZE).",
    "",
]


THREAD_TARGET = 3.0  # the thread page's p95 at most 3x the p95 of the SQL it issues


def _thread_rows(label: str, seeded: dict, results: dict) -> list[str]:
    lines = [
        f"### {label}",
        "",
        f"Thread #{seeded['big_id']}: {seeded['big_count']} messages in a mailbox of "
        f"{seeded['rows']['messages']:,}.",
        "",
        "| page | SQL stmts | KB | ours p50 | ours p95 | its SQL p50 | its SQL p95 "
        "| ours p95 / SQL p95 | target |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, r in results.items():
        o50, o95 = _pct(r["ours"], 0.5), _pct(r["ours"], 0.95)
        a50, a95 = _pct(r["all"], 0.5), _pct(r["all"], 0.95)
        folded = "earlier" not in name
        verdict = ("met" if o95 <= THREAD_TARGET * a95 else "missed") if folded else "-"
        lines.append(
            f"| {name} (`{r['url']}`) | {r['queries']} | {r['bytes'] / 1024:.0f} | {o50:.1f} "
            f"| {o95:.1f} | {a50:.1f} | {a95:.1f} | {o95 / a95:.1f}x | {verdict} |"
        )
    lines.append("")
    return lines


def run_thread() -> str:
    """The section "Thread page, earlier messages folded" (`python -m bench thread`)."""
    os.environ["ENV_FILE"] = os.devnull
    sections = _on_every_backend(_thread_rows, thread_pages, idle_poll=False)
    from services.earlier_messages import PAGE
    from services.workspace import LATEST

    header = [
        "## Thread page, earlier messages folded",
        "",
        f"The {BIG_THREAD}-message thread of the agent UI mailbox ({CONVERSATIONS:,} "
        f"conversations, {MESSAGES:,} messages) as the workspace draws it: the latest {LATEST} "
        "emails, replies and notes (with the activity lines among them) and a button that "
        f'loads the earlier ones on demand, {PAGE} at a time ("Show {PAGE} of 490 earlier '
        'messages"). Same client and loop as '
        f"the agent UI section: ms per request, p50/p95 of {N} requests after {WARMUPS} "
        "warm-ups, each beside a bare replay (one connection, same loop) of every SQL "
        "statement the request issued. Both pages carry the contact panel beside the thread "
        "(the contact, the other participants of all 500 messages, the contact's earlier "
        "conversations). Target: each page's p95 at most "
        f"{THREAD_TARGET:.0f}x its SQL's p95; the first press for earlier messages is shown "
        "for scale. KB: the answer's size. Command: "
        "`python -m bench thread`.",
        "",
    ]
    footer = [
        "Where the time goes (cProfile of the htmx fragment on a small seeded mailbox; the "
        "Python cost per request does not depend on its size): what does not change from one "
        "request to the next is drawn once and kept in the worker (blueprints/fragment_cache.py, "
        "`{% cached key %}`): each message, the header's menus, the composer with its Forward "
        "tab, the contact panel and, on the full page, each row of the list, the bulk bar and "
        "the head's links. A key (blueprints/conversations/fragment_keys.py) holds everything "
        "its part is drawn from (a message's updated_at, its author's name, the minute of its "
        '"5 min ago"; the draft or reply-all, the From choices, the signature; the status, '
        "assignee, labels and who may be assigned; the contact and their other conversations) "
        "and the agent it is drawn for, so a change draws the part anew and no agent gets "
        "another's; each form's CSRF token is kept as a placeholder and the request's own put "
        "in its place, and the thread's forms are built only when a part that draws them is. "
        "The timed requests follow the warm-ups, so they draw kept parts; a part drawn for the "
        "first time (a new message, another agent, the first look after a change) costs what "
        "it did before. The statements still run: they are what the keys are made of. Since "
        "the last run (issue 20's second pass, profiled on this mailbox by CPU time): the "
        "inbox's aliases (the composer's From choices) are joined into the conversation's "
        "statement instead of a lazy load (0.6 ms of Python for a 0.02 ms statement), so the "
        "fragment issues 11 statements and the full page 20 (were 12 and 21); the list "
        "version and the kept sidebar counts come from Redis in one round trip (MGET, the "
        "counts kept with the version they were counted at), so the full page asks Redis "
        "twice (presence and that), not four times; a kept part's CSRF token is looked up "
        "once a request; the blank move, split and delivery forms are no longer built to "
        "show their (no) errors, nor the bulk bar's form when the bar is kept; the contact's "
        "earlier conversations and the bulk bar's agents are read as rows of the columns they "
        "show, not ORM objects; the bell's count and the reconnect banner's select are built "
        "once. What is left is mostly the ORM's work on each statement (the thread, its "
        "people and drafts, the composer's participants, the list's conversations with their "
        "contacts and assignees), building the composer's form (its key is what it is filled "
        "with), the session lookup, presence's Redis round trip, Flask and the test client, "
        "and on the full page the list's, the sidebar's and the bell's statements. Two "
        "statements scan the thread's 500 rows (the totals behind the fingerprint and the "
        "folded count, and the contact panel's distinct From/To/Cc): most of the SQL time. On "
        "PostgreSQL every statement is a round trip and the target is met with room; on "
        "SQLite the statements run in-process, most in about 0.05 ms, so three times the SQL "
        "leaves a few milliseconds for the whole Python request: the table says which page "
        "fits in them (the full page adds the list, the sidebar and the bell).",
        "",
    ]
    return "\n".join(header + sections + footer)


def _server_version(admin: Engine) -> str:
    with admin.connect() as conn:
        return str(conn.scalar(text("SHOW server_version"))).split()[0]


if __name__ == "__main__":
    print(run_thread() if sys.argv[1:] == ["thread"] else run())
