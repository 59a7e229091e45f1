"""An inbox's block list: senders whose mail goes straight to the Spam view (services/spam.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class BlockedSender(Base):
    """One entry: a full address (`a@b.example`) or a whole domain (`b.example`), lower-case.
    A domain entry covers that domain only, not its subdomains."""

    __tablename__ = "inbox_blocked_senders"
    __table_args__ = (UniqueConstraint("inbox_id", "pattern"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"))
    pattern: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )

    @property
    def is_domain(self) -> bool:
        return "@" not in self.pattern

    def __repr__(self) -> str:
        return f"<BlockedSender {self.inbox_id} {self.pattern}>"
