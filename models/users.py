"""Admins and agents: sign-in, API tokens and availability."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from models.base import Base, EncryptedText, TimestampMixin, utcnow
from models.enums import Role, checks_for, values

ROLES = values(Role)


def hash_api_token(token: str) -> str:
    """API tokens are high-entropy, so a fast hash is enough and allows an indexed lookup."""
    return hashlib.sha256(token.encode()).hexdigest()


class User(UserMixin, TimestampMixin, Base):
    __tablename__ = "users"
    __table_args__ = checks_for("users")

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
    # The agent's own signature, sanitised HTML (services/signatures.py), above the inbox's.
    signature: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Two-factor sign-in (TOTP). The secret is encrypted at rest like every other secret;
    # it exists from "set up" on, but only counts once `totp_enabled_at` is set.
    totp_secret: Mapped[str | None] = mapped_column(EncryptedText)
    totp_enabled_at: Mapped[datetime | None]
    # The last accepted 30-second time step: a code is never accepted twice.
    totp_last_step: Mapped[int | None]
    # JSON list of SHA-256 hashes of the unused recovery codes.
    recovery_code_hashes: Mapped[str | None] = mapped_column(Text)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

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

    # Set by services.sessions when this object stands for a signed-in browser.
    # (Plain class attributes, not columns.)
    session_token = None
    current_session = None

    def get_id(self) -> str:
        """What Flask-Login puts in the session and remember-me cookies: the id of this
        browser's server-side session, never the user id (services/sessions.py says why)."""
        if not self.session_token:
            raise RuntimeError("sign users in with services.sessions.start_session()")
        return self.session_token

    @property
    def has_two_factor(self) -> bool:
        return self.totp_enabled_at is not None and bool(self.totp_secret)

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email} {self.role}>"


class UserSession(Base):
    """One signed-in browser. The cookie carries a random id; only its hash is stored, so a
    copy of the database signs nobody in. Deleting the row ends the session and its
    remember-me cookie at their next request (see services/sessions.py)."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    remember: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    user_agent: Mapped[str] = mapped_column(String(255), default="")
    ip_address: Mapped[str] = mapped_column(String(64), default="")

    def __repr__(self) -> str:
        return f"<UserSession {self.id} user={self.user_id}>"
