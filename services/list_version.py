"""One counter in Redis that moves whenever any conversation, message or label changes.

The conversation list polls every few seconds; comparing this counter first means an idle
agent's poll is one Redis GET and an empty 204, with no database query at all. Only when
the counter moved does the list re-run its first-page query (and re-render only if that
page actually changed). Bumped after commit by SQLAlchemy session events, so web requests,
workers and the CLI all count; a Redis outage only means the list refreshes later.
"""

from __future__ import annotations

import json
import logging

from redis.exceptions import RedisError
from sqlalchemy import event
from sqlalchemy.orm import Session

from extensions import get_redis
from models import Conversation, ConversationLabel, Message

log = logging.getLogger(__name__)
KEY = "threadline:conversations:version"
WATCHED = (Conversation, Message, ConversationLabel)
_FLAG = "threadline_list_changed"


def current() -> str:
    try:
        return (get_redis().get(KEY) or b"0").decode()
    except (RedisError, RuntimeError):
        return "unknown"  # never equal to a rendered version: the list re-checks


def cached(key: str, compute, ttl: int = 300) -> tuple[str, object]:
    """The list version and `compute()` memoised for it, read in one round trip (a page that
    shows both asks Redis once, not three times): the value is kept under `key` with the
    version it was computed at, and served only while that is still the version, so any
    change to conversations, messages or labels computes it anew. JSON values only."""
    full_key = f"threadline:cache:{key}"
    try:
        version, hit = get_redis().mget(KEY, full_key)
    except (RedisError, RuntimeError):
        return "unknown", compute()  # never equal to a rendered version: the list re-checks
    version = (version or b"0").decode()
    if hit is not None:
        kept = json.loads(hit)
        if kept.get("version") == version:
            return version, kept["value"]
    # Computed after the version was read: it holds every change that version counts.
    value = compute()
    try:
        get_redis().set(full_key, json.dumps({"version": version, "value": value}), ex=ttl)
    except RedisError as exc:
        log.warning("list cache not stored: %s", exc)
    return version, value


def bump() -> None:
    try:
        get_redis().incr(KEY)
    except (RedisError, RuntimeError) as exc:  # no Redis, or no app context (plain scripts)
        log.warning("list version not bumped: %s", exc)


@event.listens_for(Session, "after_flush")
def _note_changes(session, flush_context) -> None:
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, WATCHED):
            session.info[_FLAG] = True
            return


@event.listens_for(Session, "do_orm_execute")
def _note_bulk_changes(state) -> None:
    """UPDATE/DELETE statements (the snooze sweep, delivery claims) bypass the flush."""
    if (state.is_update or state.is_delete) and state.bind_mapper is not None:
        if issubclass(state.bind_mapper.class_, WATCHED):
            state.session.info[_FLAG] = True


@event.listens_for(Session, "after_commit")
def _bump_after_commit(session) -> None:
    # SQLAlchemy sends after_commit for a savepoint's release too (begin_nested, as a new
    # conversation's number takes): its writes are not visible yet, so a list read now would
    # be remembered under the new version. The flag waits for the real commit.
    if session.in_nested_transaction():
        return
    if session.info.pop(_FLAG, False):
        bump()


@event.listens_for(Session, "after_rollback")
def _forget(session) -> None:
    if session.in_nested_transaction():  # a savepoint's: what was flushed before it stays
        return
    session.info.pop(_FLAG, None)
