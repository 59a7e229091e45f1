"""What /readyz answers: `flask doctor`'s database, Redis and storage checks, with a deadline.

The three run at once, each in its own thread, and the answer waits at most TIMEOUT
seconds: a server that accepts the connection and then never replies must not hold a load
balancer's probe (or a web worker) for the driver's own timeout, which can be minutes. A
check still stuck from an earlier probe is reported as such and not started a second time,
so a hung server costs one waiting thread per check, never one per probe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from flask import Flask, current_app
from redis import Redis

from extensions import get_settings
from services.health import FAIL, Check
from services.health_servers import check_database, check_redis, check_storage

TIMEOUT = 3.0  # seconds for the three together; load balancers commonly give up after 5
READY_CHECKS = ("database", "redis", "storage")

_lock = threading.Lock()


class _Probe(threading.Thread):
    """One check run in an app context; daemon, so a hung server never blocks shutdown."""

    def __init__(self, app: Flask, check_name: str, run: Callable[[], Check]) -> None:
        super().__init__(name=f"readyz-{check_name}", daemon=True)
        self.app, self.check_name, self.run_check = app, check_name, run
        self.started_at = time.monotonic()
        self.result: Check | None = None

    def run(self) -> None:
        with self.app.app_context():
            try:
                self.result = self.run_check()
            except Exception as exc:  # a check that raises is a failed check, not a 500
                self.result = Check(self.check_name, FAIL, f"{type(exc).__name__}: {exc}")


def _probe_redis() -> Redis:
    """A client of its own whose connect and reads give up within TIMEOUT (the app's pool
    waits for replies without a limit, which suits long blocking worker commands)."""
    ext = current_app.extensions
    if "threadline.redis.probe" not in ext:
        ext["threadline.redis.probe"] = Redis.from_url(
            get_settings().effective_redis_url,
            socket_connect_timeout=TIMEOUT,
            socket_timeout=TIMEOUT,
        )
    return ext["threadline.redis.probe"]


def readiness_checks(timeout: float | None = None) -> list[Check]:
    """Database (reachable, schema current), Redis (PING) and storage (a probe object
    written, read back, deleted), in that order; a check without an answer in time FAILs."""
    timeout = TIMEOUT if timeout is None else timeout
    app = current_app._get_current_object()
    settings = get_settings()
    redis = _probe_redis()
    checks: dict[str, Callable[[], Check]] = {
        "database": lambda: check_database(settings),
        "redis": lambda: check_redis(settings, redis)[0],
        "storage": check_storage,
    }
    with _lock:
        running: dict[str, _Probe] = app.extensions.setdefault("threadline.readiness", {})
        for name in READY_CHECKS:
            previous = running.get(name)
            if previous is None or not previous.is_alive():
                running[name] = _Probe(app, name, checks[name])
                running[name].start()
        probes = [running[name] for name in READY_CHECKS]
    deadline = time.monotonic() + timeout
    results = []
    for probe in probes:
        probe.join(max(0.0, deadline - time.monotonic()))
        if probe.result is not None:
            results.append(probe.result)
            continue
        waited = time.monotonic() - probe.started_at
        results.append(
            Check(
                probe.check_name,
                FAIL,
                f"no answer within {timeout:g} s (the check has been waiting {waited:.0f} s)",
                "check that the server is up and answering; flask doctor shows more",
            )
        )
    return results
