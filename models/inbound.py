"""One InboundEmail per raw message received: it owns the raw bytes and their status."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, TimestampMixin
from models.enums import InboundStatus, checks_for, values

INBOUND_STATUSES = values(InboundStatus)


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
    storage_key: Mapped[str | None] = mapped_column(String(1024))  # None once incinerated
    size: Mapped[int] = mapped_column(default=0)
    inbox_id: Mapped[int | None] = mapped_column(ForeignKey("inboxes.id", ondelete="SET NULL"))
    attempts: Mapped[int] = mapped_column(default=0)  # also the claim: see services/leases.py
    # While `processing`: renewed by the job's heartbeat; once past, another worker takes over.
    lease_expires_at: Mapped[datetime | None]
    processed_at: Mapped[datetime | None]
    incinerated_at: Mapped[datetime | None]
