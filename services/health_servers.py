"""Live checks of the servers the app talks to: the database, Redis, storage and SMTP; and
the whole doctor's list, which also takes the app's own checks from services/health.py."""

from __future__ import annotations

import smtplib
from urllib.parse import urlsplit

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from config import Settings
from extensions import db, get_redis, get_storage
from mail.smtp import describe_refusal, smtp_session
from services.health import (
    FAIL,
    OK,
    WARN,
    Check,
    check_file_modes,
    check_ingresses,
    check_workers,
)
from services.outbound import global_smtp_target
from storage import StorageError


def describe_database(url: str) -> str:
    """The database location without its password."""
    parts = urlsplit(url)
    if parts.scheme.startswith("sqlite"):
        return f"SQLite {url.split(':///', 1)[-1]}"
    return f"PostgreSQL {parts.hostname}:{parts.port or 5432}{parts.path}"


def describe_redis(settings: Settings) -> str:
    if settings.embedded_redis:
        return f"embedded Redis at {settings.embedded_redis_socket}"
    parts = urlsplit(settings.redis_url)
    if parts.scheme == "unix":
        return f"Redis at {parts.path}"
    return f"Redis at {parts.hostname}:{parts.port or 6379}{parts.path}"


def check_database(settings: Settings) -> Check:
    where = describe_database(settings.database_url)
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            current = MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as exc:
        reason = str(exc.orig if getattr(exc, "orig", None) else exc).strip().splitlines()[0]
        return Check(
            "database",
            FAIL,
            f"cannot connect to {where}: {reason}",
            "check DATABASE_URL and that the server is running and reachable",
        )
    head = ScriptDirectory.from_config(current_app.extensions["migrate"].migrate.get_config())
    heads = set(head.get_heads())
    if current not in heads:
        return Check(
            "database",
            FAIL,
            f"{where} is at schema {current or '(empty)'}, code expects {', '.join(heads)}",
            "run: flask db upgrade (make run does this)",
        )
    return Check("database", OK, f"{where}, schema {current}")


def check_redis(settings: Settings, connection: Redis | None = None) -> tuple[Check, Redis | None]:
    """Ping Redis through `connection` (e.g. one with short timeouts), else the app's pool."""
    where = describe_redis(settings)
    try:
        connection = connection or get_redis()
        connection.ping()
    except (RedisError, OSError) as exc:
        fix = (
            "start Threadline with make run (it starts the embedded Redis), or set REDIS_URL"
            if settings.embedded_redis
            else "check REDIS_URL and that the Redis server is running and reachable"
        )
        return Check("redis", FAIL, f"cannot connect to {where}: {exc}", fix), None
    return Check("redis", OK, where), connection


def check_storage() -> Check:
    try:
        storage = get_storage()  # inside: a local folder that cannot be created fails here
        storage.check()
    except StorageError as exc:
        return Check("storage", FAIL, str(exc), "check STORAGE_BACKEND and the MINIO_* settings")
    return Check("storage", OK, storage.describe())


def check_smtp(settings: Settings, timeout: float = 10.0) -> Check:
    if not settings.smtp_address:
        return Check(
            "smtp",
            WARN,
            "SMTP_ADDRESS is empty: replies need each inbox's own SMTP server",
            "set SMTP_ADDRESS (and SMTP_PORT) for a shared outgoing server",
        )
    target = global_smtp_target(settings)
    where = target.address
    try:
        with smtp_session(target, timeout=timeout) as session:
            tls = session.tls
            auth = (
                f"signed in as {session.authenticated_as}"
                if session.authenticated_as
                else "no AUTH"
            )
    except smtplib.SMTPAuthenticationError as exc:
        return Check(
            "smtp",
            FAIL,
            f"{where} refused the login: {describe_refusal(exc)}",
            "check SMTP_USERNAME/SMTP_PASSWORD (an app password if the provider uses 2FA)",
        )
    except (smtplib.SMTPException, OSError) as exc:
        return Check(
            "smtp",
            FAIL,
            f"cannot talk to {where}: {exc}",
            "check SMTP_ADDRESS, SMTP_PORT, SMTP_SSL and SMTP_ENABLE_STARTTLS_AUTO",
        )
    security = "TLS" if tls else "no TLS"
    return Check("smtp", OK, f"{where}, {security}, {auth}")


def run_all_checks(settings: Settings) -> list[Check]:
    """Every check `flask doctor` prints, in order; here because it needs both halves."""
    checks = [Check("configuration", OK, "all settings valid")]
    checks.append(check_database(settings))
    redis_check, connection = check_redis(settings)
    checks.append(redis_check)
    checks += check_workers(connection)
    checks.append(check_storage())
    checks.append(check_file_modes(settings))  # after storage: its probe may create the folder
    checks.append(check_smtp(settings))
    checks += check_ingresses(settings)
    return checks
