"""Declarative base, timestamps and the encrypted column type shared by all models."""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import DateTime, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, registry
from sqlalchemy.types import TypeDecorator

from mail import people


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite drops tzinfo otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given; use models.base.utcnow()")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


# Stable constraint names so Alembic migrations work the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    registry = registry(
        metadata=metadata, type_annotation_map={datetime: UTCDateTime(), str: String(255)}
    )


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class _SecretBox:
    """Process-wide cipher for secrets at rest; configured once by create_app."""

    fernet: MultiFernet | None = None

    def configure(self, keys: list[bytes]) -> None:
        self.fernet = MultiFernet([Fernet(k) for k in keys])

    def _require(self) -> MultiFernet:
        if self.fernet is None:
            raise RuntimeError("secrets cipher not configured; build the app with create_app()")
        return self.fernet

    def encrypt(self, plain: str) -> str:
        return self._require().encrypt(plain.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._require().decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError(
                "a stored secret cannot be decrypted: ENCRYPTION_KEY (or SECRET_KEY) changed; "
                "restore the old key or re-enter the password"
            ) from exc


secret_box = _SecretBox()


class EncryptedText(TypeDecorator):
    """Stores a secret encrypted with Fernet; Python code only ever sees plain text."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else secret_box.encrypt(value)

    def process_result_value(self, value, dialect):
        return None if value is None else secret_box.decrypt(value)


class PeopleType(TypeDecorator):
    """A header's people (mail/model.py People), stored as JSON text: `[{"name",
    "address"}]`. Code may hand it People, Person objects, address strings or one RFC 5322
    address list (mail/people.py people_of); it always reads People back."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return people.dumps(people.people_of(value))

    def process_result_value(self, value, dialect):
        return people.loads(value)
