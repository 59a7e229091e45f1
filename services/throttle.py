"""Sign-in throttling in Redis: shared by every web process, forgotten after a quiet window.

Three counters, each answering a different attack, and none that an attacker can turn
against the account's owner:
- per client address, across all accounts: one address guessing at many accounts is
  stopped after ADDRESS_MAX failures (429 until the window ends);
- per (account, address): one address guessing one password is stopped after PAIR_MAX;
- per account, from any address: an account attacked from many addresses is *slowed*
  (a delay that doubles with every failure, at most ACCOUNT_MAX_DELAY seconds), never
  locked. A browser the owner signed in from before (a signed "known device" cookie,
  see blueprints/auth.py) skips that delay, so a distributed attack cannot keep the
  owner out.

Flask-Limiter counts requests per key and window; a growing per-account delay that a
known device skips is not something it models, so this stays a few Redis counters.
Every refusal says how long to wait, which becomes the 429's Retry-After.
Fails open when Redis is down: sign-in must not depend on the throttle's storage.
"""

from __future__ import annotations

import hashlib
import logging
import time

from redis.exceptions import RedisError

from extensions import get_redis

log = logging.getLogger(__name__)

WINDOW_SECONDS = 15 * 60
ADDRESS_MAX = 20  # failures from one address, across all accounts, per window
PAIR_MAX = 10  # failures for one account from one address, per window
MAX_FAILURES = PAIR_MAX  # (the name older tests and notes use)
ACCOUNT_FREE = 5  # failures per account before the delay starts
ACCOUNT_MAX_DELAY = 60  # seconds: the longest an owner on a new device ever waits


def _key(kind: str, *parts: str | None) -> str:
    # Hashed: Redis never holds an address or an email in clear.
    digest = hashlib.sha256("|".join((p or "").strip().lower() for p in parts).encode())
    return f"threadline:throttle:{kind}:{digest.hexdigest()}"


def _ttl_wait(redis, key: str, limit: int) -> int:
    failures = int(redis.get(key) or 0)
    return max(int(redis.ttl(key)), 1) if failures >= limit else 0


def account_delay(failures: int) -> int:
    """Seconds an attempt must wait after the account's last failure."""
    if failures < ACCOUNT_FREE:
        return 0
    return min(2 ** (failures - ACCOUNT_FREE), ACCOUNT_MAX_DELAY)


def seconds_to_wait(email: str, address: str | None, known_device: bool = False) -> int:
    """0 when a sign-in may be tried now, else the seconds to wait (Retry-After)."""
    try:
        redis = get_redis()
        waits = [
            _ttl_wait(redis, _key("address", address), ADDRESS_MAX),
            _ttl_wait(redis, _key("pair", email, address), PAIR_MAX),
        ]
        if not known_device:
            failures, last = redis.hmget(_key("account", email), "failures", "last")
            if failures is not None and last is not None:
                ready_at = float(last) + account_delay(int(failures))
                waits.append(max(0, int(ready_at - time.time() + 0.999)))
        return max(waits)
    except (RedisError, OSError) as exc:
        log.warning("sign-in throttle unavailable (Redis): %s", exc)
        return 0


def record_failure(email: str, address: str | None) -> None:
    try:
        pipe = get_redis().pipeline()
        for key in (_key("address", address), _key("pair", email, address)):
            pipe.incr(key)
            pipe.expire(key, WINDOW_SECONDS)
        account = _key("account", email)
        pipe.hincrby(account, "failures", 1)
        pipe.hset(account, "last", f"{time.time():.3f}")
        pipe.expire(account, WINDOW_SECONDS)
        pipe.execute()
    except (RedisError, OSError) as exc:
        log.warning("sign-in throttle unavailable (Redis): %s", exc)


def clear_failures(email: str, address: str | None) -> None:
    """After a successful sign-in this (account, address) pair starts afresh. The address
    counter stays, so one good account does not clear an address's guessing elsewhere;
    so does the account's, so the owner signing in does not hand an attacker elsewhere a
    new set of free guesses (it fades after WINDOW_SECONDS without failures)."""
    try:
        get_redis().delete(_key("pair", email, address))
    except (RedisError, OSError) as exc:
        log.warning("sign-in throttle unavailable (Redis): %s", exc)


def hit(kind: str, ident: str | None, limit: int, window: int) -> int:
    """A plain fixed-window limit for other forms (password-reset requests, second-factor
    codes): counts this attempt and returns 0 while within `limit`, else the seconds
    until the window ends."""
    try:
        redis = get_redis()
        key = _key(kind, ident)
        pipe = redis.pipeline()
        pipe.set(key, 0, ex=window, nx=True)  # the window starts at the first attempt
        pipe.incr(key)
        pipe.ttl(key)
        _, count, ttl = pipe.execute()
        return max(int(ttl), 1) if int(count) > limit else 0
    except (RedisError, OSError) as exc:
        log.warning("throttle unavailable (Redis): %s", exc)
        return 0
