"""Processes as a service manager starts them, for the benchmarks that time the shipped
configuration: each in a session of its own (a stop reaches its children too), its output
appended to a log file that an error message quotes."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spawn(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def gunicorn(app: str, port: int, workers: int, threads: int, *options: str) -> list[str]:
    """gunicorn on 127.0.0.1:port as the Procfile runs it (`--preload`), plus `options`."""
    return [
        *(sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}"),
        *("--workers", str(workers), "--threads", str(threads)),
        *("--preload", "--no-control-socket", *options, app),
    ]


def wait_until_serving(
    port: int,
    process: subprocess.Popen,
    log: Path,
    path: str = "/healthz",
    status: int | None = None,
    timeout: float = 60,
) -> None:
    """Until GET `path` answers (with `status`, when given)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited at start:\n{log.read_text()[-3000:]}")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", path)
            if status is None or conn.getresponse().status == status:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not answer within {timeout:.0f}s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen, grace: float = 30) -> None:
    """A worker's warm shutdown, gunicorn's graceful stop; after `grace`, SIGKILL to its
    session: it and its children."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
