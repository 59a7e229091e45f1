"""Email inboxes, who may work them, and their IMAP/SMTP connection settings."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy import true as sa_true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, EncryptedText, TimestampMixin, utcnow
from models.enums import (
    AfterImport,
    InboxMode,
    ReplyToStyle,
    Security,
    SenderNameStyle,
    SmtpAuth,
    checks_for,
    values,
)

if TYPE_CHECKING:
    from models.oauth import OAuthConnection

MODES = values(InboxMode)
SENDER_NAME_STYLES = values(SenderNameStyle)
REPLY_TO_STYLES = values(ReplyToStyle)
SECURITY = values(Security)
AFTER_IMPORT = values(AfterImport)
SMTP_AUTH = values(SmtpAuth)


def new_forward_token() -> str:
    """Local part of the generated forwarding address: 128 random bits, hex."""
    return secrets.token_hex(16)


class Inbox(TimestampMixin, Base):
    __tablename__ = "inboxes"
    __table_args__ = checks_for("inboxes")

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    support_address: Mapped[str] = mapped_column(String(320), unique=True)
    forward_token: Mapped[str] = mapped_column(String(64), unique=True, default=new_forward_token)
    mode: Mapped[str] = mapped_column(String(16), default="forwarding")
    # Sanitised HTML (services/signatures.py) with {{agent.name}} / {{inbox.name}} variables;
    # the plain-text part gets its text version.
    signature: Mapped[str] = mapped_column(Text, default="")
    sender_name_style: Mapped[str] = mapped_column(String(24), default="agent_from_inbox")
    reply_to_style: Mapped[str] = mapped_column(String(24), default="continuity")
    auto_assign: Mapped[bool] = mapped_column(default=False)
    subject_threading: Mapped[bool] = mapped_column(default=True)
    needs_attention: Mapped[str | None] = mapped_column(Text)
    last_message_at: Mapped[datetime | None]
    # Archived: receives nothing more (ingress and IMAP skip it) and keeps its history.
    archived_at: Mapped[datetime | None]
    # Business hours, for rules and the auto-acknowledgement (services/business_hours.py):
    # the inbox's IANA time zone; per weekday ("mon".."sun") a list of ["HH:MM", "HH:MM"]
    # spans, None meaning "no hours set" (always within hours); holidays as "YYYY-MM-DD".
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    business_hours: Mapped[dict | None] = mapped_column(JSON)
    holidays: Mapped[list] = mapped_column(JSON, default=list)

    members: Mapped[list[InboxMember]] = relationship(
        back_populates="inbox", cascade="all, delete-orphan"
    )
    imap: Mapped[ImapSettings | None] = relationship(
        back_populates="inbox", cascade="all, delete-orphan", uselist=False
    )
    smtp: Mapped[SmtpSettings | None] = relationship(
        back_populates="inbox", cascade="all, delete-orphan", uselist=False
    )
    # Signed in with Microsoft 365 / Google (models/oauth.py): IMAP and SMTP use XOAUTH2.
    oauth: Mapped[OAuthConnection | None] = relationship(
        back_populates="inbox", cascade="all, delete-orphan", uselist=False
    )

    # More addresses that are this inbox (aliases, send-as): routed here, replied from.
    aliases: Mapped[list[InboxAddress]] = relationship(
        back_populates="inbox", cascade="all, delete-orphan", order_by="InboxAddress.id"
    )

    def forwarding_address(self, domain: str) -> str:
        return f"{self.forward_token}@{domain}" if domain else ""

    def __repr__(self) -> str:
        return f"<Inbox {self.id} {self.support_address}>"


class InboxMember(Base):
    __tablename__ = "inbox_members"

    inbox_id: Mapped[int] = mapped_column(
        ForeignKey("inboxes.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    # Round-robin auto-assignment picks the available member assigned longest ago.
    last_assigned_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    inbox: Mapped[Inbox] = relationship(back_populates="members")


class InboxAddress(Base):
    """An alias of an inbox: mail to it lands in the inbox, and a reply to a customer who
    wrote to it goes out from it. Verified once a test email sent to it arrived."""

    __tablename__ = "inbox_addresses"

    id: Mapped[int] = mapped_column(primary_key=True)
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(String(320), unique=True)  # lower-case
    # The test email: when it was sent, and when it arrived through this address.
    test_sent_at: Mapped[datetime | None]
    verified_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    inbox: Mapped[Inbox] = relationship(back_populates="aliases")


class ImapSettings(TimestampMixin, Base):
    __tablename__ = "inbox_imap_settings"
    __table_args__ = checks_for("inbox_imap_settings")

    inbox_id: Mapped[int] = mapped_column(
        ForeignKey("inboxes.id", ondelete="CASCADE"), primary_key=True
    )
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(default=993)
    security: Mapped[str] = mapped_column(String(16), default="ssl")
    username: Mapped[str] = mapped_column(String(320))
    password: Mapped[str] = mapped_column(EncryptedText)
    folders: Mapped[str] = mapped_column(Text, default="INBOX")  # one folder per line
    poll_interval_seconds: Mapped[int] = mapped_column(default=60)
    # Watched with IMAP IDLE when the server offers it (jobs/imap_idle.py); off: polling only.
    use_idle: Mapped[bool] = mapped_column(default=True, server_default=sa_true())
    after_import: Mapped[str] = mapped_column(String(16), default="leave")
    move_to_folder: Mapped[str | None] = mapped_column(String(255))
    import_since: Mapped[datetime | None]
    enabled: Mapped[bool] = mapped_column(default=True)
    # Poll bookkeeping for the scheduler and the health page. A network error doubles the
    # wait (1, 2, 4 ... 30 min) through next_poll_at; an authentication failure sets
    # Inbox.needs_attention and polling stops until the settings are saved again.
    next_poll_at: Mapped[datetime | None]
    last_poll_at: Mapped[datetime | None]
    last_poll_result: Mapped[str | None] = mapped_column(Text)
    consecutive_failures: Mapped[int] = mapped_column(default=0, server_default="0")

    inbox: Mapped[Inbox] = relationship(back_populates="imap")

    @property
    def folder_list(self) -> list[str]:
        return [f.strip() for f in self.folders.splitlines() if f.strip()] or ["INBOX"]


class SmtpSettings(TimestampMixin, Base):
    __tablename__ = "inbox_smtp_settings"
    __table_args__ = checks_for("inbox_smtp_settings")

    inbox_id: Mapped[int] = mapped_column(
        ForeignKey("inboxes.id", ondelete="CASCADE"), primary_key=True
    )
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(default=587)
    security: Mapped[str] = mapped_column(String(16), default="starttls")
    auth_method: Mapped[str] = mapped_column(String(16), default="login")
    username: Mapped[str | None] = mapped_column(String(320))
    password: Mapped[str | None] = mapped_column(EncryptedText)
    enabled: Mapped[bool] = mapped_column(default=True)

    inbox: Mapped[Inbox] = relationship(back_populates="smtp")


class ImapFolderState(Base):
    """Where IMAP import stands per folder: nothing missed after an outage, nothing twice."""

    __tablename__ = "imap_folder_states"
    __table_args__ = (UniqueConstraint("inbox_id", "folder"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"))
    folder: Mapped[str] = mapped_column(String(255))
    uidvalidity: Mapped[int | None]
    last_uid: Mapped[int] = mapped_column(default=0)
    last_poll_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    consecutive_errors: Mapped[int] = mapped_column(default=0)
