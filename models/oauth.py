"""An inbox's OAuth 2.0 sign-in to Microsoft 365 or Google (services/oauth.py): the tokens
XOAUTH2 signs in to IMAP and SMTP with, encrypted at rest like passwords.

Made in the wizard before its inbox exists, a connection belongs to the wizard's draft
(`draft_id`) until the inbox is created, then to the inbox (`inbox_id`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, EncryptedText, TimestampMixin
from models.enums import checks_for


class OAuthConnection(TimestampMixin, Base):
    __tablename__ = "inbox_oauth"
    __table_args__ = checks_for("inbox_oauth")

    id: Mapped[int] = mapped_column(primary_key=True)
    inbox_id: Mapped[int | None] = mapped_column(
        ForeignKey("inboxes.id", ondelete="CASCADE"), unique=True
    )
    draft_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    provider: Mapped[str] = mapped_column(String(16))
    # The address XOAUTH2 signs in as: the signed-in user's own, or a shared mailbox's.
    mailbox: Mapped[str] = mapped_column(String(320))
    refresh_token: Mapped[str] = mapped_column(EncryptedText)
    access_token: Mapped[str | None] = mapped_column(EncryptedText)
    access_expires_at: Mapped[datetime | None]
    last_refresh_at: Mapped[datetime | None]
    # The provider's words when it refused the refresh token: a person must reconnect.
    last_error: Mapped[str | None] = mapped_column(Text)

    inbox = relationship("Inbox", back_populates="oauth")

    def __repr__(self) -> str:
        return f"<OAuthConnection {self.id} {self.provider} {self.mailbox}>"
