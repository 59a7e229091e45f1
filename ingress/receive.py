"""The one path every inbound message takes: store raw bytes, record, enqueue, then 2xx.

Order matters for "nothing acknowledged is lost": the raw bytes are durable in object
storage and the InboundEmail row is committed before the caller may answer 2xx. If only the
enqueue fails (Redis down) the row stays pending and the sweep enqueues it later.

Stored means stored: an object already under the content-addressed key is trusted only after
its size and SHA-1 are verified; an upload cut short (an S3 server dying mid-write can leave an
empty object) is rewritten by the sender's retry, also for a message whose row already exists.
A fresh upload is checked by the server itself (the SDK signs the payload's SHA-256, or sends
Content-MD5 over HTTPS).

A new message, the common case, costs one storage write, one database statement (`INSERT …
ON CONFLICT DO NOTHING`, RETURNING id on PostgreSQL; written with Core: no unit of work to
flush) and its commit, and one enqueue (queued only if no job of its id exists, checked
atomically in Redis). Only when that INSERT finds the row already there is the existing row
read: duplicates pay for the lookup, not every message.
"""

from __future__ import annotations

import hashlib
import logging
import re
import tempfile
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from functools import cache
from typing import BinaryIO

from redis.exceptions import RedisError
from sqlalchemy import Insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from extensions import db, get_storage
from ingress import Connection, RawEmail
from mail.summary import Summary, summary_of
from models import InboundEmail
from models.inbound import too_large_reason
from services.background import enqueue_processing as enqueue_processing_job
from services.background import job_is_waiting, processing_job_id
from storage import DamagedObject, ObjectNotFound, Storage, StorageError

log = logging.getLogger(__name__)

SPOOL_IN_MEMORY = 1024 * 1024  # larger messages spool to a temp file, never all in RAM
HEADER_SCAN = 256 * 1024
CHUNK = 64 * 1024
NO_CONNECTION = Connection()  # every ingress but the relay: the columns stay NULL
_ANGLE = re.compile(r"<([^<>\s]+)>")
# An empty line in any of the line endings the email parser accepts (\r\n, \n, a lone \r).
_EMPTY_LINE = re.compile(rb"\n\r?\n|\r\r")


class IngressUnavailable(Exception):
    """The message could not be stored safely: answer 503 so the sender retries."""


@dataclass
class Received:
    """What receive() did: the row's id, whether it was already there, whether its job waits.

    A new row is written by a Core INSERT, not through the session, so the row object is
    loaded only for a caller that asks for it (a duplicate's is already in the session)."""

    inbound_email_id: int
    duplicate: bool
    enqueued: bool

    @property
    def inbound_email(self) -> InboundEmail:
        return db.session.get_one(InboundEmail, self.inbound_email_id)


def storage_key_for(checksum: str) -> str:
    """Content-addressed: the same bytes always land on the same key, written once."""
    return f"inbound/{checksum[:2]}/{checksum}.eml"


def read_head(head: bytes, checksum: str) -> tuple[str, Summary]:
    """The Message-ID and the From, To and Subject of the header block, from one parse.

    Parsed only up to the first empty line: the header block has ended there at the latest,
    and the parser would otherwise split the whole body into lines to throw them away (of a
    50 KB message's parse, nine tenths)."""
    blank = _EMPTY_LINE.search(head)
    if blank is not None:
        head = head[: blank.end()]
    headers = BytesHeaderParser(policy=compat32).parsebytes(head)
    return message_id_from(headers, checksum), summary_of(headers)


def message_id_from(headers: Message, checksum: str) -> str:
    """Message-ID without brackets; a stable one derived from the checksum when absent."""
    value = str(headers.get("Message-ID", "") or "")
    match = _ANGLE.search(value)
    candidate = match.group(1) if match else value.strip().strip("<>").strip()
    usable = candidate.isprintable() and " " not in candidate  # no NUL/control characters
    if candidate and usable and len(candidate) <= 900:
        return candidate
    return f"{checksum}@generated.threadline.invalid"


def _spool(raw: RawEmail) -> tuple[BinaryIO, int, str, bytes]:
    """Copy prepended headers + body into a spooled file; return (file, size, sha1, head)."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
    sha1 = hashlib.sha1()
    head = bytearray()
    # Each recipient line is prepended in turn, as Action Mailbox does: the last ends on top.
    prefix = b"".join(f"X-Original-To: {to}\n".encode() for to in reversed(raw.original_recipients))

    def write(chunk: bytes) -> None:
        sha1.update(chunk)
        spool.write(chunk)
        if len(head) < HEADER_SCAN:
            head.extend(chunk[: HEADER_SCAN - len(head)])

    write(prefix)
    if isinstance(raw.body, bytes | bytearray):
        write(bytes(raw.body))
    elif hasattr(raw.body, "read"):
        while chunk := raw.body.read(CHUNK):
            write(chunk)
    else:
        for chunk in raw.body:
            write(chunk)
    size = spool.tell()
    spool.seek(0)
    return spool, size, sha1.hexdigest(), bytes(head)


def receive(
    raw: RawEmail, source: str, inbox_id: int | None = None, too_large_over: int | None = None
) -> Received:
    """Store, record and enqueue one raw message. Raises IngressUnavailable (→ 503).

    A message larger than `too_large_over` (from a provider that would drop a 413 silently)
    is stored and recorded but not processed: bounced as too large, for an admin to raise
    the limit and reprocess."""
    spool, size, checksum, head = _spool(raw)
    held = None
    if too_large_over is not None and size > too_large_over:
        held = too_large_reason(size, too_large_over)
    with spool:
        message_id, summary = read_head(head, checksum)
        _connect()  # an unreachable database is a 503 before anything is stored
        key = storage_key_for(checksum)
        try:
            created = _store_verified(get_storage(), key, spool, size, checksum)
        except StorageError as exc:
            log.error("inbound %s from %s not stored: %s", message_id, source, exc)
            raise IngressUnavailable(f"the message could not be stored: {exc}") from exc
        row = {
            "message_id": message_id,
            "checksum": checksum,
            "source": source,
            "storage_key": key,
            "size": size,
            "inbox_id": inbox_id,
            **summary.columns(),
            **(raw.connection or NO_CONNECTION).columns(),
            **({"status": "bounced", "reason": held} if held else {}),
        }
        try:
            row_id = _insert(row)
        except IntegrityError:  # e.g. the inbox was deleted meanwhile: as before, retry
            db.session.rollback()
            row_id = None
        except SQLAlchemyError as exc:
            db.session.rollback()
            log.error("inbound %s from %s not recorded: %s", message_id, source, exc)
            if created:
                _forget_orphan(key)
            raise IngressUnavailable("the message could not be recorded in the database") from exc
        if row_id is None:
            return _duplicate(message_id, checksum, key, created)
    if held:
        log.warning("inbound %s kept as #%d from %s: %s", message_id, row_id, source, held)
        return Received(row_id, False, False)
    log.info("inbound %s recorded as #%d from %s (%d bytes)", message_id, row_id, source, size)
    return Received(row_id, False, enqueue_job(row_id))


def _connect() -> None:
    """Check out the session's connection (pinged by the pool) before writing any bytes.

    On SQLite, when the session has no transaction yet (a web request), the connection is
    in autocommit: the INSERT then commits itself within its one call into SQLite, so the
    database's single write lock is held for that call only, not also while this thread
    waits for the GIL between an INSERT and a COMMIT (the server's other threads run Python
    meanwhile, and the writers queued behind the lock sleep in SQLite's busy back-off).
    A caller already in a transaction (an IMAP import) keeps its transaction."""
    try:
        if db.engine.dialect.name == "sqlite" and not db.session().in_transaction():
            db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        else:
            db.session.connection()
    except SQLAlchemyError as exc:
        db.session.rollback()
        raise IngressUnavailable("the database is unreachable") from exc


def _insert(values: dict) -> int | None:
    """Insert and commit the row in one statement; None if (message_id, checksum) is taken.

    ON CONFLICT names the unique pair, so any other violation still raises IntegrityError.
    Column defaults (pending, timestamps) are Core defaults, applied as by the ORM. SQLite
    reports the new id as the cursor's lastrowid (RETURNING would keep the statement, and
    the autocommitted write with it, open until its row is fetched)."""
    dialect = db.engine.dialect.name
    result = db.session.connection().execute(_insert_statement(dialect), values)
    if dialect == "sqlite":
        row_id = result.inserted_primary_key[0] if result.rowcount == 1 else None
    else:
        row_id = result.scalar()
    # Committed even when nothing was inserted: SQLite holds its write lock until the
    # transaction ends, and whatever the caller had pending (an IMAP import's last UID) is
    # committed as it would be with a new message.
    db.session.commit()
    return row_id


@cache
def _insert_statement(dialect: str) -> Insert:
    """Built once per dialect, values bound per call: building it is a good part of its cost.
    On the table, not the mapped class: a Core statement, no ORM bulk-insert machinery."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    table = InboundEmail.__table__
    statement = insert(table).on_conflict_do_nothing(index_elements=["message_id", "checksum"])
    return statement if dialect == "sqlite" else statement.returning(table.c.id)


def _duplicate(message_id: str, checksum: str, key: str, created: bool) -> Received:
    """The same message was recorded before (or a moment ago by a concurrent post): the same
    answer, one row, one job. Its key is this one (content-addressed), or None once its raw
    copy was incinerated after processing: then the bytes just written are not wanted."""
    existing = _find(message_id, checksum)
    if existing is None:  # the conflicting row went away meanwhile (or another constraint)
        raise IngressUnavailable("the message could not be recorded; retry")
    if existing.storage_key is None:
        if created:
            _forget_orphan(key)
    elif created:
        _retry_after_repair(existing)
    return Received(existing.id, True, enqueue_processing(existing))


def _store_verified(storage: Storage, key: str, spool: BinaryIO, size: int, sha1: str) -> bool:
    """Make key hold exactly the spooled bytes; True if they were (re)written by this call."""
    try:
        storage.verify(key, size, sha1)
        return False
    except ObjectNotFound:
        pass
    except DamagedObject as exc:
        log.warning("%s; rewriting it", exc)
    storage.put(key, spool, length=size, content_type="message/rfc822")
    return True


def _retry_after_repair(row: InboundEmail) -> None:
    """A row that failed on its damaged copy is pending again now the copy is whole."""
    try:
        repaired = db.session.execute(
            InboundEmail.requeue(InboundEmail.id == row.id, InboundEmail.status == "failed")
        )
        db.session.commit()
    except SQLAlchemyError as exc:  # the bytes are whole: a retry or reprocess will do it
        db.session.rollback()
        log.warning("inbound #%d repaired but left %s: %s", row.id, row.status, exc)
        return
    if repaired.rowcount:
        db.session.refresh(row)
        log.info("inbound #%d: stored copy repaired; pending again", row.id)


def _find(message_id: str, checksum: str) -> InboundEmail | None:
    try:
        return db.session.scalar(
            select(InboundEmail).where(
                InboundEmail.message_id == message_id, InboundEmail.checksum == checksum
            )
        )
    except SQLAlchemyError as exc:
        db.session.rollback()
        raise IngressUnavailable("the database is unreachable") from exc


def _forget_orphan(key: str) -> None:
    """Remove bytes we just wrote when their row failed, unless another row owns them."""
    try:
        owned = db.session.scalar(select(InboundEmail.id).where(InboundEmail.storage_key == key))
        if owned is None:
            get_storage().delete(key)
    except (SQLAlchemyError, StorageError) as exc:
        db.session.rollback()
        log.warning("could not remove orphaned raw message %s: %s", key, exc)


def enqueue_processing(row: InboundEmail) -> bool:
    """Enqueue the processing job unless it is done or already waiting; False if Redis is down."""
    if row.status != "pending":
        return False
    try:
        if job_is_waiting(processing_job_id(row.id)):
            return True
    except (RedisError, OSError) as exc:
        log.warning("inbound #%d not enqueued (Redis: %s); the sweep will", row.id, exc)
        return False
    return enqueue_job(row.id)


def enqueue_job(inbound_email_id: int) -> bool:
    """Enqueue without looking first (a row just created has no job yet); False if Redis is
    down: the row stays pending and the sweep enqueues it.

    Queued only if no job of its id exists, atomically (a concurrent post of the same message
    may be queuing it this instant: one of the two pushes it). A job found there that will not
    run (left by an id the database handed out again) is replaced."""
    job_id = processing_job_id(inbound_email_id)
    try:
        if not enqueue_processing_job(inbound_email_id, once=True) and not job_is_waiting(job_id):
            enqueue_processing_job(inbound_email_id)
        return True
    except (RedisError, OSError) as exc:
        log.warning("inbound #%d not enqueued (Redis: %s); the sweep will", inbound_email_id, exc)
        return False
