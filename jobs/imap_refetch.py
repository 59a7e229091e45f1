"""Fetch again an IMAP message the import recorded as failed (the Inbound log's retry).

Under the inbox's poll lock (one conversation with its server at a time), the folder is
opened, checked not to have been renumbered, and the one UID fetched as the import fetches
(services/imap_import.fetch_bodies). A message the server now hands over goes through
receive() like any imported one and the failed record it replaces is removed; otherwise
the record stays failed and its reason says what happened this time.
"""

from __future__ import annotations

import logging

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError
from redis.exceptions import LockError

from extensions import db, get_redis
from ingress import IngressError, RawEmail
from ingress.receive import receive
from jobs.imap_poll import CONNECT_TIMEOUT, LOCK_SECONDS, lock_name
from mail.imap import ImapFailure, _words, classify, connect
from models import ImapSettings, InboundEmail
from models.inbound import ImapOrigin
from services.imap_import import ImportPlan, apply_after_import, fetch_bodies
from services.mail_credentials import imap_target_for, token_failure
from services.oauth import OAuthError

log = logging.getLogger(__name__)


class PollRunning(Exception):
    """The inbox is being polled: RQ tries again later (Retry is set where it is enqueued)."""


def refetch_unfetched(inbound_email_id: int) -> str:
    row = db.session.get(InboundEmail, inbound_email_id)
    origin = row.imap_origin if row is not None else None
    if origin is None or row.storage_key is not None:
        return "nothing to fetch again"  # fetched meanwhile (its record is gone) or not ours
    lock = get_redis().lock(lock_name(origin.inbox_id), timeout=LOCK_SECONDS)
    if not lock.acquire(blocking=False):
        raise PollRunning(f"inbox #{origin.inbox_id} is being polled; {origin.place} waits")
    try:
        return _refetch(row, origin)
    finally:
        try:
            lock.release()
        except LockError:
            pass  # lapsed: nothing of ours to release


def _refetch(row: InboundEmail, origin: ImapOrigin) -> str:
    row_id, source = row.id, row.source
    settings = db.session.get(ImapSettings, origin.inbox_id)
    if settings is None or settings.inbox.mode != "imap":
        return _still_failed(row_id, origin, "not fetched again: the inbox reads no IMAP mailbox")
    try:
        target = imap_target_for(settings)
    except OAuthError as exc:
        return _still_failed(row_id, origin, f"not fetched again: {token_failure(exc)}")
    plan = ImportPlan.from_settings(settings)
    try:
        with connect(target, CONNECT_TIMEOUT) as client:
            return _fetch_one(client, plan, row_id, source, origin)
    except ImapFailure as failure:
        return _still_failed(row_id, origin, f"not fetched again: {failure}")
    except (IMAPClientError, OSError) as exc:
        return _still_failed(row_id, origin, f"not fetched again: {classify(exc, target)}")


def _fetch_one(
    client: IMAPClient, plan: ImportPlan, row_id: int, source: str, origin: ImapOrigin
) -> str:
    try:
        info = client.select_folder(origin.folder, readonly=plan.after_import == "leave")
    except IMAPClientAbortError:
        raise
    except IMAPClientError as exc:
        return _still_failed(
            row_id, origin, f"the folder cannot be opened any more: the server said {_words(exc)}"
        )
    if info.get(b"UIDVALIDITY") != origin.uidvalidity:
        return _still_failed(
            row_id,
            origin,
            "the server renumbered the folder since (UIDVALIDITY changed), so this UID no "
            "longer names the message; a message still there was imported again by the resync",
        )
    bodies, problems = fetch_bodies(client, [origin.uid])
    if origin.uid in problems:
        return _still_failed(row_id, origin, problems[origin.uid])
    if origin.uid not in bodies:
        return _still_failed(row_id, origin, "no longer in the mailbox (deleted or moved)")
    try:
        raw = RawEmail(bodies[origin.uid][b"BODY[]"], [plan.recipient])
        received = receive(raw, source, inbox_id=plan.inbox_id)
    except IngressError as exc:
        return _still_failed(row_id, origin, f"refused by the ingress: {exc.message}")
    new_id = received.inbound_email.id
    # The message is recorded (and queued) under its own row now: the failed one goes.
    db.session.execute(InboundEmail.delete_unfetched(row_id))
    db.session.commit()
    action_error = apply_after_import(client, plan, [origin.uid])
    outcome = f"{origin.place} fetched again as inbound email #{new_id}"
    log.info("inbox #%d: %s", origin.inbox_id, "; ".join(filter(None, [outcome, action_error])))
    return outcome


def _still_failed(row_id: int, origin: ImapOrigin, what: str) -> str:
    reason = InboundEmail.unfetched_reason(origin, what)
    db.session.rollback()
    db.session.execute(InboundEmail.note_unfetched(row_id, reason))
    db.session.commit()
    log.warning("inbound #%d: %s", row_id, reason)
    return reason
