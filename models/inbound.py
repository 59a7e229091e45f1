"""One InboundEmail per raw message received: it owns the raw bytes and their status.

Its lifecycle, like Action Mailbox's InboundEmail: pending → processing → delivered,
bounced or failed; failed, or processing whose worker died, → pending again. Workers, the
sweep and an admin can race on one row, so the transitions are written as conditional
UPDATEs built here (the claim in services/leases.py adds its own condition), and the only
in-memory transition is an admin's reprocess of a row nobody holds."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    Delete,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    Update,
    delete,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, TimestampMixin, utcnow
from models.enums import InboundStatus, checks_for, values

INBOUND_STATUSES = values(InboundStatus)
# What each status means: one vocabulary for the Inbound log, the CLI, the API and README.
STATUS_MEANINGS = {
    "pending": "received and stored; waiting for the worker",
    "processing": "the worker is on it",
    "delivered": "in a conversation (or a duplicate of one already there)",
    "bounced": (
        "received but not routable, the reason says why: no inbox matches a recipient, "
        "the inbox is archived, no sender address (a delivery report from the empty "
        "sender about none of our emails), or too large (kept from a provider that drops "
        "refused mail: raise INBOUND_EMAIL_MAX_BYTES, then Reprocess)"
    ),
    "refused": "an agent's answer by email that was not posted (the reason says why)",
    "failed": "processing went wrong; retried with backoff, the error kept",
}
TOO_LARGE = "too large"


def too_large_reason(size: int, limit: int) -> str:
    return (
        f"{TOO_LARGE}: {size} bytes, over INBOUND_EMAIL_MAX_BYTES ({limit}); raise it and "
        "press Reprocess"
    )


def is_too_large(row: InboundEmail) -> bool:
    return row.status == "bounced" and (row.reason or "").startswith(TOO_LARGE + ":")


# The Message-ID of the record of an IMAP message the server would not hand over: it names
# where the message is (so a retry can fetch it again) and makes the record unique per UID.
UNFETCHED_DOMAIN = "unfetched.threadline.invalid"


@dataclass(frozen=True)
class ImapOrigin:
    """Where an unfetched IMAP message lives: inbox, folder, UIDVALIDITY and UID."""

    inbox_id: int
    folder: str
    uidvalidity: int
    uid: int

    @property
    def place(self) -> str:
        return f"IMAP {self.folder} UID {self.uid}"


class InboundEmail(TimestampMixin, Base):
    __tablename__ = "inbound_emails"
    # The same raw message received twice is stored once (Action Mailbox's identity).
    __table_args__ = (
        *checks_for("inbound_emails"),
        UniqueConstraint("message_id", "checksum"),
        Index("ix_inbound_emails_status_created", "status", "created_at"),
        Index("ix_inbound_emails_inbox_created", "inbox_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    reason: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(String(998))  # without angle brackets
    checksum: Mapped[str] = mapped_column(String(40))  # SHA-1 hex of the raw bytes
    source: Mapped[str] = mapped_column(String(64))  # "relay", "mailgun", "imap:3:INBOX", ...
    # The header block's From, To and Subject as the Inbound log lists and searches them
    # (mail/summary.py), written at acceptance; NULL only on rows accepted before 0009.
    from_address: Mapped[str | None] = mapped_column(Text)
    to_addresses: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(Text)
    storage_key: Mapped[str | None] = mapped_column(String(1024))  # None once incinerated
    size: Mapped[int] = mapped_column(default=0)
    inbox_id: Mapped[int | None] = mapped_column(ForeignKey("inboxes.id", ondelete="SET NULL"))
    attempts: Mapped[int] = mapped_column(default=0)  # also the claim: see services/leases.py
    # While `processing`: renewed by the job's heartbeat; once past, another worker takes over.
    lease_expires_at: Mapped[datetime | None]
    processed_at: Mapped[datetime | None]
    incinerated_at: Mapped[datetime | None]
    # The SMTP connection as the relaying MTA saw it (relay ingress only, when the relay
    # command is given them; NULL otherwise): for checking SPF here (mail/spf.py).
    client_address: Mapped[str | None] = mapped_column(String(64))
    helo: Mapped[str | None] = mapped_column(String(255))
    mail_from: Mapped[str | None] = mapped_column(String(512))  # "" = the null sender <>

    # --- transitions -------------------------------------------------------------------------

    @staticmethod
    def outcome(
        status: InboundStatus,
        reason: str | None = None,
        *,
        processed: bool = False,
        inbox_id: int | None = None,
    ) -> dict:
        """The columns a processing job writes as it finishes: delivered or bounced
        (`processed`, with the inbox routing chose), or failed (RQ will try again)."""
        values: dict = {"status": InboundStatus(status), "reason": None}
        if reason:
            values["reason"] = reason[:2000]
        if processed:
            values["processed_at"] = utcnow()
        if inbox_id is not None:
            values["inbox_id"] = inbox_id
        return values

    @classmethod
    def requeue(cls, *where: ColumnElement[bool]) -> Update:
        """Back to pending, for the rows `where` selects: a failed one whose bytes were
        repaired, or a processing one whose worker died (its lease ran out)."""
        return (
            update(cls)
            .where(*where)
            .values(status=InboundStatus.PENDING, reason=None, lease_expires_at=None)
            .values(updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )

    def reprocess(self) -> None:
        """An admin's "process again": pending, with the last failure's reason cleared."""
        self.status, self.reason, self.lease_expires_at = InboundStatus.PENDING, None, None

    # --- IMAP messages the server would not hand over ----------------------------------------

    @classmethod
    def unfetched_imap(cls, origin: ImapOrigin, what: str) -> InboundEmail:
        """A failed record, without raw bytes, of a message the IMAP import could not fetch or
        store: `what` is the server's words (or the refusal). Unique per folder and UID (a
        second failure finds this row), and the Inbound log's retry fetches it again."""
        folder = origin.folder.encode().hex()
        message_id = (
            f"imap.{origin.inbox_id}.{origin.uidvalidity}.{origin.uid}.{folder}@{UNFETCHED_DOMAIN}"
        )
        return cls(
            status=InboundStatus.FAILED,
            reason=cls.unfetched_reason(origin, what),
            message_id=message_id,
            checksum=hashlib.sha1(message_id.encode()).hexdigest(),
            source=f"imap:{origin.inbox_id}:{origin.folder}"[:64],
            from_address="",
            to_addresses="",
            subject="",
            storage_key=None,
            size=0,
            inbox_id=origin.inbox_id,
        )

    @staticmethod
    def unfetched_reason(origin: ImapOrigin, what: str) -> str:
        return f"{origin.place}: {what}"[:2000]

    @classmethod
    def note_unfetched(cls, row_id: int, reason: str) -> Update:
        """A retry failed too: the record, still without bytes, says what happened now."""
        return (
            update(cls)
            .where(cls.id == row_id, cls.storage_key.is_(None))
            .values(status=InboundStatus.FAILED, reason=reason[:2000], updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )

    @classmethod
    def delete_unfetched(cls, row_id: int) -> Delete:
        """A retry fetched the message, now recorded under its own row: this record goes."""
        return (
            delete(cls)
            .where(cls.id == row_id, cls.storage_key.is_(None))
            .execution_options(synchronize_session=False)
        )

    @property
    def imap_origin(self) -> ImapOrigin | None:
        """For a record made by unfetched_imap, where its message is; None for any other."""
        local, _, domain = (self.message_id or "").rpartition("@")
        parts = local.split(".")
        if domain != UNFETCHED_DOMAIN or len(parts) != 5 or parts[0] != "imap":
            return None
        try:
            folder = bytes.fromhex(parts[4]).decode()
            return ImapOrigin(int(parts[1]), folder, int(parts[2]), int(parts[3]))
        except ValueError:
            return None
