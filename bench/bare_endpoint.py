"""WSGI entry for bench/ingress.py: the real app, plus a "durable bare" `/bare` endpoint.

`gunicorn bench.bare_endpoint:application` serves both from the same workers, so the
baseline pays the same HTTP parsing, threads and sockets as the app. A POST to `/bare` does
the least any ingress must do before it may answer 2xx and still lose nothing, written
directly against the standard library and redis-py, with no framework in between:

- read the body and SHA-1 it;
- write it to a content-addressed file: temp file, write, fsync, rename, fsync the directory
  (and its parent, the first time a directory is made);
- record it with one INSERT and one commit in its own SQLite database (WAL, the app's pragmas,
  a unique checksum column so a repeat is one row);
- push one entry onto a Redis list (its "job").

So the ratio in BENCHMARKS.md is the price of everything the app does beyond that minimum:
Flask, the ORM, RQ's job record, the duplicate rules. A GET answers 204 doing nothing, so the
server can be probed for readiness without writing.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import tempfile
import threading
from pathlib import Path

from redis import Redis

from bench.ingress_server import BARE_PATH, BARE_QUEUE, bare_dir
from wsgi import app as threadline

CHUNK = 64 * 1024
_local = threading.local()
_redis: dict[int, Redis] = {}  # per process: gunicorn --preload forks after import


def bare_root() -> Path:
    return bare_dir(Path(os.environ.get("INSTANCE_PATH") or tempfile.gettempdir()))


def bare_database() -> Path:
    return bare_root() / "bare.db"


def _connection() -> sqlite3.Connection:
    """One SQLite connection per thread, with the pragmas the app's engine sets (extensions.py)."""
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = sqlite3.connect(bare_database(), timeout=10)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=10000")
        _local.conn = conn
    return conn


def _redis_client() -> Redis:
    pid = os.getpid()
    if pid not in _redis:
        _redis[pid] = Redis.from_url(os.environ["REDIS_URL"], socket_connect_timeout=5)
    return _redis[pid]


def _create_schema() -> None:
    bare_root().mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(bare_database()) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS received ("
            "id INTEGER PRIMARY KEY, checksum TEXT NOT NULL UNIQUE, size INTEGER NOT NULL)"
        )
    conn.close()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _store(body: bytes, checksum: str) -> None:
    directory = bare_root() / "files" / checksum[:2]
    if not directory.is_dir():  # a new directory is durable once its parent is fsynced
        directory.mkdir(parents=True, exist_ok=True)
        _fsync_dir(directory.parent)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    with os.fdopen(fd, "wb") as out:
        out.write(body)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, directory / f"{checksum}.eml")
    _fsync_dir(directory)


def bare(environ, start_response):
    """POST: hash, store durably, commit one row, push one entry, answer 204."""
    if environ.get("REQUEST_METHOD") != "POST":
        start_response("204 No Content", [])
        return [b""]
    stream = environ["wsgi.input"]
    remaining = int(environ.get("CONTENT_LENGTH") or 0)
    sha1, chunks = hashlib.sha1(), []
    while remaining > 0:
        chunk = stream.read(min(CHUNK, remaining))
        if not chunk:
            break
        sha1.update(chunk)
        chunks.append(chunk)
        remaining -= len(chunk)
    body, checksum = b"".join(chunks), sha1.hexdigest()
    _store(body, checksum)
    conn = _connection()
    conn.execute(
        "INSERT INTO received (checksum, size) VALUES (?, ?) ON CONFLICT DO NOTHING",
        (checksum, len(body)),
    )
    conn.commit()
    _redis_client().rpush(BARE_QUEUE, checksum)
    start_response("204 No Content", [])
    return [b""]


def application(environ, start_response):
    if environ.get("PATH_INFO") == BARE_PATH:
        return bare(environ, start_response)
    return threadline(environ, start_response)


_create_schema()  # in gunicorn's master (--preload), before the workers fork
