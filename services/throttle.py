"""Sign-in throttling in Redis: shared by every web process, forgotten after a quiet window."""

from __future__ import annotations

import hashlib
import logging

from redis.exceptions import RedisError

from extensions import get_redis

log = logging.getLogger(__name__)

MAX_FAILURES = 10
WINDOW_SECONDS = 15 * 60


def _key(email: str, remote_addr: str | None) -> str:
    # Hashed: the key names no address or email in Redis.
    digest = hashlib.sha256(f"{email.strip().lower()}|{remote_addr or ''}".encode()).hexdigest()
    return f"threadline:login-failures:{digest}"


def seconds_locked_out(email: str, remote_addr: str | None) -> int:
    """0 when sign-in may be tried, else how long to wait. Fails open if Redis is down."""
    try:
        redis = get_redis()
        key = _key(email, remote_addr)
        failures = int(redis.get(key) or 0)
        return max(int(redis.ttl(key)), 1) if failures >= MAX_FAILURES else 0
    except (RedisError, OSError) as exc:
        log.warning("sign-in throttle unavailable (Redis): %s", exc)
        return 0


def record_failure(email: str, remote_addr: str | None) -> None:
    try:
        pipe = get_redis().pipeline()
        key = _key(email, remote_addr)
        pipe.incr(key)
        pipe.expire(key, WINDOW_SECONDS)
        pipe.execute()
    except (RedisError, OSError) as exc:
        log.warning("sign-in throttle unavailable (Redis): %s", exc)


def clear_failures(email: str, remote_addr: str | None) -> None:
    try:
        get_redis().delete(_key(email, remote_addr))
    except (RedisError, OSError) as exc:
        log.warning("sign-in throttle unavailable (Redis): %s", exc)
