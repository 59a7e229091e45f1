"""One source of settings: web, worker and `flask` commands all read ENV_FILE, never a .env
that Flask's CLI finds in the working folder, and real environment variables win over it.

Every process runs from a folder holding a conflicting `.env` whose every value would break
or betray it (another SECRET_KEY and ingress password, another database, a Redis that does
not answer), with ENV_FILE naming the real settings: a real gunicorn serving wsgi.py,
`python worker.py --burst` and `flask --app <project>/app ...`.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis import Redis

from tests.support.waiting import post_relay_over_http

ROOT = Path(__file__).resolve().parents[2]
FLASK = Path(sys.executable).with_name("flask")
REDIS_DB = 7  # its own database on the session's Redis: other tests' queues stay apart
MESSAGE = (
    b"From: Zofia <zofia@example.pl>\r\nTo: nobody-here@example.com\r\n"
    b"Subject: Which settings?\r\nMessage-ID: <settings-source@example.pl>\r\n\r\nHello\r\n"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_env(path: Path, values: dict[str, str]) -> None:
    path.write_text("".join(f"{name}={value}\n" for name, value in values.items()))


class Site:
    """A folder to run every process in: a conflicting ./.env, and prod.env as ENV_FILE."""

    def __init__(self, base: Path, redis_url: str):
        self.base = base
        self.prod_instance = base / "prod-instance"
        self.dotenv_instance = base / "dotenv-instance"
        self.dotenv_database = base / "dotenv.db"
        self.prod_password = "prod-ingress-password-0123456789"
        self.dotenv_password = "dotenv-ingress-password-0123456789"
        self.env_file = base / "prod.env"
        write_env(
            self.env_file,
            {
                "SECRET_KEY": "prod-secret-key-0123456789abcdef",
                "INBOUND_EMAIL_PASSWORD": self.prod_password,
                "INSTANCE_PATH": str(self.prod_instance),
                "REDIS_URL": redis_url,
                "APP_URL": "http://prod.example.com",
            },
        )
        write_env(
            base / ".env",
            {
                "SECRET_KEY": "dotenv-secret-key-0123456789abcdef",
                "INBOUND_EMAIL_PASSWORD": self.dotenv_password,
                "INSTANCE_PATH": str(self.dotenv_instance),
                "DATABASE_URL": f"sqlite:///{self.dotenv_database}",  # not in prod.env at all
                "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
                "APP_URL": "http://dotenv.example.com",
            },
        )

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
        env.update(ENV_FILE=str(self.env_file), **extra)
        return env

    def flask(self, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(FLASK), "--app", str(ROOT / "app"), *args],
            cwd=self.base,
            env=self.env(**extra_env),
            capture_output=True,
            text=True,
            timeout=120,
        )

    def databases(self) -> list[str]:
        found = [p for p in (self.prod_instance, self.dotenv_instance) if p.exists()]
        found += [self.dotenv_database] if self.dotenv_database.exists() else []
        return [str(p.relative_to(self.base)) for p in found]


@pytest.fixture
def site(tmp_path, redis_server) -> Site:
    redis_url = f"{redis_server}?db={REDIS_DB}"
    yield Site(tmp_path, redis_url)
    Redis.from_url(redis_url).flushdb()


class Gunicorn:
    def __init__(self, site: Site):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = site.base / "gunicorn.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "--pythonpath",
                    str(ROOT),
                    "--bind",
                    f"127.0.0.1:{self.port}",
                    "--workers",
                    "1",
                    "wsgi:app",
                ],
                cwd=site.base,
                env=site.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"gunicorn did not start:\n{self.log.read_text()}")

    def relay(self, password: str) -> int:
        return post_relay_over_http(self.url, MESSAGE, password)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def test_web_worker_and_flask_commands_all_read_env_file_not_the_working_folders_env(site):
    # flask: the migrations create the database ENV_FILE names, nowhere else.
    upgrade = site.flask("db", "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    assert site.databases() == ["prod-instance"]

    # web: wsgi.py under a real gunicorn takes ENV_FILE's ingress password, not .env's.
    web = Gunicorn(site)
    try:
        assert web.relay(site.dotenv_password) == 401
        assert web.relay(site.prod_password) == 204
    finally:
        web.stop()

    # worker: ENV_FILE's Redis holds the job and its database the message (.env's Redis
    # does not even answer); no inbox matches the recipient, so processing bounces it.
    worker = subprocess.run(
        [sys.executable, str(ROOT / "worker.py"), "--burst"],
        cwd=site.base,
        env=site.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert worker.returncode == 0, worker.stdout + worker.stderr

    # flask again: it lists what the web process stored and the worker processed.
    listing = site.flask("inbound", "list", "--json")
    assert listing.returncode == 0, listing.stderr
    [row] = json.loads(listing.stdout)
    assert (row["status"], row["message_id"]) == ("bounced", "settings-source@example.pl")
    assert site.databases() == ["prod-instance"]


def test_a_real_environment_variable_wins_even_when_the_stray_env_has_its_value(site):
    # INSTANCE_PATH exported with exactly the value the stray .env also holds: it was not
    # copied by flask from .env, it is the operator's, and it wins over ENV_FILE.
    result = site.flask("db", "upgrade", INSTANCE_PATH=str(site.dotenv_instance))
    assert result.returncode == 0, result.stderr
    assert site.databases() == ["dotenv-instance"]


def test_flask_env_file_option_is_refused_as_a_second_env_file(site):
    result = site.flask("--env-file", str(site.base / ".env"), "db", "upgrade")
    assert result.returncode == 2
    assert "--env-file: flask's --env-file would be a second env file" in result.stderr
    assert site.databases() == []


def test_plain_flask_in_the_project_folder_loads_app_not_wsgi(site):
    # Flask's autodiscovery would import wsgi.py first; the committed .flaskenv names
    # app:create_app. `flask shell` reads the statement from stdin.
    script = "import sys; print('wsgi' in sys.modules, app.import_name)\n"
    result = subprocess.run(
        [str(FLASK), "shell"],
        cwd=ROOT,
        env=site.env(),
        input=script,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "False app" in result.stdout
