"""The shipped configuration timed end to end, for bench/process.py: mail POSTed to the relay
ingress of gunicorn started with the Procfile's `web` options, delivered by `python worker.py`
processes started as the Procfile and the systemd units start them (1 or 2 of them; or with
`--fork`, the opt-in).

Each run gets a fresh instance (embedded Redis, migrated SQLite, local storage, the support
inbox), so every run starts from the same empty database. Two ways to time it:

- **end to end**: the workers are started first and wait, registered with RQ (the app built);
  the clock runs from the first POST until every row has settled (delivered, bounced or
  failed), polled every POLL seconds. The ingress shares the cores with the workers.
- **queued first**: everything is POSTed with no worker running, then the workers start; the
  clock runs from the first row a worker claims until every row has settled: the workers'
  rate alone, without their start-up and without the ingress beside them.

Also measured, end to end: the CPU time the worker processes used from registered to stopped
(their work horses included: reaped children count) per message.
"""

from __future__ import annotations

import base64
import http.client
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.processes import free_port, gunicorn, spawn, stop, wait_until_serving
from ingress.paths import PATHS

RELAY_PATH = PATHS["relay"]
CLIENTS = 4  # concurrent keep-alive clients posting
POLL = 0.05  # seconds between looks at the rows' statuses
WEB_WORKERS, WEB_THREADS = 2, 4  # the settings' default WEB_CONCURRENCY and the Procfile's
SETTLED = ("delivered", "bounced", "failed", "refused")
# Everything Settings reads is dropped from the inherited environment: the config only.
_KEEP_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")


@dataclass
class Timing:
    label: str
    processes: int
    messages: int
    seconds: float
    cpu_seconds: float | None  # end to end only: from registered to stopped
    statuses: dict[str, int]

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def cpu_ms_per_message(self) -> float | None:
        if self.cpu_seconds is None:
            return None
        return self.cpu_seconds * 1000 / self.messages


@dataclass
class Instance:
    port: int
    env: dict[str, str]
    db_path: Path
    work: Path
    password: str


def _env(config: dict) -> dict[str, str]:
    env = {name: os.environ[name] for name in _KEEP_ENV if name in os.environ}
    env.update({name: str(value) for name, value in config.items()})
    env.update(ENV_FILE=os.devnull, PYTHONUNBUFFERED="1")
    return env


@contextmanager
def shipped_instance(work: Path, config_for) -> Iterator[Instance]:
    """Embedded Redis, migrated SQLite with the support inbox, and gunicorn serving `wsgi:app`
    with the Procfile's options; `config_for(work, redis_url)` gives the settings."""
    from flask_migrate import upgrade

    from app import create_app
    from bench.corpus.load import seed_support_inbox
    from extensions import db
    from runtime.embedded_redis import EmbeddedRedis

    with EmbeddedRedis(str(work / "redis.sock"), str(work / "redis")) as redis_server:
        config = config_for(work, redis_server.url)
        app = create_app(config)
        with app.app_context():
            upgrade()
            seed_support_inbox()
            db.session.remove()
            db.engine.dispose()
        env = _env(config)
        port = free_port()
        log = work / "web.log"
        options = ("--graceful-timeout", "10", "--access-logfile", "-")
        web = spawn(gunicorn("wsgi:app", port, WEB_WORKERS, WEB_THREADS, *options), env, log)
        try:
            wait_until_serving(port, web, log)
            yield Instance(
                port,
                env,
                Path(config["INSTANCE_PATH"]) / "threadline.db",
                work,
                str(config["INBOUND_EMAIL_PASSWORD"]),
            )
        finally:
            stop(web)


class Workers:
    """`python worker.py [--fork]` processes, each in a session of its own as a service
    manager starts it; their CPU time (children included) counted when they stop."""

    def __init__(self, instance: Instance, count: int, fork: bool):
        self.instance, self.count, self.fork = instance, count, fork
        self.procs: list[subprocess.Popen] = []

    def start(self) -> None:
        for n in range(self.count):
            command = [sys.executable, "worker.py", *(["--fork"] if self.fork else [])]
            log = self.instance.work / f"worker-{n}.log"
            self.procs.append(spawn(command, self.instance.env, log))

    def wait_until_listening(self, redis_url: str) -> None:
        """Until each has registered with RQ: its app is built and it waits for jobs."""
        from redis import Redis
        from rq import Worker

        connection = Redis.from_url(redis_url)
        pids = {p.pid for p in self.procs}
        deadline = time.monotonic() + 60
        try:
            while time.monotonic() < deadline:
                if {w.pid for w in Worker.all(connection=connection)} >= pids:
                    return
                for proc in self.procs:
                    if proc.poll() is not None:
                        raise RuntimeError(f"a worker exited at start:\n{self.logs()}")
                time.sleep(0.1)
        finally:
            connection.close()
        raise RuntimeError(f"the workers did not register:\n{self.logs()}")

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in self.procs:
            with suppress(psutil.NoSuchProcess):
                times = psutil.Process(proc.pid).cpu_times()
                total += times.user + times.system + times.children_user
                total += times.children_system
        return total

    def stop(self) -> float:
        """Stop them (RQ's warm shutdown); their CPU seconds, read just before."""
        used = self.cpu_seconds()
        for proc in self.procs:
            stop(proc)
        return used

    def logs(self) -> str:
        return "\n".join(
            path.read_text(errors="replace")[-2000:]
            for path in sorted(self.instance.work.glob("worker-*.log"))
        )


def _post_all(instance: Instance, messages: list[bytes]) -> None:
    token = base64.b64encode(f"actionmailbox:{instance.password}".encode()).decode()
    headers = {"Authorization": f"Basic {token}", "Content-Type": "message/rfc822"}
    connections: dict[int, http.client.HTTPConnection] = {}

    def post(raw: bytes) -> None:
        key = threading.get_ident()
        conn = connections.get(key)
        if conn is None:
            conn = connections[key] = http.client.HTTPConnection(
                "127.0.0.1", instance.port, timeout=120
            )
        conn.request("POST", RELAY_PATH, body=raw, headers=headers)
        response = conn.getresponse()
        text = response.read()
        if response.status != 204:
            raise RuntimeError(f"the relay ingress answered {response.status}: {text[:300]!r}")

    try:
        with ThreadPoolExecutor(CLIENTS, thread_name_prefix="bench-post") as pool:
            list(pool.map(post, messages))
    finally:
        for conn in connections.values():
            conn.close()


def _statuses(db_path: Path) -> dict[str, int]:
    with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)) as conn:
        rows = conn.execute("SELECT status, count(*) FROM inbound_emails GROUP BY status")
        return dict(rows.fetchall())


def _wait(db_path: Path, done, what: str, timeout: float) -> float:
    """Poll the rows until `done(statuses)`; the perf_counter time it first held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done(_statuses(db_path)):
            return time.perf_counter()
        time.sleep(POLL)
    raise RuntimeError(f"{what} within {timeout:.0f} s: {_statuses(db_path)}")


def timed_run(
    work: Path,
    config_for,
    messages: list[bytes],
    processes: int,
    fork: bool = False,
    queued_first: bool = False,
) -> Timing:
    """One run on a fresh instance; see the module's docstring for the two ways."""
    count = len(messages)

    def settled(statuses: dict[str, int]) -> bool:
        return sum(statuses.get(s, 0) for s in SETTLED) >= count

    def claimed(statuses: dict[str, int]) -> bool:
        return sum(n for s, n in statuses.items() if s != "pending") > 0

    kind = f"{processes} × `python worker.py{' --fork' if fork else ''}`"
    label = f"{kind}, {'queued first' if queued_first else 'end to end'}"
    limit = 60 + count * (1.0 if fork else 0.3)  # generous: a stuck run fails, not hangs
    with shipped_instance(work, config_for) as instance:
        workers = Workers(instance, processes, fork)
        redis_url = instance.env["REDIS_URL"]
        idle_cpu = None
        try:
            if queued_first:
                _post_all(instance, messages)
                workers.start()
                started = _wait(instance.db_path, claimed, "no row claimed", 120)
            else:
                workers.start()
                workers.wait_until_listening(redis_url)
                idle_cpu = workers.cpu_seconds()
                started = time.perf_counter()
                _post_all(instance, messages)
            ended = _wait(instance.db_path, settled, "not every row settled", limit)
        finally:
            cpu = workers.stop()
        statuses = _statuses(instance.db_path)
    used = None if idle_cpu is None else cpu - idle_cpu
    return Timing(label, processes, count, ended - started, used, statuses)
