"""The agent UI benchmark's timed loops: a page against the SQL it issued, replayed bare.

Both sides run interleaved in one loop, so drift hits them alike; bench/ui.py sets up the
mailbox and writes the report.
"""

from __future__ import annotations

import os
import sys
import time

from sqlalchemy import event
from sqlalchemy.engine import Engine

N = 30
WARMUPS = 3


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


def _reads(statements: list) -> list:
    """The statements that read (a search's list query opens with WITH), and the settings
    some are planned under (PostgreSQL's SET LOCAL, services/search.py): replayed in one
    transaction, as the request ran them."""
    kinds = ("SELECT", "WITH", "SET ")
    return [(s, p) for s, p in statements if s.lstrip().upper().startswith(kinds)]


def _replay(conn, statements) -> None:
    for statement, parameters in statements:
        result = conn.exec_driver_sql(statement, parameters)
        if result.returns_rows:
            result.fetchall()
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
    statements = _reads(capture.statements)
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
    statements = _reads(capture.statements)
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
