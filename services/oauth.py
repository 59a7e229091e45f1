"""Signing an inbox in to Microsoft 365 or Google with OAuth 2.0 (authorization code flow
with PKCE), and keeping its access token fresh for XOAUTH2 (services/mail_credentials.py).

- `start` sends the admin to the provider's sign-in page; the state (with the PKCE
  verifier) waits 10 minutes in Redis, single use, tied to the admin who started it.
- `complete` (the callback) trades the code for tokens and stores them on the inbox's
  OAuthConnection, or on the wizard draft's when the inbox does not exist yet.
- `access_token` hands out a token with at least 5 minutes left, refreshing it under a
  per-connection Redis lock so that many workers refresh once. A refresh the provider
  refuses (consent revoked, password changed, token expired) turns the inbox "needs
  attention: reconnect", emails the admins once, and every later call refuses at once
  without asking the provider again, until someone reconnects.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta

from redis.exceptions import LockError, RedisError
from sqlalchemy import delete, select

from extensions import db, get_redis
from mail.addresses import is_email_address
from models import Inbox, OAuthConnection, utcnow
from services.background import enqueue_oauth_notice
from services.oauth_providers import (
    PROVIDERS,
    OAuthError,
    OAuthRevoked,
    OAuthUnavailable,
    Provider,
    first_line,
    redirect_uri,
    token_request,
)

log = logging.getLogger(__name__)

STATE_SECONDS = 600
REFRESH_AHEAD = timedelta(minutes=5)
LOCK_SECONDS = 30
DRAFT_SECONDS = 24 * 3600  # as long as a wizard draft lives (services/inbox_drafts.py)


def _state_key(state: str) -> str:
    return f"threadline:oauth-state:{state}"


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def start(
    provider: str,
    mailbox: str,
    user_id: int,
    *,
    inbox_id: int | None = None,
    draft_id: str | None = None,
) -> str:
    """The provider's authorize URL for this admin; the state waits in Redis."""
    chosen = PROVIDERS.get(provider)
    if chosen is None or not chosen.enabled:
        raise OAuthError(f"Connect with {provider} is not configured on this server.")
    mailbox = mailbox.strip().lower()
    if not is_email_address(mailbox):
        raise OAuthError(f"{mailbox!r} is not an email address.")
    if (inbox_id is None) == (draft_id is None):
        raise ValueError("start() needs exactly one of inbox_id and draft_id")
    state = secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(48)
    pending = {
        "provider": provider,
        "mailbox": mailbox,
        "user_id": user_id,
        "inbox_id": inbox_id,
        "draft_id": draft_id,
        "verifier": verifier,
    }
    get_redis().set(_state_key(state), json.dumps(pending), ex=STATE_SECONDS)
    client_id, _ = chosen.client()
    query = {
        "client_id": client_id,
        "response_type": "code",
        "redirect_uri": redirect_uri(),
        "scope": chosen.scope,
        "state": state,
        "code_challenge": _challenge(verifier),
        "code_challenge_method": "S256",
        **chosen.authorize_extras(mailbox),
    }
    return f"{chosen.authorize_url}?{urllib.parse.urlencode(query)}"


def pending_target(state: str) -> dict | None:
    """Where a callback's state leads (inbox_id or draft_id), without using it up: the
    view needs it to send the admin back even when the provider said no."""
    raw = get_redis().get(_state_key(state)) if state else None
    return json.loads(raw) if raw else None


def complete(
    state: str,
    code: str | None,
    error: str | None,
    error_description: str | None,
    user_id: int,
) -> OAuthConnection:
    """The callback: trade the code for tokens and store them (commits)."""
    raw = get_redis().getdel(_state_key(state)) if state else None
    if raw is None:
        raise OAuthError(
            "This sign-in link is unknown or expired (they last 10 minutes). Start again "
            "with Connect."
        )
    pending = json.loads(raw)
    if pending["user_id"] != user_id:
        raise OAuthError("This sign-in was started by another admin. Start again with Connect.")
    provider = PROVIDERS[pending["provider"]]
    if error:
        said = first_line(error_description) or error
        raise OAuthError(f"{provider.label} did not connect the mailbox: {said}")
    if not code:
        raise OAuthError(f"{provider.label} sent no authorization code. Start again.")
    client_id, client_secret = provider.client()
    answer = token_request(
        provider,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri(),
            "client_id": client_id,
            "client_secret": client_secret,
            "code_verifier": pending["verifier"],
        },
    )
    if not answer.get("refresh_token"):
        raise OAuthError(
            f"{provider.label} gave no refresh token, so the connection would stop within "
            "an hour. For Microsoft, check that offline_access is among the app's "
            "permissions; for Google, remove Threadline's access from the account and "
            "connect again."
        )
    conn = _connection_for(pending)
    conn.provider = provider.name
    conn.mailbox = pending["mailbox"]
    _store_tokens(conn, answer)
    conn.last_error = None
    if conn.inbox is not None:
        _resume_polling(conn.inbox)
    db.session.commit()
    log.info("inbox OAuth connected: %s as %s", provider.name, conn.mailbox)
    return conn


def _connection_for(pending: dict) -> OAuthConnection:
    if pending["inbox_id"] is not None:
        inbox = db.session.get(Inbox, pending["inbox_id"])
        if inbox is None:
            raise OAuthError("This inbox no longer exists.")
        if inbox.oauth is None:
            inbox.oauth = OAuthConnection(refresh_token="")
        return inbox.oauth
    conn = connection_for_draft(pending["draft_id"])
    if conn is None:
        conn = OAuthConnection(draft_id=pending["draft_id"], refresh_token="")
        db.session.add(conn)
    return conn


def _resume_polling(inbox: Inbox) -> None:
    """Reconnected: polling and IDLE pick the inbox up again at once."""
    inbox.needs_attention = None
    if inbox.imap is not None:
        inbox.imap.next_poll_at = None
        inbox.imap.consecutive_failures = 0


def access_token(conn: OAuthConnection) -> str:
    """A token with at least REFRESH_AHEAD left; may commit the session (a refresh)."""
    if conn.last_error:
        raise OAuthRevoked(conn.last_error)
    if _fresh(conn):
        return conn.access_token
    lock = get_redis().lock(
        f"threadline:oauth-refresh:{conn.id}", timeout=LOCK_SECONDS, blocking_timeout=LOCK_SECONDS
    )
    try:
        acquired = lock.acquire()
    except RedisError as exc:
        raise OAuthUnavailable(f"cannot take the token refresh lock: {exc}") from exc
    if not acquired:
        raise OAuthUnavailable("another worker is still refreshing this mailbox's token")
    try:
        db.session.refresh(conn)  # another worker may have refreshed while we waited
        if conn.last_error:
            raise OAuthRevoked(conn.last_error)
        if not _fresh(conn):
            _refresh(conn)
        return conn.access_token
    finally:
        try:
            lock.release()
        except LockError:  # expired meanwhile: nothing left to release
            pass


def _fresh(conn: OAuthConnection) -> bool:
    expires = conn.access_expires_at
    return bool(conn.access_token) and expires is not None and expires - REFRESH_AHEAD > utcnow()


def _refresh(conn: OAuthConnection) -> None:
    provider = PROVIDERS[conn.provider]
    client_id, client_secret = provider.client()
    body = {
        "grant_type": "refresh_token",
        "refresh_token": conn.refresh_token,
        "client_id": client_id,
        "client_secret": client_secret,
        "scope": provider.scope,
    }
    try:
        answer = token_request(provider, body)
    except OAuthRevoked as refused:
        _needs_reconnect(conn, provider, refused.words)
        raise
    _store_tokens(conn, answer)
    db.session.commit()
    log.info("OAuth token refreshed for %s (connection %s)", conn.mailbox, conn.id)


def _store_tokens(conn: OAuthConnection, answer: dict) -> None:
    if not answer.get("access_token"):
        raise OAuthUnavailable("the provider's answer held no access token")
    now = utcnow()
    conn.access_token = answer["access_token"]
    conn.access_expires_at = now + timedelta(seconds=int(answer.get("expires_in") or 3600))
    if answer.get("refresh_token"):  # Microsoft rotates it; Google keeps the first
        conn.refresh_token = answer["refresh_token"]
    conn.last_refresh_at = now


def _needs_reconnect(conn: OAuthConnection, provider: Provider, words: str) -> None:
    """Record the refusal once, pause the inbox, tell the admins (after the commit)."""
    conn.last_error = words
    inbox = conn.inbox
    if inbox is not None:
        inbox.needs_attention = f"Reconnect {provider.label}: {words}"
    db.session.commit()
    log.warning("OAuth refresh refused for %s: %s", conn.mailbox, words)
    if inbox is not None:
        try:
            enqueue_oauth_notice(inbox.id)
        except RedisError:
            log.exception("could not queue the reconnect email for inbox %s", inbox.id)


def connection_for_inbox(inbox_id: int) -> OAuthConnection | None:
    return db.session.scalar(select(OAuthConnection).where(OAuthConnection.inbox_id == inbox_id))


def connection_for_draft(draft_id: str) -> OAuthConnection | None:
    return db.session.scalar(select(OAuthConnection).where(OAuthConnection.draft_id == draft_id))


def attach_draft(draft_id: str, inbox: Inbox) -> None:
    """The wizard created the inbox: the draft's connection becomes the inbox's (no commit)."""
    conn = connection_for_draft(draft_id)
    if conn is not None:
        conn.draft_id = None
        inbox.oauth = conn


def purge_abandoned_drafts() -> int:
    """Cron: forget the tokens of wizard drafts never finished (drafts live a day)."""
    cutoff = utcnow() - timedelta(seconds=DRAFT_SECONDS)
    gone = db.session.execute(
        delete(OAuthConnection).where(
            OAuthConnection.inbox_id.is_(None), OAuthConnection.created_at < cutoff
        )
    ).rowcount
    db.session.commit()
    if gone:
        log.info("forgot the OAuth tokens of %d abandoned inbox draft(s)", gone)
    return gone


def disconnect(inbox: Inbox | None = None, *, draft_id: str | None = None) -> None:
    """Forget an inbox's (or a wizard draft's) tokens (commits): passwords again."""
    conn = inbox.oauth if inbox is not None else connection_for_draft(draft_id or "")
    if conn is not None:
        if inbox is not None:
            inbox.oauth = None
        db.session.delete(conn)
        db.session.commit()


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "never"


def token_state(conn: OAuthConnection) -> str:
    """One line for the health page."""
    label = PROVIDERS[conn.provider].label
    if conn.last_error:
        return f"Needs reconnecting ({label}, {conn.mailbox}): {conn.last_error}"
    return (
        f"Signed in with {label} as {conn.mailbox}; access token valid until "
        f"{_when(conn.access_expires_at)}, last refreshed {_when(conn.last_refresh_at)}"
    )
