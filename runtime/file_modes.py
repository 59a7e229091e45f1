"""Files only their owner may read: the umask Threadline's processes run with, and the paths
`flask doctor` checks.

The SQLite database holds every email and the password hashes, stored mail is the raw
messages, the embedded Redis' append-only file holds queued jobs, and `.env` the secrets.
Each entry point (the Makefile's set-up lines, `flask serve`, wsgi.py, worker.py) sets the
umask before it creates anything; create_app does not, because the test suite builds apps
in-process next to servers running as other users (Dovecot) that must read what it writes.
"""

from __future__ import annotations

import os
import stat

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from config import DATA_ROOT, Settings

OWNER_ONLY_UMASK = 0o077  # new files 0600, new folders 0700


def use_owner_only_umask() -> None:
    os.umask(OWNER_ONLY_UMASK)


def env_file_path() -> str:
    """The env file every process reads (as config.load_env_file finds it)."""
    return os.environ.get("ENV_FILE") or str(DATA_ROOT / ".env")


def sqlite_path(database_url: str) -> str | None:
    try:
        url = make_url(database_url)
    except ArgumentError:
        return None
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return os.path.abspath(url.database)


def private_paths(settings: Settings) -> list[tuple[str, str]]:
    """(what, path) for every existing file or folder that must be owner-only.

    Folders of stored mail are checked at their root, not walked: a 0700 root already keeps
    everything below it from other users, and walking millions of messages on every doctor
    run would be slow. The embedded Redis folder is small and walked whole."""
    found: list[tuple[str, str]] = []
    env_file = env_file_path()
    if os.path.isfile(env_file):  # not /dev/null, which tests and some deployments use
        found.append(("env file", env_file))
    if os.path.isdir(settings.instance_path):
        found.append(("instance folder", settings.instance_path))
    database = sqlite_path(settings.database_url)
    if database:
        for path in (database, database + "-wal", database + "-shm"):
            if os.path.isfile(path):
                found.append(("database", path))
    if settings.storage_backend == "local" and os.path.isdir(settings.storage_local_path):
        found.append(("stored mail", settings.storage_local_path))
    redis_dir = os.path.join(settings.instance_path, "redis")
    if settings.embedded_redis and os.path.isdir(redis_dir):
        found.append(("embedded Redis", redis_dir))
        for root, dirs, files in os.walk(redis_dir):
            found += [("embedded Redis", os.path.join(root, name)) for name in dirs + files]
    return found


def loose_paths(settings: Settings) -> list[tuple[str, int]]:
    """(path, permission bits) of every private path that its group or others may use."""
    loose = []
    for _, path in private_paths(settings):
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except FileNotFoundError:  # removed meanwhile (a -wal file at checkpoint)
            continue
        if mode & 0o077:
            loose.append((path, mode))
    return loose
