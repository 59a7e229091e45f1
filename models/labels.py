"""Labels ("billing", "urgent") and which conversations carry them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class Label(Base):
    """One label for the whole deployment. `name` is the lower-cased key (unique, so
    "Urgent" and "urgent" are the same label); `display_name` keeps the first spelling."""

    __tablename__ = "labels"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    display_name: Mapped[str] = mapped_column(String(40))
    color: Mapped[str | None] = mapped_column(String(16))  # "#d33" or None for the default
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<Label {self.name}>"


class ConversationLabel(Base):
    __tablename__ = "conversation_labels"
    __table_args__ = (
        UniqueConstraint("conversation_id", "label_id"),
        Index("ix_conversation_labels_label", "label_id", "conversation_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    label_id: Mapped[int] = mapped_column(ForeignKey("labels.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
