"""The ingress benchmark's server: embedded Redis, migrated SQLite and one gunicorn.

Started as `make run` starts it (`--preload`), serving bench/bare_endpoint.py, so the app
and the bare baseline share the same workers.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from redis import Redis

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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


def _wait_until_serving(port: int, process: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited at start:\n{log.read_text()[-3000:]}")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", BARE_PATH)
            if conn.getresponse().status == 204:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not answer within {timeout:.0f}s:\n{log.read_text()[-3000:]}")


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
        port = _free_port()
        log = work / "gunicorn.log"
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(WORKERS),
            "--threads",
            str(THREADS),
            "--keep-alive",
            "30",  # idle keep-alive clients between rounds must not be dropped
            "--preload",
            "--no-control-socket",
            "--log-level",
            "warning",
            "bench.bare_endpoint:application",
        ]
        with open(log, "wb") as log_fh:
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        redis = Redis.from_url(redis_server.url)
        try:
            _wait_until_serving(port, process, log, timeout=30)
            yield port, work / "instance" / "threadline.db", redis
        finally:
            redis.close()
            _stop(process)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.terminate()  # gunicorn's graceful stop: workers finish, then exit
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # our own session: master + workers
        process.wait()
