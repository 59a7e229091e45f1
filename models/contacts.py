"""Customers, identified by email address across every inbox."""

from __future__ import annotations

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, TimestampMixin


class Contact(TimestampMixin, Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored lower-cased, so the unique index is a case-insensitive identity.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    notes: Mapped[str] = mapped_column(Text, default="", server_default="")  # the team's notes

    def __repr__(self) -> str:
        return f"<Contact {self.id} {self.email}>"
