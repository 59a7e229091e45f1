"""Who is looking at which conversation, kept in Redis only (never worth a database write).

One sorted set per conversation: member = user id, score = the time of that user's last
page load or poll. The thread's 5 s message poll is the heartbeat, so an entry older than
`WINDOW` seconds means the agent closed the tab; old entries are ignored when read and
trimmed on every write, and the whole key expires when nobody touches it any more.

Presence is a courtesy: when Redis is down it logs and reports nobody, it never breaks
the thread page.
"""

from __future__ import annotations

import logging
import time

from redis.exceptions import RedisError
from sqlalchemy import select

from extensions import db, get_redis
from models import User

log = logging.getLogger(__name__)
WINDOW = 30  # seconds without a heartbeat before a viewer is gone
KEY_TTL = 2 * WINDOW


def key(conversation_id: int) -> str:
    return f"threadline:presence:conversation:{conversation_id}"


def touch(conversation_id: int, user: User, now: float | None = None) -> list[int]:
    """Record that `user` is viewing the conversation right now, and return who is (user ids,
    `user` among them: viewer_ids), read in the same round trip."""
    now = time.time() if now is None else now
    try:
        pipe = get_redis().pipeline(transaction=False)
        pipe.zadd(key(conversation_id), {str(user.id): now})
        pipe.zremrangebyscore(key(conversation_id), "-inf", now - WINDOW)
        pipe.expire(key(conversation_id), KEY_TTL)
        pipe.zrangebyscore(key(conversation_id), now - WINDOW, "+inf")
        members = pipe.execute()[-1]
    except (RedisError, OSError) as exc:
        log.warning("presence not recorded for conversation %d: %s", conversation_id, exc)
        return []
    return _ids(members)


def viewer_ids(conversation_id: int, now: float | None = None) -> list[int]:
    now = time.time() if now is None else now
    try:
        members = get_redis().zrangebyscore(key(conversation_id), now - WINDOW, "+inf")
    except (RedisError, OSError) as exc:
        log.warning("presence unavailable for conversation %d: %s", conversation_id, exc)
        return []
    return _ids(members)


def _ids(members: list) -> list[int]:
    return [int(m) for m in members if m.isdigit()]


def viewers(
    conversation_id: int, excluding: User | None = None, seen: list[int] | None = None
) -> list[User]:
    """The active users seen on this conversation within the window, by name. `seen`: their
    ids when already read (touch returns them), else they are read from Redis."""
    ids = set(viewer_ids(conversation_id) if seen is None else seen)
    if excluding is not None:
        ids.discard(excluding.id)
    if not ids:
        return []
    return list(
        db.session.scalars(select(User).where(User.id.in_(ids), User.active).order_by(User.name))
    )
