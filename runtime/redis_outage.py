"""Waiting out a Redis outage in a long-running process (worker.py's worker and cron scheduler).

Without Redis they can do nothing, but exiting only makes a supervisor restart them in a loop
(or leaves them dead). So each says once that Redis is unreachable, pings it with backoff, says
once that it answers again, and carries on; SIGTERM or SIGINT during the wait is a clean stop.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType
from urllib.parse import urlsplit

from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

# What a Redis client raises when the server is away (other errors are bugs, not outages).
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)
FIRST_DELAY = 1.0
MAX_DELAY = 15.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

log = logging.getLogger(__name__)


def public_url(url: str) -> str:
    """The Redis URL fit for a log line: no password, no query string (it may hold one)."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    return f"{parts.scheme}://{netloc}{parts.path}"


class RedisOutage:
    """One outage of the Redis at `url`, as lived by `who` ("worker", "cron scheduler").

    begin() logs the one warning and takes over SIGTERM/SIGINT (the process' own handlers
    would raise into code that is unwinding); wait() pings until Redis answers, then hands the
    signals back. Both may be called again for the next outage."""

    def __init__(self, url: str, who: str):
        self.url = url
        self.who = who
        self.lost_at: float | None = None
        self._stop = threading.Event()
        self._handlers: dict[int, object] = {}

    def begin(self, error: BaseException) -> None:
        if self.lost_at is not None:
            return
        self.lost_at = time.monotonic()
        self._stop.clear()
        for signum in STOP_SIGNALS:
            self._handlers[signum] = signal.signal(signum, self._request_stop)
        log.warning(
            "Redis at %s is unreachable (%s): the %s waits and reconnects (retrying every "
            "%.0f to %.0f s)",
            public_url(self.url),
            error,
            self.who,
            FIRST_DELAY,
            MAX_DELAY,
        )

    def _request_stop(self, signum: int, frame: FrameType | None) -> None:
        self._stop.set()

    def wait(self) -> bool:
        """Ping with backoff until Redis answers (True) or a stop signal comes (False)."""
        assert self.lost_at is not None, "begin() first"
        # A client of its own: no retries of its own, short timeouts, so a stop is prompt.
        client = Redis.from_url(
            self.url, socket_connect_timeout=2, socket_timeout=2, retry=Retry(NoBackoff(), 0)
        )
        delay = FIRST_DELAY
        try:
            while not self._stop.wait(delay):
                if _answers(client):
                    log.info(
                        "Redis at %s answers again after %.0f s: the %s resumes",
                        public_url(self.url),
                        time.monotonic() - self.lost_at,
                        self.who,
                    )
                    return True
                delay = min(delay * 2, MAX_DELAY)
            return False
        finally:
            client.close()
            for signum, handler in self._handlers.items():
                signal.signal(signum, handler)
            self._handlers.clear()
            self.lost_at = None


def _answers(client: Redis) -> bool:
    try:
        return bool(client.ping())
    except REDIS_DOWN:
        return False
