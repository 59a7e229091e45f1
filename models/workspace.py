"""What agents keep while they work: a reply draft per agent and conversation, and saved
replies (canned answers) shared per inbox, for everyone, or personal."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, TimestampMixin, utcnow
from models.enums import checks_for


class ReplyDraft(Base):
    """The composer as an agent left it: saved as they type, so a reload or another device
    finds it, and colleagues see "Ana is drafting". Sending deletes it."""

    __tablename__ = "reply_drafts"
    __table_args__ = (
        *checks_for("reply_drafts"),
        UniqueConstraint("conversation_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8), default="reply")  # reply | note
    text: Mapped[str] = mapped_column(Text, default="")
    to: Mapped[str] = mapped_column("to_addresses", Text, default="")  # comma-separated
    cc: Mapped[str] = mapped_column(Text, default="")
    bcc: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    user = relationship("User")


class SavedReply(TimestampMixin, Base):
    """A canned answer. Shared ones belong to an inbox (`inbox_id`) or to every inbox (both
    NULL) and are managed by admins; a personal one (`owner_id`) is its agent's alone. The
    body may use {{contact.name}}, {{agent.name}}, {{conversation.number}} and the like."""

    __tablename__ = "saved_replies"
    __table_args__ = (
        CheckConstraint("inbox_id IS NULL OR owner_id IS NULL", name="shared_or_personal"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text, default="")
    inbox_id: Mapped[int | None] = mapped_column(
        ForeignKey("inboxes.id", ondelete="CASCADE"), index=True
    )
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )

    inbox = relationship("Inbox")
    owner = relationship("User")

    @property
    def personal(self) -> bool:
        return self.owner_id is not None
