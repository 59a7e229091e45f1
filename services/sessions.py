"""Server-side sessions: every signed-in browser is a row in `user_sessions`.

A signed Flask cookie alone cannot be taken back: a copy taken before sign-out keeps
working. So the cookie carries only a random session id (Flask-Login's "alternative
token": `User.get_id()` returns it, so the remember-me cookie carries it too) and
`load_session_user` finds the row on every request. Deleting the row ends the browser's
session and its remember-me cookie at their next request; nothing can revive it.

The rows live in the database, not in Redis: the user is read from the database on every
request anyway, so the session costs a join, not another round trip, and a Redis outage
or flush neither signs everybody out nor lets anybody in.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import request
from flask_login import login_user, logout_user
from sqlalchemy import bindparam, delete, select
from ua_parser import parse as parse_user_agent

from extensions import db, get_settings
from models import User, UserSession, utcnow

# A session without "keep me signed in" ends after this long without a request; the
# workspace polls every few seconds, so an open tab never runs into it.
IDLE_LIFETIME = timedelta(hours=12)
# last_seen_at is written at most this often per session (not one write per request).
TOUCH_EVERY = timedelta(seconds=60)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def remember_duration() -> timedelta:
    return timedelta(days=get_settings().remember_me_days)


def start_session(user: User, remember: bool = False) -> UserSession:
    """Sign `user` in on this browser: a new row, then Flask-Login's cookies carrying its id."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = UserSession(
        token_hash=hash_token(token),
        user_id=user.id,
        remember=remember,
        created_at=now,
        last_seen_at=now,
        expires_at=now + (remember_duration() if remember else IDLE_LIFETIME),
        user_agent=(request.user_agent.string or "")[:255],
        ip_address=(request.remote_addr or "")[:64],
    )
    db.session.add(row)
    user.last_login_at = now
    db.session.commit()
    user.session_token, user.current_session = token, row
    login_user(user, remember=remember, duration=remember_duration())
    return row


_SESSION_USER = (  # built once: every signed-in request runs it
    select(User, UserSession)
    .join_from(User, UserSession, UserSession.user_id == User.id)
    .where(UserSession.token_hash == bindparam("token_hash"))
)


def load_session_user(token: str) -> User | None:
    """Flask-Login's loader: the active user of a live session, else None (signed out)."""
    found = db.session.execute(_SESSION_USER, {"token_hash": hash_token(token)}).first()
    if found is None:
        return None
    user, row = found
    now = utcnow()
    if not user.active or row.expires_at <= now:
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
        row.ip_address = (request.remote_addr or "")[:64]
        if not row.remember:
            row.expires_at = now + IDLE_LIFETIME
        db.session.commit()
    user.session_token, user.current_session = token, row
    return user


def end_current_session(user: User) -> None:
    """Sign-out: this browser's row goes, and with it the session and remember-me cookies."""
    row = getattr(user, "current_session", None)
    if row is not None:
        db.session.execute(delete(UserSession).where(UserSession.id == row.id))
        db.session.commit()
    logout_user()


def end_sessions(user: User, keep_current: bool = False) -> int:
    """End every session of `user` (all browsers, remember-me included); with
    `keep_current`, the browser making this request stays signed in. Returns how many
    ended. The caller commits (it usually changed the user in the same transaction)."""
    statement = delete(UserSession).where(UserSession.user_id == user.id)
    current = getattr(user, "current_session", None)
    if keep_current and current is not None:
        statement = statement.where(UserSession.id != current.id)
    return db.session.execute(statement).rowcount or 0


def end_session_by_id(user: User, session_id: int) -> bool:
    """ "Sign out" on one row of the profile's session list; only the user's own rows."""
    result = db.session.execute(
        delete(UserSession).where(UserSession.id == session_id, UserSession.user_id == user.id)
    )
    db.session.commit()
    return bool(result.rowcount)


def purge_expired_sessions() -> int:
    result = db.session.execute(delete(UserSession).where(UserSession.expires_at <= utcnow()))
    db.session.commit()
    return result.rowcount or 0


@dataclass
class SessionView:
    id: int
    browser: str
    address: str
    last_seen_at: datetime
    created_at: datetime
    remember: bool
    current: bool


def describe_browser(user_agent: str) -> str:
    """ "Firefox on Windows" from a User-Agent header; "Unknown browser" when unreadable."""
    if not user_agent:
        return "Unknown browser"
    parsed = parse_user_agent(user_agent)
    browser = parsed.user_agent.family if parsed.user_agent else ""
    system = parsed.os.family if parsed.os else ""
    if browser and browser != "Other":
        return f"{browser} on {system}" if system and system != "Other" else browser
    return user_agent[:60]


def active_sessions(user: User) -> list[SessionView]:
    """The user's live sessions, the current one first, then the most recently seen."""
    current = getattr(user, "current_session", None)
    rows = db.session.scalars(
        select(UserSession)
        .where(UserSession.user_id == user.id, UserSession.expires_at > utcnow())
        .order_by(UserSession.last_seen_at.desc())
    ).all()
    views = [
        SessionView(
            id=row.id,
            browser=describe_browser(row.user_agent),
            address=row.ip_address or "unknown address",
            last_seen_at=row.last_seen_at,
            created_at=row.created_at,
            remember=row.remember,
            current=current is not None and row.id == current.id,
        )
        for row in rows
    ]
    return sorted(views, key=lambda view: not view.current)
