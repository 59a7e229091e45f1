"""The installable package: a wheel built from this checkout, installed with the pinned
requirements.txt into a clean venv, runs Threadline from an empty folder with nothing but an
env file: `threadline db upgrade`, `admin ensure`, `serve` (the shipped Procfile's web, worker
and scheduler), `doctor`, `threadline-relay` into the running web, and gunicorn's check of
`wsgi:app`.

Nothing here imports the checkout: every command runs in the new venv, in a folder outside
the project, with an environment holding only PATH, HOME and ENV_FILE.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
NOT_SHIPPED = shutil.ignore_patterns(
    ".*",
    "__pycache__",
    "*.pyc",
    "tests",
    "bench",
    "instance",
    "node_modules",
    "build",
    "dist",
    "*.egg-info",
)
START_TIMEOUT = 60


def run(cmd: list[str], timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    output = f"{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, f"{cmd} exited {result.returncode}:\n{output}"
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Installation:
    """A clean venv holding the wheel, and an empty folder to run it in."""

    def __init__(self, base: Path):
        self.base = base
        self.venv = base / "venv"
        self.bin = self.venv / "bin"
        self.folder = base / "run"
        self.env_file = base / "threadline.env"
        self.port = free_port()
        self.ingress_password = secrets.token_hex(24)

    def env(self) -> dict[str, str]:
        return {
            "PATH": os.pathsep.join([str(self.bin), "/usr/local/bin", "/usr/bin", "/bin"]),
            "HOME": os.environ.get("HOME", str(self.base)),
            "LANG": "C.UTF-8",
            "ENV_FILE": str(self.env_file),
        }

    def threadline(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        cmd = [str(self.bin / "threadline"), *args]
        return subprocess.run(
            cmd,
            cwd=self.folder,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            **kwargs,
        )


def build_wheel(dest: Path) -> Path:
    # From a copy: an in-tree build would leave build/ and threadline.egg-info in the checkout.
    source = dest / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SHIPPED)
    # No build isolation: the dev venv's setuptools (requirements-dev.txt), no download.
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(dest / "wheels"),
            str(source),
        ]
    )
    (wheel,) = (dest / "wheels").glob("threadline-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Installation:
    inst = Installation(tmp_path_factory.mktemp("installed"))
    run([sys.executable, "-m", "venv", str(inst.venv)])
    pip = [str(inst.bin / "python"), "-m", "pip", "install", "--quiet"]
    # Two steps: the locked dependencies with their hashes, then the wheel (it has no hash).
    run([*pip, "--require-hashes", "-r", str(ROOT / "requirements.txt")], timeout=240)
    run([*pip, "--no-deps", str(wheel)])
    inst.folder.mkdir()
    fd = os.open(inst.env_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(
            f"SECRET_KEY={secrets.token_hex(32)}\n"
            f"INBOUND_EMAIL_PASSWORD={inst.ingress_password}\n"
            f"HOST=127.0.0.1\nPORT={inst.port}\nAPP_URL=http://127.0.0.1:{inst.port}\n"
            "WEB_CONCURRENCY=1\nADMIN_EMAIL=admin@example.com\n"
        )
    return inst


def test_the_wheel_ships_templates_static_migrations_and_the_procfile(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in (
        "app.py",
        "wsgi.py",
        "worker.py",
        "templates/base.html",
        "static/vendor/htmx-2.0.11.min.js",
        "migrations/alembic.ini",
        "migrations/script.py.mako",
        "migrations/versions/0001_initial_schema.py",
        "services/common_passwords.txt",
        "threadline-0.1.0.data/data/share/threadline/Procfile",
    ):
        assert path in names, f"{path} missing from {wheel.name}"
    assert not [n for n in names if n.startswith(("tests/", "bench/")) or "__pycache__" in n]
    entry_points = zipfile.ZipFile(wheel).read("threadline-0.1.0.dist-info/entry_points.txt")
    for script in (
        "threadline = cli.main:main",
        "threadline-worker = worker:main",
        "threadline-relay = ingress.relay_cli:main",
    ):
        assert script in entry_points.decode()


def test_the_installed_code_runs_from_site_packages_not_the_checkout(installed):
    code = "import app, config; print(app.__file__, config.DATA_ROOT)"
    python = str(installed.bin / "python")
    result = run([python, "-c", code], cwd=installed.folder, env=installed.env())
    module, data_root = result.stdout.split()
    assert Path(module).is_relative_to(installed.venv), module
    assert Path(data_root) == installed.folder  # .env and instance/ live where it runs
    for script in ("threadline", "threadline-worker", "threadline-relay"):
        assert (installed.bin / script).is_file(), script


def test_db_upgrade_and_admin_ensure_create_an_owner_only_database_in_the_folder(installed):
    upgraded = installed.threadline("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "Running upgrade" in upgraded.stderr, upgraded.stderr
    database = installed.folder / "instance" / "threadline.db"
    assert database.is_file()
    assert stat.S_IMODE(database.stat().st_mode) == 0o600  # `threadline` runs with umask 077

    ensured = installed.threadline("admin", "ensure")
    assert ensured.returncode == 0, ensured.stdout + ensured.stderr
    assert "Created the first admin: admin@example.com" in ensured.stdout + ensured.stderr


def test_gunicorn_loads_wsgi_app_from_the_package(installed):
    run(
        [str(installed.bin / "gunicorn"), "--check-config", "wsgi:app"],
        cwd=installed.folder,
        env=installed.env(),
    )


def test_serve_runs_the_procfile_and_doctor_finds_everything_reachable(installed):
    url = f"http://127.0.0.1:{installed.port}"
    log_path = installed.base / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(installed.bin / "threadline"), "serve"],
            cwd=installed.folder,
            env=installed.env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def explain(message: str) -> str:
        return f"{message}\n--- threadline serve log ---\n{log_path.read_text(errors='replace')}"

    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert proc.poll() is None, explain(f"serve exited early with {proc.returncode}")
            try:
                with urllib.request.urlopen(f"{url}/login", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            waited = time.monotonic() < deadline
            assert waited, explain(f"/login did not answer in {START_TIMEOUT}s")
            time.sleep(0.25)
        with urllib.request.urlopen(f"{url}/static/app.css", timeout=5) as response:
            assert response.status == 200  # static/ is found beside the installed app.py

        # The worker and the scheduler register in Redis a moment after the web answers.
        deadline = time.monotonic() + 30
        while True:
            doctor = installed.threadline("doctor")
            if doctor.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert doctor.returncode == 0, explain(doctor.stdout + doctor.stderr)
        assert "WARN  file modes" not in doctor.stdout, doctor.stdout

        # threadline-relay (the relay command, standard library only) hands the web a message.
        relayed = subprocess.run(
            [str(installed.bin / "threadline-relay")],
            input=b"From: ana@example.com\r\nTo: help@example.com\r\nSubject: hi\r\n\r\nhello\r\n",
            env={
                "PATH": "/usr/bin:/bin",
                "URL": f"{url}/rails/action_mailbox/relay/inbound_emails",
                "INGRESS_PASSWORD": installed.ingress_password,
            },
            capture_output=True,
            timeout=60,
        )
        assert relayed.returncode == 0, explain(relayed.stdout.decode() + relayed.stderr.decode())
        assert relayed.stdout.startswith(b"2.0.0"), relayed.stdout

        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
        assert proc.wait(30) == 0, explain("serve did not stop cleanly on Ctrl-C")
        assert "embedded Redis stopped" in log_path.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
