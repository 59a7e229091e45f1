"""Import new mail from one IMAP folder through the shared ingress path, each message once.

Per folder, ImapFolderState keeps the UIDVALIDITY and the highest UID whose InboundEmail is
committed: a crash or an outage at any point re-fetches at most what was not yet recorded,
and the ingress dedupe (Message-ID + checksum) absorbs anything fetched twice. Messages are
read with BODY.PEEK[] (and the folder opened read-only when they are left alone), so the
mailbox looks untouched to everyone else who reads it.

One bad message never blocks a folder: a message the server will not hand over, or the
ingress refuses, is recorded as a failed InboundEmail naming its UID and the server's words,
committed before last_uid moves past it; the Inbound log's retry fetches it again
(jobs/imap_refetch.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from imapclient import SEEN, IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError
from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from extensions import db
from ingress import IngressError, RawEmail
from ingress.receive import IngressUnavailable, receive
from mail.imap import _words
from models import ImapFolderState, ImapSettings, InboundEmail, utcnow
from models.inbound import ImapOrigin
from models.inboxes import AFTER_IMPORT
from services.background import enqueue_refetch, job_is_waiting, refetch_job_id
from services.inbound_reprocess import NotQueued, ReprocessError

log = logging.getLogger(__name__)

FIRST_SYNC_BACK = timedelta(days=1)  # default start of the first sync
RESYNC_MARGIN = timedelta(days=1)  # after a UIDVALIDITY change, look back past the last sync
FETCH_BYTES = 8 * 1024 * 1024  # one FETCH brings at most this much (or one larger message)
FETCH_MESSAGES = 25
FETCH_BODY = "BODY.PEEK[]"
# Response codes (RFC 5530) that say the server, not the message, has a problem right now.
TEMPORARY_CODES = ("[UNAVAILABLE]", "[INUSE]", "[LIMIT]")


@dataclass
class FolderResult:
    folder: str
    fetched: int = 0  # messages read from the server (new or already known)
    imported: int = 0  # of which new InboundEmail rows
    failed: int = 0  # of which recorded as failed (not fetched, or refused)
    more: bool = False  # the budget ran out before the folder did
    error: str | None = None  # the folder could not be read (the other folders go on)
    action_error: str | None = None  # imported, but mark/move/delete failed


@dataclass(frozen=True)
class ImportPlan:
    """What an ImapSettings row says, read once (every commit expires the ORM objects)."""

    inbox_id: int
    recipient: str  # prepended as X-Original-To so the message routes to this inbox
    after_import: str
    move_to_folder: str | None
    import_since: datetime | None

    @classmethod
    def from_settings(cls, settings: ImapSettings) -> ImportPlan:
        action = settings.after_import if settings.after_import in AFTER_IMPORT else "leave"
        return cls(
            inbox_id=settings.inbox_id,
            recipient=settings.inbox.support_address,
            after_import=action,
            move_to_folder=(settings.move_to_folder or "").strip() or None,
            import_since=settings.import_since,
        )


def import_folder(
    client: IMAPClient,
    plan: ImportPlan,
    folder: str,
    budget: int,
    keep_alive: Callable[[], object] = lambda: None,
    deadline: float | None = None,
) -> FolderResult:
    """Import up to `budget` new messages from `folder`, in FETCHes of a few each, and no new
    FETCH after `deadline` (time.monotonic()): what is left is `more`. A NO from the server
    about this folder is recorded and returned; a broken connection (abort, socket error)
    raises."""
    result = FolderResult(folder)
    state = _state(plan.inbox_id, folder)
    state.last_poll_at = utcnow()
    try:
        info = client.select_folder(folder, readonly=plan.after_import == "leave")
        if state.uidvalidity != info.get(b"UIDVALIDITY"):
            _start_over(client, state, plan, info)
        start = state.last_uid + 1
        # `UID n:*` always matches the newest message, even when its UID is below n
        uids = sorted(uid for uid in client.search(["UID", f"{start}:*"]) if uid >= start)
        result.more = len(uids) > budget
        for chunk in _chunks(client, uids[:budget]):
            if deadline is not None and result.fetched and time.monotonic() > deadline:
                result.more = True
                break
            keep_alive()
            done = _import_chunk(client, plan, folder, state, chunk, result)
            result.action_error = apply_after_import(client, plan, done) or result.action_error
    except IMAPClientAbortError:
        raise
    except IMAPClientError as exc:  # a NO: missing folder, no permission ...
        result.error = f"folder {folder!r}: {_words(exc)}"
        state.last_poll_at = utcnow()
        state.last_error = result.error
        state.consecutive_errors += 1
        db.session.commit()
        return result
    state.last_success_at = utcnow()
    state.last_error = result.action_error
    state.consecutive_errors = 0
    db.session.commit()
    return result


def _import_chunk(client, plan, folder, state, chunk, result) -> list[int]:
    """Each message through receive(); last_uid moves on only once its row is committed (the
    new value rides along with the next message's commit, or the one at the end). A message
    the server will not hand over, or the ingress refuses, is recorded as failed first."""
    bodies, problems = fetch_bodies(client, chunk)
    source = f"imap:{plan.inbox_id}:{folder}"[:64]
    done = []
    for uid in chunk:
        data = bodies.get(uid)
        problem = problems.get(uid)
        if problem is None and data is not None:  # absent: expunged since the SEARCH
            try:
                raw = RawEmail(data[b"BODY[]"], [plan.recipient])
                received = receive(raw, source, inbox_id=plan.inbox_id)
            except IngressError as exc:
                problem = f"refused by the ingress: {exc.message}"
            else:
                result.imported += not received.duplicate
                done.append(uid)
        if problem is not None:
            origin = ImapOrigin(plan.inbox_id, folder, state.uidvalidity or 0, uid)
            record_unfetched(origin, problem)
            result.failed += 1
        result.fetched += 1
        state.last_uid = max(state.last_uid, uid)
    db.session.commit()
    return done


def fetch_bodies(client: IMAPClient, uids: list[int]) -> tuple[dict, dict[int, str]]:
    """BODY[] per UID, and what went wrong for each one the server would not hand over. A
    FETCH refused as a whole is asked again message by message, so one bad message is
    isolated; a UID left out of the answer but still in the folder is one of those."""
    try:
        answer = client.fetch(uids, [FETCH_BODY])
    except IMAPClientAbortError:
        raise
    except IMAPClientError as exc:
        if any(code in _words(exc) for code in TEMPORARY_CODES):
            raise  # not this message's fault: the folder is tried again at the next poll
        if len(uids) == 1:
            return {}, {uids[0]: f"the server would not hand it over: {_words(exc)}"}
        bodies, problems = {}, {}
        for uid in uids:
            one, problem = fetch_bodies(client, [uid])
            bodies.update(one)
            problems.update(problem)
        return bodies, problems
    bodies = {uid: data for uid, data in answer.items() if b"BODY[]" in data}
    missing = [uid for uid in uids if uid not in bodies]
    present = set(client.search(["UID", ",".join(map(str, missing))])) if missing else set()
    problems = {
        uid: "the server answered FETCH without its body" for uid in missing if uid in present
    }
    return bodies, problems


def record_unfetched(origin: ImapOrigin, what: str) -> InboundEmail:
    """Commit the failed record of a message (once per UID: a second failure updates its
    reason). Raises IngressUnavailable if it cannot: the sync must not move past it."""
    row = InboundEmail.unfetched_imap(origin, what)
    try:
        existing = db.session.scalar(
            select(InboundEmail).where(
                InboundEmail.message_id == row.message_id, InboundEmail.checksum == row.checksum
            )
        )
        if existing is not None:
            existing.reason = row.reason
            row = existing
        else:
            db.session.add(row)
        db.session.flush()
        row_id = row.id
        db.session.commit()
    except SQLAlchemyError as exc:
        db.session.rollback()
        raise IngressUnavailable(f"{origin.place} failed and could not be recorded") from exc
    log.warning(
        "inbox #%d: %s; recorded as failed inbound #%d", origin.inbox_id, row.reason, row_id
    )
    return row


def request_refetch(row: InboundEmail) -> None:
    """The Inbound log's retry of an unfetched IMAP message: a job fetches it again. Raises
    ReprocessError (nothing queued) or NotQueued (Redis refused the job)."""
    origin = row.imap_origin
    if origin is None or row.storage_key is not None:
        raise ReprocessError(f"inbound email #{row.id} was not left unfetched by an IMAP import")
    try:
        if not job_is_waiting(refetch_job_id(row.id)):
            enqueue_refetch(row.id)
    except (RedisError, OSError) as exc:
        raise NotQueued(
            f"inbound email #{row.id} could not be queued to be fetched again (Redis: {exc}); "
            "try again in a moment"
        ) from exc


def apply_after_import(client: IMAPClient, plan: ImportPlan, uids: list[int]) -> str | None:
    """Mark, move or delete what is safely recorded; a failure here loses nothing."""
    if not uids or plan.after_import == "leave":
        return None
    try:
        if plan.after_import == "mark":
            client.add_flags(uids, [SEEN], silent=True)
        elif plan.after_import == "move" and plan.move_to_folder:
            if client.has_capability("MOVE"):
                client.move(uids, plan.move_to_folder)
            else:
                client.copy(uids, plan.move_to_folder)
                _delete(client, uids)
        elif plan.after_import == "delete":
            _delete(client, uids)
    except IMAPClientAbortError:
        raise
    except IMAPClientError as exc:
        where = f" to {plan.move_to_folder!r}" if plan.after_import == "move" else ""
        message = f"imported, but {plan.after_import}{where} failed: {_words(exc)}"
        log.warning("inbox #%d: %s", plan.inbox_id, message)
        return message
    return None


def _delete(client: IMAPClient, uids: list[int]) -> None:
    client.delete_messages(uids, silent=True)
    if client.has_capability("UIDPLUS"):
        client.uid_expunge(uids)  # only ours, not what the user flagged \Deleted
    else:
        client.expunge()


def _start_over(client: IMAPClient, state: ImapFolderState, plan: ImportPlan, info) -> None:
    """First sync, or the server renumbered the folder (UIDVALIDITY changed): begin again at
    the first message since the start date. What was imported before is deduped."""
    since = plan.import_since or utcnow() - FIRST_SYNC_BACK
    if state.uidvalidity is not None and state.last_success_at is not None:
        since = min(since, state.last_success_at - RESYNC_MARGIN)  # nothing from an outage lost
    matching = client.search(["SINCE", since.date()])
    if matching:
        last_uid = min(matching) - 1
    elif b"UIDNEXT" in info:
        last_uid = info[b"UIDNEXT"] - 1
    else:
        last_uid = max(client.search("ALL"), default=0)
    if state.uidvalidity is not None:
        log.warning(
            "inbox #%d folder %r: UIDVALIDITY changed %s -> %s; resyncing from %s",
            plan.inbox_id,
            state.folder,
            state.uidvalidity,
            info.get(b"UIDVALIDITY"),
            since.date(),
        )
    state.uidvalidity = info.get(b"UIDVALIDITY")
    state.last_uid = last_uid
    db.session.commit()


def _chunks(client: IMAPClient, uids: list[int]) -> list[list[int]]:
    """Group UIDs so that one FETCH stays within FETCH_BYTES (a huge message goes alone)."""
    if not uids:
        return []
    sizes = client.fetch(uids, ["RFC822.SIZE"])
    chunks: list[list[int]] = [[]]
    total = 0
    for uid in uids:
        size = sizes.get(uid, {}).get(b"RFC822.SIZE", 0)
        current = chunks[-1]
        if current and (total + size > FETCH_BYTES or len(current) >= FETCH_MESSAGES):
            chunks.append([])
            current, total = chunks[-1], 0
        current.append(uid)
        total += size
    return chunks


def _state(inbox_id: int, folder: str) -> ImapFolderState:
    state = db.session.scalar(
        select(ImapFolderState).where(
            ImapFolderState.inbox_id == inbox_id, ImapFolderState.folder == folder
        )
    )
    if state is None:
        state = ImapFolderState(inbox_id=inbox_id, folder=folder, last_uid=0, consecutive_errors=0)
        db.session.add(state)
    return state
