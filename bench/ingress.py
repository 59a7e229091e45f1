"""Benchmark the relay ingress under gunicorn against a durable bare endpoint on the same server.

One gunicorn (2 workers x 4 threads, `--preload`, as `make run` starts it) serves
`bench.bare_endpoint:application`: the real app, plus `/bare`, which does the minimum an
ingress must do before a 2xx (SHA-1, fsynced file + rename + directory fsync, one SQLite WAL
commit, one Redis push) with no framework. Eight keep-alive clients post the same distinct
MIME messages to both, in alternating rounds, so drift (page cache, GC, WAL checkpoints, the
other processes on the box) hits both. The messages come from bench/corpus/mime.py, the
server from bench/ingress_server.py.
"""

from __future__ import annotations

import base64
import http.client
import math
import os
import random
import sqlite3
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from redis import Redis

from bench.corpus.mime import sized_messages
from bench.ingress_server import (
    BARE_PATH,
    BARE_QUEUE,
    PASSWORD,
    THREADS,
    WORKERS,
    bare_dir,
    running_server,
)
from ingress.paths import PATHS

INGRESS_PATH = PATHS["relay"]
CLIENTS = 8
WARMUP = 16  # 5 KB messages to each endpoint before measuring
# (label, target size in bytes, messages per endpoint, alternating rounds)
SIZES = (
    ("5 KB", 5 * 1024, 800, 8),
    ("50 KB", 50 * 1024, 400, 8),
    ("2 MB", 2 * 1024 * 1024, 64, 4),
)


# --- the clients ----------------------------------------------------------------------------


class Clients:
    """CLIENTS threads, each with its own keep-alive HTTP connection to the server."""

    def __init__(self, port: int):
        self.port = port
        self.pool = ThreadPoolExecutor(CLIENTS, thread_name_prefix="bench-client")
        self.local = threading.local()
        self.connections: list[http.client.HTTPConnection] = []
        self.lock = threading.Lock()
        self.reconnects = 0
        token = base64.b64encode(f"actionmailbox:{PASSWORD}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "Content-Type": "message/rfc822"}

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            self.local.conn = conn
            with self.lock:
                self.connections.append(conn)
        return conn

    def post(self, path: str, body: bytes) -> float:
        """POST one message; return its latency in seconds. Anything but 204 is an error."""
        for attempt in (1, 2):
            conn = self._connection()
            started = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers=self.headers)
                response = conn.getresponse()
                text = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closed an idle keep-alive connection: reconnect once. A repeated
                # post of the same message is deduplicated by the app, so counts still hold.
                conn.close()
                with self.lock:
                    self.reconnects += 1
                if attempt == 2:
                    raise
                continue
            elapsed = time.perf_counter() - started
            if response.status != 204:
                raise RuntimeError(f"POST {path} answered {response.status}: {text[:300]!r}")
            return elapsed
        raise AssertionError("unreachable")

    def round(self, path: str, bodies: list[bytes]) -> tuple[float, list[float]]:
        """Post every body concurrently; return (wall seconds, per-request latencies)."""
        started = time.perf_counter()
        latencies = list(self.pool.map(lambda body: self.post(path, body), bodies))
        return time.perf_counter() - started, latencies

    def close(self) -> None:
        self.pool.shutdown()
        for conn in self.connections:
            conn.close()


@dataclass
class Side:
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def add(self, result: tuple[float, list[float]]) -> None:
        self.seconds += result[0]
        self.latencies.extend(result[1])

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile_ms(self, p: float) -> float:
        """Nearest-rank percentile in milliseconds."""
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] * 1000


@dataclass
class Result:
    label: str
    count: int
    mean_size: int
    rounds: int
    ours: Side
    bare: Side


def _measure(clients: Clients, label: str, bodies: list[bytes], rounds: int) -> Result:
    ours, bare = Side(), Side()
    per_round = math.ceil(len(bodies) / rounds)
    for index in range(rounds):
        batch = bodies[index * per_round : (index + 1) * per_round]
        order = [(ours, INGRESS_PATH), (bare, BARE_PATH)]
        if index % 2:
            order.reverse()  # alternate who goes first, so neither always runs warmer
        for side, path in order:
            side.add(clients.round(path, batch))
    mean_size = sum(map(len, bodies)) // len(bodies)
    return Result(label, len(bodies), mean_size, rounds, ours, bare)


def _check_nothing_lost(db_path: Path, redis: Redis, posted: int) -> tuple[int, int]:
    """Every message answered 204 is a pending row with its job queued in Redis, and the
    baseline recorded and pushed each of its own just as often."""
    with sqlite3.connect(db_path) as conn:
        rows, pending = conn.execute(
            "SELECT count(*), sum(status = 'pending') FROM inbound_emails"
        ).fetchone()
    conn.close()
    queued = redis.llen("rq:queue:inbound")
    if rows != posted or pending != posted or queued != posted:
        raise RuntimeError(
            f"posted {posted} messages to the app but found {rows} rows "
            f"({pending} pending) and {queued} queued jobs"
        )
    with sqlite3.connect(bare_dir(db_path.parent) / "bare.db") as conn:
        (bare_rows,) = conn.execute("SELECT count(*) FROM received").fetchone()
    conn.close()
    bare_pushed = redis.llen(BARE_QUEUE)
    if bare_rows != posted or bare_pushed != posted:
        raise RuntimeError(
            f"posted {posted} messages to {BARE_PATH} but found {bare_rows} rows "
            f"and {bare_pushed} pushed entries"
        )
    return rows, queued


# --- the report -----------------------------------------------------------------------------


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.2f} MiB" if n >= 1024 * 1024 else f"{n / 1024:.1f} KiB"


def _rows(r: Result) -> list[str]:
    o, b = r.ours, r.bare
    first = f"{r.label} (mean {_size(r.mean_size)}, {r.count} msgs, {r.rounds} rounds)"
    return [
        f"| {first} | messages/s | {o.rate:.1f} | {b.rate:.1f} | {o.rate / b.rate:.0%} |",
        *(
            f"| | p{p} latency (ms) | {o.percentile_ms(p):.1f} | {b.percentile_ms(p):.1f} "
            f"| {o.percentile_ms(p) / b.percentile_ms(p):.2f}x |"
            for p in (50, 99)
        ),
    ]


def run() -> str:
    """Start Redis + gunicorn, post every size to the app and to /bare; return Markdown."""
    started = time.perf_counter()
    rng = random.Random(20261122)
    warmup = sized_messages(rng, 5 * 1024, WARMUP)
    workload = [(label, sized_messages(rng, size, n), rounds) for label, size, n, rounds in SIZES]
    with tempfile.TemporaryDirectory(prefix="threadline-bench-") as tmp:
        with running_server(Path(tmp)) as (port, db_path, redis):
            clients = Clients(port)
            try:
                clients.round(INGRESS_PATH, warmup)
                clients.round(BARE_PATH, warmup)
                results = [_measure(clients, *item) for item in workload]
            finally:
                clients.close()
            posted = WARMUP + sum(len(bodies) for _, bodies, _ in workload)
            rows, queued = _check_nothing_lost(db_path, redis, posted)
    elapsed = time.perf_counter() - started
    lines = [
        "## Inbound email ingress",
        "",
        (
            f"Distinct MIME messages (text part + base64 attachment, unique Message-IDs) "
            f"POSTed by {CLIENTS} concurrent keep-alive clients to one gunicorn "
            f"({WORKERS} workers x {THREADS} threads, `--preload`) on 127.0.0.1. **Ours** is "
            f"the relay ingress (`{INGRESS_PATH}`, Basic auth, `message/rfc822`): spool + SHA-1, "
            "raw bytes fsynced to LocalStorage, the InboundEmail row written to SQLite (WAL) by "
            "one auto-committed `INSERT … ON CONFLICT DO NOTHING`, the processing job enqueued "
            "in the embedded Redis only if none of its id exists (RQ's atomic unique enqueue). "
            "**Baseline** is the durable bare "
            f"endpoint `{BARE_PATH}` on the same server and workers (bench/bare_endpoint.py, no "
            "framework): SHA-1, file write + fsync + rename + directory fsync, one INSERT and "
            "commit in its own SQLite database (WAL), one Redis push. Each message is posted "
            f"once to each, in alternating rounds (after {WARMUP} warm-up posts each); every "
            "answer was checked to be 204."
        ),
        "",
        (
            "Ratio: ours as a share of the baseline's rate for messages/s (target ≥ 60 % at "
            "5 KB and 50 KB), ours/baseline for latency (target p99 ≤ 2x). p99 is nearest-rank, "
            "so with few messages it is close to the maximum."
        ),
        "",
        "| size | metric | ours | baseline | ratio |",
        "| --- | --- | ---: | ---: | ---: |",
        *(row for result in results for row in _rows(result)),
        "",
        (
            f"Nothing lost: {rows} InboundEmail rows, all pending, and {queued} jobs queued "
            f"for {posted} messages posted to the app (and as many rows and pushes for "
            f"{BARE_PATH}). No worker runs during the benchmark: "
            "jobs only queue in Redis, so this measures acknowledging a message, not "
            "processing it. The clients share the machine's cores with the server "
            f"({os.cpu_count()} here); whole run {elapsed:.0f} s."
        ),
    ]
    if clients.reconnects:
        lines.append(f"Clients reconnected {clients.reconnects} time(s) after idle closes.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run())
