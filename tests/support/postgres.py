"""A PostgreSQL server for tests that need one whatever the run: a fresh database on it.

`postgres_server()` finds or starts a server and yields a SQLAlchemy URL to it:

1. TEST_DATABASE_URL when it is set (`make test-db`, CI);
2. else postgresql+psycopg://postgres@127.0.0.1:5432/ when a server answers there with trust
   authentication (a developer's machine, CI);
3. else a private cluster from Debian's binaries (/usr/lib/postgresql/<version>/bin, package
   `postgresql`, which `make test-deps` installs): initdb into a temporary folder, started by
   pg_ctl on a free 127.0.0.1 port with its unix socket in that folder, stopped and removed
   afterwards. initdb refuses to run as root, so under root the cluster belongs to the
   `postgres` user (else `nobody`).

`fresh_database(server_url)` creates a database with a random name on that server and drops
it afterwards (as tests/conftest.py's `database_url` does for TEST_DATABASE_URL).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

LOCAL_SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/"
CONNECT_TIMEOUT = 3  # seconds: a server that does not answer quickly is not used
START_TIMEOUT = 60
START_ATTEMPTS = 3  # a free port may be taken by another process before the postmaster binds
CLUSTER_OWNERS = ("postgres", "nobody")  # who owns a cluster started by root


def sqlalchemy_url(url: str) -> str:
    """postgres:// and postgresql:// as psycopg 3 URLs (what the app and the tests use)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def answers(url: str) -> bool:
    """True when a server at url accepts a connection and a query within CONNECT_TIMEOUT."""
    engine = create_engine(url, connect_args={"connect_timeout": CONNECT_TIMEOUT})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except SQLAlchemyError:
        return False
    finally:
        engine.dispose()


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield the URL of a PostgreSQL server whose user may create databases."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield sqlalchemy_url(configured)
        return
    if answers(LOCAL_SERVER_URL):
        yield LOCAL_SERVER_URL
        return
    with private_cluster() as url:
        yield url


@contextmanager
def fresh_database(server_url: str, prefix: str = "threadline_test") -> Iterator[str]:
    """Create a database with a random name on server_url; yield its URL; drop it afterwards
    (WITH (FORCE): connections a killed process left open do not keep it alive)."""
    url = make_url(sqlalchemy_url(server_url))
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


# --- a private cluster ---------------------------------------------------------------------


def _version_key(path: str) -> tuple[int, ...]:
    found = re.search(r"/postgresql/([\d.]+)/bin/", path)
    return tuple(int(part) for part in found.group(1).split(".") if part) if found else (0,)


def server_binaries() -> Path:
    """The newest Debian PostgreSQL bin/ folder holding initdb and pg_ctl."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).parent
    raise RuntimeError(
        "no PostgreSQL server answers on 127.0.0.1:5432 and there is none to start: install "
        "Debian's `postgresql` package (make test-deps does), or set TEST_DATABASE_URL"
    )


def _cluster_owner() -> pwd.struct_passwd | None:
    """None: run as ourselves. Under root: a system user, since initdb refuses root."""
    if os.geteuid() != 0:
        return None
    for name in CLUSTER_OWNERS:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError(f"running as root and none of the users {CLUSTER_OWNERS} exists")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateCluster:
    """initdb + pg_ctl in a temporary folder, run as `owner` (None: the current user)."""

    def __init__(self, bin_dir: Path, owner: pwd.struct_passwd | None):
        self.bin_dir = bin_dir
        self.owner = owner
        # Under /tmp, not pytest's root-only tmp_path: the owner must reach it. Short, too:
        # the unix socket path inside it is limited to 107 bytes.
        self.base = Path(tempfile.mkdtemp(prefix="threadline-pg-", dir="/tmp"))
        self.data = self.base / "data"
        self.log = self.base / "postgres.log"
        self.port = 0
        if owner is not None:
            os.chown(self.base, owner.pw_uid, owner.pw_gid)

    def run(self, *args: str, timeout: float = START_TIMEOUT) -> subprocess.CompletedProcess:
        kwargs: dict = {}
        if self.owner is not None:
            kwargs = {"user": self.owner.pw_uid, "group": self.owner.pw_gid, "extra_groups": []}
        env = {
            "PATH": f"{self.bin_dir}{os.pathsep}/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "HOME": str(self.base),
        }
        return subprocess.run(
            [str(self.bin_dir / args[0]), *args[1:]],
            cwd=self.base,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **kwargs,
        )

    def explain(self, what: str, result: subprocess.CompletedProcess) -> str:
        log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
        return (
            f"{what} exited {result.returncode}:\n{result.stdout}\n{result.stderr}\n"
            f"--- {self.log} ---\n{log}"
        )

    def init(self) -> None:
        result = self.run(
            "initdb",
            "--pgdata",
            str(self.data),
            "--username",
            "postgres",
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            "--no-sync",
        )
        if result.returncode != 0:
            raise RuntimeError(self.explain("initdb", result))

    def start(self) -> str:
        """Start on a free port (retried when another process takes it first); the URL."""
        failures = []
        for _ in range(START_ATTEMPTS):
            self.port = _free_port()
            options = (
                f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            result = self.run(
                "pg_ctl",
                "--pgdata",
                str(self.data),
                "--log",
                str(self.log),
                "--wait",
                "--timeout",
                str(START_TIMEOUT),
                "--options",
                options,
                "start",
                timeout=START_TIMEOUT + 10,
            )
            url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
            if result.returncode == 0 and answers(url):
                return url
            failures.append(self.explain("pg_ctl start", result))
            self.stop()
        raise RuntimeError("the private PostgreSQL cluster did not start:\n" + "\n".join(failures))

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.run("pg_ctl", "--pgdata", str(self.data), "--mode", "fast", "--wait", "stop")

    def remove(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


@contextmanager
def private_cluster() -> Iterator[str]:
    """A throwaway cluster on 127.0.0.1 (trust authentication for `postgres`); its URL."""
    cluster = PrivateCluster(server_binaries(), _cluster_owner())
    try:
        cluster.init()
        yield cluster.start()
    finally:
        cluster.stop()
        cluster.remove()


@contextmanager
def empty_database_like(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A new, empty database of the kind this run tests, for a migration test to upgrade and
    downgrade: a SQLite file in tmp_path, or a fresh database on the same PostgreSQL
    server as database_url."""
    if database_url.startswith("sqlite"):
        yield "sqlite:///" + str(tmp_path / "migrate.db")
        return
    server = make_url(database_url).set(database="postgres")
    with fresh_database(server.render_as_string(hide_password=False)) as url:
        yield url
