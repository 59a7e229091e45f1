"""Admins and agents: sign-in, API tokens and availability."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from models.base import Base, TimestampMixin

ROLES = ("admin", "agent")
AVAILABILITY = ("online", "busy", "offline")


def hash_api_token(token: str) -> str:
    """API tokens are high-entropy, so a fast hash is enough and allows an indexed lookup."""
    return hashlib.sha256(token.encode()).hexdigest()


class User(UserMixin, TimestampMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(16), default="agent")
    password_hash: Mapped[str] = mapped_column(String(255))
    api_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    availability: Mapped[str] = mapped_column(String(16), default="offline")
    active: Mapped[bool] = mapped_column(default=True)
    last_login_at: Mapped[datetime | None]
    # IANA name ("Europe/Lisbon"); snooze times and dates on pages are in this zone.
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_active(self) -> bool:  # Flask-Login refuses sign-in for deactivated users
        return self.active

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def issue_api_token(self) -> str:
        """Return a new token once; only its hash is stored."""
        token = "tl_" + secrets.token_urlsafe(32)
        self.api_token_hash = hash_api_token(token)
        return token

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email} {self.role}>"
