"""What agents are told about (services/notifications): one row per event per person, each
person's choices per event, and per (person, conversation) the state of the notification
emails (folding, threading, and what the last one showed, for replies by email)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow
from models.enums import checks_for


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        *checks_for("notifications"),
        Index("ix_notifications_user_read", "user_id", "read_at"),
        Index("ix_notifications_user_conversation", "user_id", "conversation_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    # The customer's message, the note, the reply that failed (None for an assignment).
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    event: Mapped[str] = mapped_column(String(32))
    # Who did it: None for the customer, a rule or the system.
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    in_app: Mapped[bool] = mapped_column(default=True)
    email: Mapped[str | None] = mapped_column(String(16))  # None (not wanted), pending, sent
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]

    user = relationship("User", foreign_keys=[user_id])
    actor = relationship("User", foreign_keys=[actor_id])
    conversation = relationship("Conversation")
    message = relationship("Message")

    def __repr__(self) -> str:
        return f"<Notification {self.id} {self.event} user={self.user_id}>"


class NotificationPreference(Base):
    """A person's choice for one event; no row means the default (events.DEFAULTS)."""

    __tablename__ = "notification_preferences"
    __table_args__ = checks_for("notification_preferences")

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    event: Mapped[str] = mapped_column(String(32), primary_key=True)
    email: Mapped[bool]
    in_app: Mapped[bool]


class NotificationThread(Base):
    """One per (person, conversation): when the pending email goes out (later events fold
    into it), how many were sent (their Message-IDs), and the newest message the last one
    showed (a reply by email to an older state is held as a draft)."""

    __tablename__ = "notification_threads"
    __table_args__ = (
        UniqueConstraint("user_id", "conversation_id"),
        Index("ix_notification_threads_due_at", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    due_at: Mapped[datetime | None]
    emails_sent: Mapped[int] = mapped_column(default=0, server_default="0")
    last_sent_at: Mapped[datetime | None]
    last_shown_message_id: Mapped[int | None]

    user = relationship("User")
    conversation = relationship("Conversation")
