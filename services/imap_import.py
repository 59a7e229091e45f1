"""Import new mail from one IMAP folder through the shared ingress path, each message once.

Per folder, ImapFolderState keeps the UIDVALIDITY and the highest UID whose InboundEmail is
committed: a crash or an outage at any point re-fetches at most what was not yet recorded,
and the ingress dedupe (Message-ID + checksum) absorbs anything fetched twice. Messages are
read with BODY.PEEK[] (and the folder opened read-only when they are left alone), so the
mailbox looks untouched to everyone else who reads it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from imapclient import SEEN, IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError
from sqlalchemy import select

from extensions import db
from ingress import RawEmail
from ingress.receive import receive
from mail.imap import _words
from models import ImapFolderState, ImapSettings, utcnow
from models.inboxes import AFTER_IMPORT

log = logging.getLogger(__name__)

FIRST_SYNC_BACK = timedelta(days=1)  # default start of the first sync
RESYNC_MARGIN = timedelta(days=1)  # after a UIDVALIDITY change, look back past the last sync
FETCH_BYTES = 8 * 1024 * 1024  # one FETCH brings at most this much (or one larger message)
FETCH_MESSAGES = 25


@dataclass
class FolderResult:
    folder: str
    fetched: int = 0  # messages read from the server (new or already known)
    imported: int = 0  # of which new InboundEmail rows
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
) -> FolderResult:
    """Import up to `budget` new messages from `folder`. A NO from the server about this
    folder is recorded and returned; a broken connection (abort, socket error) raises."""
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
            keep_alive()
            done = _import_chunk(client, plan, folder, state, chunk, result)
            result.action_error = _after_import(client, plan, done) or result.action_error
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
    new value rides along with the next message's commit, or the one at the end)."""
    bodies = client.fetch(chunk, ["BODY.PEEK[]"])
    source = f"imap:{plan.inbox_id}:{folder}"[:64]
    done = []
    for uid in chunk:
        data = bodies.get(uid)
        if data is not None and b"BODY[]" in data:  # absent: expunged since the SEARCH
            raw = RawEmail(data[b"BODY[]"], [plan.recipient])
            received = receive(raw, source, inbox_id=plan.inbox_id)
            result.imported += not received.duplicate
            done.append(uid)
        result.fetched += 1
        state.last_uid = max(state.last_uid, uid)
    db.session.commit()
    return done


def _after_import(client: IMAPClient, plan: ImportPlan, uids: list[int]) -> str | None:
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
