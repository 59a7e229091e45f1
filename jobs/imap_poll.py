"""Polling IMAP inboxes: a periodic job enqueues one poll per due inbox, and each poll imports
at most a batch, holding a per-inbox Redis lock so two workers never poll the same inbox.

Bookkeeping lives on ImapSettings: success schedules the next poll after the inbox's interval
(or at once when more mail is waiting); a network problem backs off 1, 2, 4 ... 30 minutes;
an authentication failure sets Inbox.needs_attention with the server's words, and the inbox
is not polled again until someone saves its settings (which clears it). For an inbox signed
in with OAuth (Microsoft 365, Google), a refresh token the provider refused counts as an
authentication failure (services/oauth.py has already set needs_attention "Reconnect ...",
reconnecting clears it) and an unreachable provider as a network problem. An archived inbox is
never polled (services/inbox_archive.py); unarchiving makes it due at once.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from imapclient.exceptions import IMAPClientError
from redis.exceptions import LockError, LockNotOwnedError
from sqlalchemy import or_, select
from sqlalchemy.exc import SQLAlchemyError

from extensions import db, get_redis
from ingress.receive import IngressUnavailable
from mail.imap import ImapFailure, classify, connect
from models import ImapSettings, Inbox, utcnow
from services.background import enqueue_poll, job_is_waiting, poll_job_id
from services.imap_import import FolderResult, ImportPlan, import_folder
from services.mail_credentials import imap_target_for, sign_in_attention, token_failure
from services.oauth import OAuthError

log = logging.getLogger(__name__)

# Messages per poll; the next scheduler tick (30 s) continues. Large, because a poll that
# stops early leaves its worker idle until that tick: a backlog (a first sync, a mailbox
# moved over) is imported in few polls, each fetching FETCH_MESSAGES per round trip and
# committing as it goes, and stopping after POLL_SECONDS, far inside its job timeout (600 s).
BATCH_SIZE = 1000
POLL_SECONDS = 120
CONNECT_TIMEOUT = 20  # seconds, also the timeout of every read: a dead server can't hang us
LOCK_SECONDS = 300  # renewed before every FETCH; lapses on its own if a worker dies
MAX_BACKOFF_MINUTES = 30
RESULT_LENGTH = 1000


def lock_name(inbox_id: int) -> str:
    return f"threadline:imap-poll-lock:{inbox_id}"


def backoff_delay(failures: int) -> timedelta:
    """1, 2, 4, 8, 16, 30, 30 ... minutes after the 1st, 2nd, 3rd ... failure in a row."""
    exponent = min(max(failures, 1) - 1, 10)
    return timedelta(minutes=min(2**exponent, MAX_BACKOFF_MINUTES))


def enqueue_due_imap_polls() -> int:
    """Periodic: enqueue one poll per IMAP inbox that is due, enabled, not archived and not
    waiting for a person. A poll already queued or running is left alone, so nothing is
    queued twice."""
    due = db.session.scalars(
        select(Inbox.id)
        .join(ImapSettings, ImapSettings.inbox_id == Inbox.id)
        .where(
            Inbox.mode == "imap",
            Inbox.archived_at.is_(None),
            ImapSettings.enabled.is_(True),
            or_(Inbox.needs_attention.is_(None), Inbox.needs_attention == ""),
            or_(ImapSettings.next_poll_at.is_(None), ImapSettings.next_poll_at <= utcnow()),
        )
        .order_by(ImapSettings.next_poll_at.is_not(None), ImapSettings.next_poll_at)
    ).all()
    enqueued = 0
    for inbox_id in due:
        if job_is_waiting(poll_job_id(inbox_id)):
            continue
        enqueue_poll(inbox_id)
        enqueued += 1
    if enqueued:  # routine every poll interval: what the polls find is logged by them
        log.debug("imap: %d poll(s) enqueued", enqueued)
    return enqueued


def poll_inbox(inbox_id: int, batch_size: int = BATCH_SIZE, seconds: float = POLL_SECONDS) -> str:
    """Import new mail for one inbox; returns the result recorded (or why nothing was done)."""
    lock = get_redis().lock(lock_name(inbox_id), timeout=LOCK_SECONDS)
    if not lock.acquire(blocking=False):
        log.info("inbox #%d: another poll is running; skipped", inbox_id)
        return "busy"
    try:
        return _poll(inbox_id, batch_size, time.monotonic() + seconds, lock.reacquire)
    except LockNotOwnedError:
        db.session.rollback()
        log.warning("inbox #%d: the poll lock lapsed; stopped so two polls never overlap", inbox_id)
        return "lock lost"
    finally:
        try:
            lock.release()
        except LockError:
            pass  # lapsed: nothing of ours to release


def _poll(inbox_id: int, batch_size: int, deadline: float, keep_alive) -> str:
    inbox = db.session.get(Inbox, inbox_id)
    settings = inbox.imap if inbox is not None else None
    if settings is None or inbox.mode != "imap" or not settings.enabled or inbox.needs_attention:
        return "skipped"
    if inbox.archived_at is not None:  # archived after the poll was queued
        return "skipped"
    try:
        target = imap_target_for(settings)
    except OAuthError as exc:
        return _failed(inbox_id, token_failure(exc))
    plan = ImportPlan.from_settings(settings)
    folders = settings.folder_list
    results: list[FolderResult] = []
    try:
        with connect(target, CONNECT_TIMEOUT) as client:
            budget = batch_size
            for folder in folders:
                if budget <= 0 or (results and time.monotonic() > deadline):
                    results.append(FolderResult(folder, more=True))
                    continue
                result = import_folder(client, plan, folder, budget, keep_alive, deadline)
                budget -= result.fetched
                results.append(result)
    except ImapFailure as failure:
        return _failed(inbox_id, failure)
    except (IMAPClientError, OSError) as exc:  # the connection broke mid-poll
        return _failed(inbox_id, classify(exc, target))
    except IngressUnavailable as exc:  # storage or database down: try again later
        return _failed(inbox_id, ImapFailure("protocol", f"messages could not be stored: {exc}"))
    errors = [r.error for r in results if r.error]
    if errors and len(errors) == len(results):
        return _failed(inbox_id, ImapFailure("protocol", "; ".join(errors)))
    return _succeeded(inbox_id, results)


def _succeeded(inbox_id: int, results: list[FolderResult]) -> str:
    settings = db.session.get(ImapSettings, inbox_id)
    now = utcnow()
    imported = sum(r.imported for r in results)
    more = any(r.more for r in results)
    if imported:
        summary = f"imported {imported} message{'s' if imported != 1 else ''}"
    else:
        summary = "no new mail"
    if failed := sum(r.failed for r in results):
        summary += (
            f"; {failed} message{'s' if failed != 1 else ''} could not be fetched "
            "(failed in the Inbound log, where it can be retried)"
        )
    if more:
        summary += "; more to fetch"
    notes = [r.error or r.action_error for r in results if r.error or r.action_error]
    settings.last_poll_at = now
    settings.last_poll_result = "; ".join([summary, *notes])[:RESULT_LENGTH]
    settings.consecutive_failures = 0
    settings.next_poll_at = now if more else now + timedelta(seconds=settings.poll_interval_seconds)
    db.session.commit()
    # A poll that found nothing is the idle case: not worth a line every poll interval.
    level = logging.INFO if imported or failed or notes else logging.DEBUG
    log.log(level, "inbox #%d: %s", inbox_id, settings.last_poll_result)
    return settings.last_poll_result


def _failed(inbox_id: int, failure: ImapFailure) -> str:
    try:
        db.session.commit()  # progress made before the failure (last_uid) is real progress
    except SQLAlchemyError:
        db.session.rollback()
    inbox = db.session.get(Inbox, inbox_id)
    settings = inbox.imap
    now = utcnow()
    failures = (settings.consecutive_failures or 0) + 1
    settings.last_poll_at = now
    settings.consecutive_failures = failures
    if failure.permanent:
        if not inbox.needs_attention:  # a refused refresh token has said so already
            inbox.needs_attention = sign_in_attention(inbox, failure)[:RESULT_LENGTH]
        settings.last_poll_result = str(failure)[:RESULT_LENGTH]
        settings.next_poll_at = None  # not polled until the settings are saved again
        log.warning("inbox #%d needs attention: %s", inbox_id, failure)
    else:
        delay = backoff_delay(failures)
        settings.next_poll_at = now + delay
        minutes = int(delay.total_seconds() // 60)
        settings.last_poll_result = (
            f"{failure} (failure {failures} in a row; next try in {minutes} min)"
        )[:RESULT_LENGTH]
        log.warning("inbox #%d poll failed: %s", inbox_id, settings.last_poll_result)
    db.session.commit()
    return settings.last_poll_result
