"""Every extension instance and the per-app accessors for settings, Redis, queues, storage."""

from __future__ import annotations

from flask import current_app
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from redis import Redis
from rq import Queue
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import Pool

from config import Settings
from models.base import Base
from storage import Storage, storage_from_settings

db = SQLAlchemy(model_class=Base)
migrate = Migrate(compare_type=True, render_as_batch=True)
login_manager = LoginManager()
csrf = CSRFProtect()

QUEUE_NAMES = ("default", "inbound", "outbound", "low")


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """SQLite is shared by web and worker processes: WAL + busy timeout avoid lock errors.

    pysqlite's own transaction handling is kept on purpose: it runs SELECTs outside a
    transaction and BEGINs at the first write, so no process holds a stale read snapshot
    that would fail with "database is locked" when it then writes.
    """
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


@event.listens_for(Engine, "savepoint")
def _sqlite_savepoint_inside_a_transaction(connection, _name) -> None:
    """pysqlite BEGINs only before INSERT/UPDATE/DELETE, so a SAVEPOINT issued first (a
    session's begin_nested before its first write) would open the transaction itself, and
    releasing it would COMMIT everything so far, half a unit of work. BEGIN first: the
    savepoint then nests in the session's transaction, as on PostgreSQL."""
    dbapi_connection = connection.connection.dbapi_connection
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        if not dbapi_connection.in_transaction:
            dbapi_connection.execute("BEGIN")


_ASYNCHRONOUS = "threadline.asynchronous_commits"


def commit_without_waiting_for_the_disk(session: Session) -> None:
    """This session's commits (until it is removed) return before they reach the disk:
    for work redone from durable input when a power cut undoes it, such as delivering an
    acknowledged message from its stored raw copy. The database stays consistent, and the
    next ordinary commit makes them durable too (SQLite WAL synchronous=NORMAL; PostgreSQL
    synchronous_commit=off). The acknowledgement itself is never committed so."""
    session.info[_ASYNCHRONOUS] = True


@event.listens_for(Session, "after_begin")
def _asynchronous_commits(session, _transaction, connection) -> None:
    if not session.info.get(_ASYNCHRONOUS):
        return
    if connection.dialect.name == "sqlite":
        # Per connection, and only between transactions (the first one of this checkout).
        dbapi_connection = connection.connection.dbapi_connection
        if not connection.info.get(_ASYNCHRONOUS) and not dbapi_connection.in_transaction:
            dbapi_connection.execute("PRAGMA synchronous=NORMAL")
            connection.info[_ASYNCHRONOUS] = True  # reset when the pool takes it back
    elif connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")  # this transaction


@event.listens_for(Pool, "checkin")
def _durable_commits_again(dbapi_connection, connection_record) -> None:
    if connection_record.info.pop(_ASYNCHRONOUS, False) and dbapi_connection is not None:
        dbapi_connection.execute("PRAGMA synchronous=FULL")


def get_settings() -> Settings:
    return current_app.extensions["threadline.settings"]


def get_redis() -> Redis:
    """One connection pool per app; RQ needs bytes, so no decode_responses."""
    ext = current_app.extensions
    if "threadline.redis" not in ext:
        url = get_settings().effective_redis_url
        ext["threadline.redis"] = Redis.from_url(url, socket_connect_timeout=5)
    return ext["threadline.redis"]


def get_queue(name: str = "default") -> Queue:
    if name not in QUEUE_NAMES:
        raise ValueError(f"unknown queue {name!r}; queues are {', '.join(QUEUE_NAMES)}")
    return Queue(name, connection=get_redis())


def get_storage() -> Storage:
    ext = current_app.extensions
    if "threadline.storage" not in ext:
        ext["threadline.storage"] = storage_from_settings(get_settings())
    return ext["threadline.storage"]
