"""Benchmark the agent UI on a big mailbox: 100,000 conversations, 1,000,000 messages.

For SQLite (temp file) and PostgreSQL (a fresh, dropped-afterwards database) the real
migrations build the schema, Core bulk inserts seed it, and the Flask test client (signed
in as an admin) times the first list page, a filtered list page, a search and a
500-message thread. Beside each page: the SQL that request issued, captured at the driver
and replayed bare on one connection (the main SELECT alone, and every statement of the
request), interleaved with the page requests in the same run.

`BENCH_UI_EXPLAIN=1` prints each page's main query plan to stderr.
"""

from __future__ import annotations

import math
import os
import random
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, event, func, insert, select, text
from sqlalchemy.engine import Engine, make_url

N = 30
WARMUPS = 3
CONVERSATIONS = 100_000
MESSAGES = 1_000_000
CONTACTS = 30_000
AGENTS = 20
INBOXES = 5
BIG_THREAD = 500
CHUNK = 10_000
SEARCH_WORD = "chargeback"  # in 1% of subjects (and those threads' first message)
SEARCH_SHARE = 0.01
POSTGRES_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)

STATUS_WEIGHTS = (("resolved", 60), ("open", 25), ("pending", 10), ("snoozed", 5))
FIRST = "Ana Ben Carla Dev Elif Femi Greta Hiro Ines Jon Kai Lena Mo Nora Omar Pia Raj Sara Tom Uma"
LAST = "Silva Okafor Jensen Novak Rossi Tanaka Meyer Haddad Kowalski Brown Garcia Lindqvist"
TOPICS = (
    "password reset not working",
    "invoice question",
    "cannot log in",
    "shipping delay",
    "refund request",
    "update billing address",
    "export to CSV fails",
    "two-factor code never arrives",
    "order arrived damaged",
    "plan upgrade",
    "API rate limit",
    "cancel my subscription",
    "wrong item delivered",
    "receipt for last month",
    "feature request: dark mode",
    "webhook retries",
)
OPENERS = ("Hi there,", "Hello,", "Hi team,", "Good morning,", "Hey,")
SENTENCES = (
    "I tried again this morning and it still does not work.",
    "Could you have a look at my account when you have a moment?",
    "The order number is in the attachment I sent last week.",
    "Thanks for the quick answer yesterday.",
    "Is there any update on this?",
    "We are on the team plan with twelve seats.",
    "The error says something about an expired token.",
    "I cleared the cache and used another browser, same result.",
    "Please send the corrected invoice to our accounts address.",
    "It worked for a while and then stopped again.",
)
REPLIES = (
    "Thanks for reaching out, I have looked into this for you.",
    "I have reset it on our side; could you try once more?",
    "The refund is on its way and should arrive within five working days.",
    "I have forwarded this to our billing team and will get back to you.",
    "Sorry for the trouble, the fix is now live.",
)
NOTES = ("Customer is on the legacy plan.", "Checked logs, looks like a sync issue.")


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
    """Core executemany, one transaction per chunk of CHUNK rows."""
    stmt = insert(table)
    for batch in _batches(rows):
        with engine.begin() as conn:
            conn.execute(stmt, batch)


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


# --- seeding --------------------------------------------------------------------------------


def seed(engine: Engine) -> dict:
    """Fill the migrated database; return what was made and how long it took."""
    from werkzeug.security import generate_password_hash

    from models import Contact, Conversation, Inbox, InboxMember, Message, User

    rng = random.Random(6)
    now = datetime.now(UTC)
    year = timedelta(days=365).total_seconds()
    started = time.perf_counter()
    timings: dict[str, float] = {}

    def timed(name: str, table, rows: Iterable[dict]) -> None:
        t0 = time.perf_counter()
        _insert(engine, table, rows)
        timings[name] = time.perf_counter() - t0

    hashed = generate_password_hash("bench password 123")
    timed(
        "inboxes",
        Inbox.__table__,
        (
            {
                "id": i,
                "name": name,
                "support_address": f"{name.lower()}@bench.example.com",
                "forward_token": secrets.token_hex(16),
                "created_at": now,
                "updated_at": now,
            }
            for i, name in enumerate(("Support", "Billing", "Sales", "Partners", "Press"), 1)
        ),
    )
    firsts, lasts = FIRST.split(), LAST.split()
    users = [
        {
            "id": 1,
            "email": "admin@bench.example.com",
            "name": "Bench Admin",
            "role": "admin",
            "password_hash": hashed,
            "availability": "online",
            "active": True,
            "created_at": now,
            "updated_at": now,
        }
    ]
    for n in range(AGENTS):
        users.append(
            {
                **users[0],
                "id": n + 2,
                "email": f"agent{n}@bench.example.com",
                "name": f"{firsts[n % len(firsts)]} {lasts[n % len(lasts)]}",
                "role": "agent",
            }
        )
    timed("users", User.__table__, users)
    members: dict[int, list[int]] = {i: [] for i in range(1, INBOXES + 1)}
    for agent_id in range(2, AGENTS + 2):
        for inbox_id in rng.sample(range(1, INBOXES + 1), rng.randint(1, 3)):
            members[inbox_id].append(agent_id)
    for ids in members.values():
        if not ids:
            ids.append(2)
    timed(
        "inbox_members",
        InboxMember.__table__,
        (
            {"inbox_id": i, "user_id": u, "created_at": now}
            for i, ids in members.items()
            for u in ids
        ),
    )
    contact_names = [f"{rng.choice(firsts)} {rng.choice(lasts)}" for _ in range(CONTACTS)]
    timed(
        "contacts",
        Contact.__table__,
        (
            {
                "id": i + 1,
                "email": f"{name.replace(' ', '.').lower()}.{i}@customer{i % 97}.example.org",
                "name": name,
                "created_at": now,
                "updated_at": now,
            }
            for i, name in enumerate(contact_names)
        ),
    )

    # Conversations: message counts average 10 with one 500-message thread; exact totals.
    big_id = CONVERSATIONS // 2
    counts = [rng.randint(1, 19) for _ in range(CONVERSATIONS)]
    counts[big_id - 1] = BIG_THREAD
    diff = MESSAGES - sum(counts)
    while diff:
        i = rng.randrange(CONVERSATIONS)
        if i == big_id - 1:
            continue
        step = 1 if diff > 0 else -1
        if counts[i] + step >= 1:
            counts[i] += step
            diff -= step
    statuses, weights = zip(*STATUS_WEIGHTS, strict=True)
    conv_inbox, conv_contact, conv_assignee, conv_subject = [0], [0], [None], [""]
    conv_search = [False]
    events: list[tuple[float, int, int]] = []  # (epoch seconds, conversation id, position)
    conversations = []
    start_of_year = now.timestamp() - year
    for cid in range(1, CONVERSATIONS + 1):
        inbox_id = rng.randint(1, INBOXES)
        count = counts[cid - 1]
        status = "open" if cid == big_id else rng.choices(statuses, weights)[0]
        assignee = None if rng.random() < 0.3 else rng.choice(members[inbox_id])
        with_word = rng.random() < SEARCH_SHARE
        subject = rng.choice(TOPICS)
        if with_word:
            subject = f"{SEARCH_WORD} on order {rng.randint(10000, 99999)}: {subject}"
        elif rng.random() < 0.5:
            subject = f"{subject} (order {rng.randint(10000, 99999)})"
        if cid == big_id:
            stamp, gap = now.timestamp() - 120 * 86400, 120 * 86400 / BIG_THREAD
        else:
            stamp, gap = start_of_year + rng.random() * year, 6 * 3600
        first = stamp
        for pos in range(count):
            events.append((stamp, cid, pos))
            last = stamp
            stamp = min(stamp + rng.expovariate(1 / gap), now.timestamp())
        conv_inbox.append(inbox_id)
        conv_contact.append(rng.randint(1, CONTACTS))
        conv_assignee.append(assignee)
        conv_subject.append(subject)
        conv_search.append(with_word)
        conversations.append(
            {
                "id": cid,
                "token": secrets.token_hex(16),
                "display_number": cid,
                "inbox_id": inbox_id,
                "contact_id": conv_contact[cid],
                "assignee_id": assignee,
                "status": status,
                "subject": subject,
                "snoozed_until": now + timedelta(days=rng.randint(1, 14))
                if status == "snoozed"
                else None,
                "last_activity_at": datetime.fromtimestamp(last, UTC),
                "created_at": datetime.fromtimestamp(first, UTC),
                "updated_at": datetime.fromtimestamp(last, UTC),
            }
        )
    timed("conversations", Conversation.__table__, conversations)
    del conversations
    events.sort()

    def messages() -> Iterator[dict]:
        for mid, (stamp, cid, pos) in enumerate(events, 1):
            at = datetime.fromtimestamp(stamp, UTC)
            r = rng.random()
            direction = (
                "incoming"
                if pos == 0 or r < 0.5
                else "outgoing"
                if r < 0.88
                else "note"
                if r < 0.95
                else "activity"
            )
            inbox_id, contact_id = conv_inbox[cid], conv_contact[cid]
            agent = conv_assignee[cid] or rng.choice(members[inbox_id])
            if direction == "incoming":
                body = f"{rng.choice(OPENERS)}\n\n" + " ".join(rng.sample(SENTENCES, 2))
                if pos == 0 and conv_search[cid]:
                    body += f" This is about the {SEARCH_WORD} on my card."
                body += f"\n\n{contact_names[contact_id - 1]}"
            elif direction == "outgoing":
                body = f"Hi,\n\n{rng.choice(REPLIES)}\n\nBest regards"
            elif direction == "note":
                body = rng.choice(NOTES)
            else:
                body = "assigned this conversation"
            mail = direction in ("incoming", "outgoing")
            yield {
                "id": mid,
                "conversation_id": cid,
                "inbox_id": inbox_id,
                "direction": direction,
                "sender_user_id": None if direction == "incoming" else agent,
                "contact_id": contact_id if direction == "incoming" else None,
                "message_id": f"{mid}.{cid}@mail.bench.example.com" if mail else None,
                "subject": conv_subject[cid] if pos == 0 else f"Re: {conv_subject[cid]}",
                "from_address": f"c{contact_id}@customer.example.org"
                if direction == "incoming"
                else "",
                "to_addresses": "",
                "text_body": body,
                "html_body": None,
                "delivery_status": "received"
                if direction == "incoming"
                else "sent"
                if direction == "outgoing"
                else None,
                "delivery_attempts": 1 if direction == "outgoing" else 0,
                "sent_at": at if direction == "outgoing" else None,
                "threaded_by": ("new" if pos == 0 else "reply_token")
                if direction == "incoming"
                else None,
                "created_at": at,
                "updated_at": at,
            }

    timed("messages", Message.__table__, messages())
    events.clear()
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
        rows = {
            t.__tablename__: conn.scalar(select(func.count()).select_from(t.__table__))
            for t in (Inbox, User, InboxMember, Contact, Conversation, Message)
        }
        big_count = conn.scalar(
            select(func.count())
            .select_from(Message.__table__)
            .where(Message.conversation_id == big_id)
        )
        word_share = conn.scalar(
            select(func.count())
            .select_from(Conversation.__table__)
            .where(Conversation.subject.contains(SEARCH_WORD))
        )
    return {
        "rows": rows,
        "seconds": total,
        "timings": timings,
        "big_id": big_id,
        "big_count": big_count,
        "search_matches": word_share,
        "filter_inbox": 1,
    }


# --- timing -----------------------------------------------------------------------------------


class Capture:
    """Every statement the engine sends to the driver while active."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.statements: list[tuple[str, object]] = []

    def __enter__(self) -> Capture:
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.statements.append((statement, parameters))


def _replay(conn, statements) -> None:
    for statement, parameters in statements:
        conn.exec_driver_sql(statement, parameters).fetchall()
    conn.rollback()


def get(app, client, url: str, headers: dict | None = None):
    """One request in its own app context, as a real request runs: nothing cached in `g`
    (Flask-Login's signed-in user, Flask-WTF's token) carries over from the last one."""
    with app.app_context():
        response = client.get(url, headers=headers or {})
        response.get_data()
        return response


def time_page(
    app, client, engine: Engine, url: str, marker: str, htmx: bool = False, before=None
) -> dict:
    """Page requests and the bare replay of its SQL, interleaved; ms per request. `before`
    runs (untimed) ahead of every request, e.g. to make the list version move."""
    headers = {"HX-Request": "true"} if htmx else {}
    before = before or (lambda: None)
    get(app, client, url, headers)  # capture the steady state, not a cold cache
    before()
    with Capture(engine) as capture:
        response = get(app, client, url, headers)
        assert response.status_code == 200, (url, response.status_code)
    statements = [(s, p) for s, p in capture.statements if s.lstrip().upper().startswith("SELECT")]
    main = [(s, p) for s, p in statements if marker in " ".join(s.split())]
    assert main, f"no query with {marker!r} for {url}"
    main = main[:1]
    if os.environ.get("BENCH_UI_EXPLAIN"):
        prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN ANALYZE "
        with engine.connect() as conn:
            plan = conn.exec_driver_sql(prefix + main[0][0], main[0][1]).fetchall()
        print(f"--- {engine.dialect.name} {url}\n{main[0][0]}\n{main[0][1]}", file=sys.stderr)
        for row in plan:
            print("   ", " | ".join(str(c) for c in row), file=sys.stderr)
    ours, bare_main, bare_all = [], [], []
    with engine.connect() as conn:
        for i in range(WARMUPS + N):
            before()
            t0 = time.perf_counter()
            response = get(app, client, url, headers)
            t1 = time.perf_counter()
            _replay(conn, main)
            t2 = time.perf_counter()
            _replay(conn, statements)
            t3 = time.perf_counter()
            if i >= WARMUPS:
                ours.append((t1 - t0) * 1000)
                bare_main.append((t2 - t1) * 1000)
                bare_all.append((t3 - t2) * 1000)
    return {
        "queries": len(statements),
        "ours": ours,
        "main": bare_main,
        "all": bare_all,
        "bytes": len(response.get_data()),
    }


def time_idle_poll(app, client, engine: Engine) -> dict:
    """The list's 5 s poll when nothing changed (204) against a bare Redis GET of the same
    version key ("main"), and that GET plus the request's only SQL, the signed-in
    session's lookup, replayed bare ("all"), interleaved: what one idle agent costs."""
    from extensions import get_redis
    from services import list_version

    page = get(app, client, "/conversations").get_data(as_text=True)
    fp = page.split('name="fp" value="', 1)[1].split('"', 1)[0]
    url = f"/conversations/updates?v={list_version.current()}&fp={fp}"
    headers = {"HX-Request": "true"}
    with Capture(engine) as capture:
        assert get(app, client, url, headers).status_code == 204
    statements = [(s, p) for s, p in capture.statements if s.lstrip().upper().startswith("SELECT")]
    redis = get_redis()
    ours, bare, bare_all = [], [], []
    with engine.connect() as conn:
        for i in range(WARMUPS + N * 10):
            t0 = time.perf_counter()
            response = get(app, client, url, headers)
            t1 = time.perf_counter()
            redis.get(list_version.KEY)
            t2 = time.perf_counter()
            redis.get(list_version.KEY)
            _replay(conn, statements)
            t3 = time.perf_counter()
            assert response.status_code == 204, response.status_code
            if i >= WARMUPS:
                ours.append((t1 - t0) * 1000)
                bare.append((t2 - t1) * 1000)
                bare_all.append((t3 - t2) * 1000)
    return {
        "url": url.split("?")[0] + "?v=…",
        "queries": len(statements),
        "ours": ours,
        "main": bare,
        "all": bare_all,
        "bytes": 0,
    }


def bench_session(user_id: int) -> str:
    """A live session row for `user_id`; returns the id its cookie carries."""
    from datetime import timedelta

    from extensions import db
    from models import UserSession, utcnow
    from services.sessions import hash_token

    token = "bench-session-token"
    db.session.add(
        UserSession(
            token_hash=hash_token(token),
            user_id=user_id,
            expires_at=utcnow() + timedelta(days=1),
        )
    )
    db.session.commit()
    return token


def bench_backend(database_url: str, redis_url: str, work: Path) -> tuple[dict, dict]:
    from flask_migrate import upgrade

    from app import create_app
    from extensions import db
    from services import list_version

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
            upgrade()
            engine = db.engine
            seeded = seed(engine)
            client = app.test_client()
            with client.session_transaction() as session:
                # The admin (sees every inbox), signed in through a server-side session.
                session["_user_id"] = bench_session(user_id=1)
                session["_fresh"] = True
            pages = {
                "first list page": ("/conversations", "JOIN contacts"),
                "first list page right after any change (sidebar counts recounted)": (
                    "/conversations",
                    "JOIN contacts",
                    False,
                    list_version.bump,
                ),
                "filtered list page": (
                    f"/conversations?status=open&assignee=unassigned"
                    f"&inbox_id={seeded['filter_inbox']}",
                    "JOIN contacts",
                ),
                "search": (f"/conversations?q={SEARCH_WORD}", "JOIN contacts"),
                f"{BIG_THREAD}-message thread, full page with the list": (
                    f"/conversations/{seeded['big_id']}",
                    "WHERE messages.conversation_id = ",
                ),
                f"{BIG_THREAD}-message thread, htmx fragment (a click in the list)": (
                    f"/conversations/{seeded['big_id']}",
                    "WHERE messages.conversation_id = ",
                    True,
                ),
            }
            results = {
                name: {"url": spec[0], **time_page(app, client, engine, *spec)}
                for name, spec in pages.items()
            }
            results["idle list poll"] = time_idle_poll(app, client, engine)
        finally:
            db.session.remove()
            db.engine.dispose()
    return seeded, results


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
    return lines


def run() -> str:
    os.environ["ENV_FILE"] = os.devnull  # measure defaults, not the developer's .env
    sections = []
    with tempfile.TemporaryDirectory(prefix="threadline-bench-ui-") as tmp:
        work = Path(tmp)
        from runtime.embedded_redis import EmbeddedRedis

        with EmbeddedRedis(str(work / "redis.sock"), str(work / "redis")) as redis_server:
            sqlite_url = "sqlite:///" + str(work / "bench.db")
            sections += _section("SQLite", *bench_backend(sqlite_url, redis_server.url, work))
            found = _postgres_database()
            if found is None:
                sections += ["### PostgreSQL", "", "Skipped: no server at BENCH_POSTGRES_URL.", ""]
            else:
                base_url, admin = found
                name = f"threadline_bench_{uuid.uuid4().hex[:10]}"
                with admin.connect() as conn:
                    conn.execute(text(f'CREATE DATABASE "{name}"'))
                try:
                    url = make_url(base_url).set(database=name)
                    sections += _section(
                        f"PostgreSQL {_server_version(admin)}",
                        *bench_backend(
                            url.render_as_string(hide_password=False), redis_server.url, work
                        ),
                    )
                finally:
                    with admin.connect() as conn:
                        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                    admin.dispose()
    header = [
        "## Agent UI on a big mailbox",
        "",
        f"{CONVERSATIONS:,} conversations with {MESSAGES:,} messages (25% open), seeded "
        "with Core bulk inserts on the real migrated schema. Server side through the Flask "
        "test client as an admin signed in through a server-side session, each request in "
        "its own app context as in production (so the session lookup is paid every time), "
        f"ms per request, p50/p95 of {N} requests after {WARMUPS} "
        "warm-ups. The list pages default to status=open. Baseline: the SQL the request "
        "issued, captured at the driver and replayed bare on one connection in the same "
        "loop: the page's main SELECT (the list query; the thread's messages select), and "
        "every statement of the request. The idle list poll (what each signed-in agent "
        f"sends every 5 s while nothing changes; {N * 10} requests) issues one SQL "
        "statement, the session lookup: its main baseline is a bare Redis GET of the same "
        "version key, its all-SQL baseline that GET plus the lookup replayed. The sidebar "
        "counts are cached per list version, so a list page pays for counting every open "
        "conversation only on the first load after something changed: that row moves the "
        "version before each request.",
        "",
    ]
    return "\n".join(header + sections)


def _server_version(admin: Engine) -> str:
    with admin.connect() as conn:
        return str(conn.scalar(text("SHOW server_version"))).split()[0]


if __name__ == "__main__":
    print(run())
