"""The ingress benchmark's server: embedded Redis, migrated SQLite and one gunicorn.

Started as `make run` starts it (`--preload`), serving bench/bare_endpoint.py, so the app
and the bare baseline share the same workers.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from redis import Redis

from bench.processes import free_port, gunicorn, spawn, stop, wait_until_serving
from runtime.embedded_redis import EmbeddedRedis

ROOT = Path(__file__).resolve().parent.parent
BARE_PATH = "/bare"
BARE_QUEUE = "bench:bare"  # the Redis list the durable bare endpoint pushes its entries onto
PASSWORD = "bench-ingress-password"
WORKERS = 2
THREADS = 4
# Everything Settings reads is dropped from the inherited environment: defaults only.
_KEEP_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "VIRTUAL_ENV")


def bare_dir(instance: Path) -> Path:
    """Where the durable bare endpoint keeps its files and database: in the app's instance."""
    return instance / "bare"


def _server_env(work: Path, redis_url: str) -> dict[str, str]:
    env = {name: os.environ[name] for name in _KEEP_ENV if name in os.environ}
    env.update(
        ENV_FILE=os.devnull,
        SECRET_KEY="bench-secret-key-0123456789abcdef",
        INBOUND_EMAIL_PASSWORD=PASSWORD,
        REDIS_URL=redis_url,
        INSTANCE_PATH=str(work / "instance"),
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    return env


@contextmanager
def running_server(work: Path) -> Iterator[tuple[int, Path, Redis]]:
    """Embedded Redis + migrated SQLite + one gunicorn; yield (port, db path, redis)."""
    with EmbeddedRedis(str(work / "redis.sock"), str(work / "redis")) as redis_server:
        env = _server_env(work, redis_server.url)
        subprocess.run(
            [sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        port = free_port()
        log = work / "gunicorn.log"
        # Idle keep-alive clients between rounds must not be dropped.
        options = ("--keep-alive", "30", "--log-level", "warning")
        command = gunicorn("bench.bare_endpoint:application", port, WORKERS, THREADS, *options)
        process = spawn(command, env, log)
        redis = Redis.from_url(redis_server.url)
        try:
            wait_until_serving(port, process, log, BARE_PATH, status=204, timeout=30)
            yield port, work / "instance" / "threadline.db", redis
        finally:
            redis.close()
            stop(process, grace=15)
