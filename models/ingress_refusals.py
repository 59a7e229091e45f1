"""A post an ingress refused (services/ingress_refusals.py): never silent, even when the
sender drops our answer. Repeats of one refusal from one client within a few minutes are
one row with a count, so a flood of bad posts cannot fill the table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class IngressRefusal(Base):
    __tablename__ = "ingress_refusals"
    __table_args__ = (Index("ix_ingress_refusals_last_at", "last_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_at: Mapped[datetime] = mapped_column(default=utcnow)  # the latest repeat
    count: Mapped[int] = mapped_column(default=1)
    ingress: Mapped[str] = mapped_column(String(32))  # "relay", "sendgrid", ...
    status: Mapped[int]  # the HTTP status we answered
    client_address: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    # Read from the refused message's header block, only when the post was authenticated
    # and its bytes were readable; never the body.
    from_address: Mapped[str | None] = mapped_column(Text)
    to_addresses: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(998))
    size: Mapped[int | None]  # the request's Content-Length, when it gave one

    def __repr__(self) -> str:
        return f"<IngressRefusal {self.id} {self.ingress} {self.status}>"
