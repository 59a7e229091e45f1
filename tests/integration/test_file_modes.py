"""Owner-only files: what `make run`'s set-up and `flask serve` create, whatever the umask of
the shell that starts them, and `flask doctor`'s warning when a private file is open to the
group or to others.

`make setup` is exactly `make run`'s set-up (run = setup + flask serve). Every command here
starts under umask 022, a common login default, so only the code under test can tighten it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import urllib.error
import urllib.request
from base64 import b64encode
from pathlib import Path

import psutil
import pytest

from config import Settings
from services.health import WARN, check_file_modes
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
FLASK = ROOT / ".venv" / "bin" / "flask"
LOOSE_UMASK = 0o022
START_TIMEOUT = 60
_LINE = re.compile(r"^(OK|WARN|FAIL)\s+(\S+(?: \S+)*)\s{2,}(.*)$")


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def open_to_others(top: Path) -> dict[str, str]:
    """Every entry under `top` (itself included) that its group or others may use."""
    found = {}
    for path in [top, *top.rglob("*")]:
        if mode(path) & 0o077:
            found[str(path)] = f"{mode(path):04o}"
    return found


def env_value(env_file: Path, name: str) -> str:
    match = re.search(rf"^{name}=(\S*)", env_file.read_text(), re.M)
    assert match, f"{name} missing from {env_file}"
    return match.group(1)


def doctor(env: dict) -> tuple[subprocess.CompletedProcess, dict[str, tuple[str, str]]]:
    result = subprocess.run(
        [str(FLASK), "--app", "app", "doctor"],
        cwd=ROOT,
        env=env,
        umask=LOOSE_UMASK,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    checks = {}
    for line in result.stdout.splitlines():
        match = _LINE.match(line)
        if match:
            checks[match.group(2)] = (match.group(1), match.group(3))
    return result, checks


class Installation:
    """A `make setup` in a temporary folder: its env file, instance folder and database."""

    def __init__(self, base: Path):
        self.base = base
        self.env_file = base / "threadline.env"
        self.instance = base / "instance"
        self.database = self.instance / "threadline.db"

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        for name in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL"):  # not a sub-make of `make test`
            env.pop(name, None)
        env.update(ENV_FILE=str(self.env_file), INSTANCE_PATH=str(self.instance), **extra)
        return env

    def setup(self) -> None:
        # -o: the venv the suite runs in is installed; the set-up after it is what is tested.
        result = subprocess.run(
            ["make", "-s", "-o", ".venv/.runtime-installed", "setup"],
            cwd=ROOT,
            env=self.env(),
            umask=LOOSE_UMASK,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Created the first admin" in result.stdout, result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installation:
    installation = Installation(tmp_path_factory.mktemp("file-modes"))
    installation.setup()
    return installation


def test_make_setup_creates_owner_only_env_file_instance_and_database(installed):
    assert mode(installed.env_file) == 0o600
    assert mode(installed.instance) == 0o700
    assert mode(installed.database) == 0o600
    for suffix in ("-wal", "-shm"):  # SQLite gives them the database's own mode
        companion = Path(f"{installed.database}{suffix}")
        if companion.exists():
            assert mode(companion) == 0o600
    assert open_to_others(installed.instance) == {}


# --- flask serve -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_umask(pid: int) -> str | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^Umask:\s*(\d+)", status, re.M)
    return match.group(1) if match else None


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def post_relay(url: str, password: str) -> int:
    raw = (
        b"From: Carla <carla@customer.example>\r\nTo: support@example.com\r\n"
        b"Subject: Owner only\r\nMessage-ID: <file-modes@customer.example>\r\n\r\nHello\r\n"
    )
    request = urllib.request.Request(
        f"{url}/rails/action_mailbox/relay/inbound_emails",
        data=raw,
        method="POST",
        headers={
            "Content-Type": "message/rfc822",
            "Authorization": "Basic " + b64encode(f"actionmailbox:{password}".encode()).decode(),
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


@pytest.mark.slow
def test_flask_serve_runs_every_process_with_umask_077_and_its_files_stay_owner_only(
    installed,
):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = installed.env(PORT=str(port), HOST="127.0.0.1", WEB_CONCURRENCY="1")
    log_path = installed.base / "serve.log"
    seen: set[int] = set()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(FLASK), "--app", "app", "serve"],
            cwd=ROOT,
            env=env,
            umask=LOOSE_UMASK,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def explain(message: str) -> str:
        return f"{message}\n--- flask serve log ---\n{log_path.read_text(errors='replace')}"

    def running() -> dict[int, str]:
        children = descendants(proc.pid)
        seen.update(child.pid for child in children)
        out = {}
        for child in children:
            try:
                out[child.pid] = " ".join(child.cmdline())
            except psutil.NoSuchProcess:
                pass
        return out

    def all_started() -> bool:
        commands = " | ".join(running().values())
        return all(name in commands for name in ("redis-server", "gunicorn", "worker.py", "--cron"))

    def login_answers() -> bool:
        assert proc.poll() is None, explain(f"flask serve exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/login", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    try:
        assert wait_for(login_answers, START_TIMEOUT), explain("/login did not answer")
        assert wait_for(all_started, START_TIMEOUT), explain(f"not all started: {running()}")
        password = env_value(installed.env_file, "INBOUND_EMAIL_PASSWORD")
        assert post_relay(url, password) == 204  # raw mail is in storage before the 204

        umasks = {f"{pid} {cmd[:80]}": process_umask(pid) for pid, cmd in running().items()}
        umasks[f"{proc.pid} flask serve"] = process_umask(proc.pid)
        assert set(umasks.values()) == {"0077"}, umasks

        storage = installed.instance / "storage"
        assert [p for p in storage.rglob("*") if p.is_file()], "no stored mail"
        assert (installed.instance / "redis" / "redis.conf").exists()
        assert open_to_others(installed.instance) == {}

        result, checks = doctor(env)  # the embedded Redis is up: its files are checked too
        assert checks["file modes"] == (
            "OK",
            "owner-only: env file, instance folder, database, stored mail, embedded Redis",
        ), result.stdout
    finally:
        try:
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C; serve stops Redis itself
        except ProcessLookupError:
            pass
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            for pid in {proc.pid, *seen}:
                try:
                    psutil.Process(pid).kill()
                except psutil.NoSuchProcess:
                    pass
            proc.wait(10)
    assert open_to_others(installed.instance) == {}  # Redis' files flushed at shutdown too


# --- flask doctor ----------------------------------------------------------------------------


def test_doctor_warns_on_a_group_readable_database_and_the_other_checks_still_pass(
    installed, redis_server
):
    os.chmod(installed.database, 0o640)
    try:
        result, checks = doctor(installed.env(REDIS_URL=redis_server))
    finally:
        for path in (installed.database, *installed.database.parent.glob("threadline.db-*")):
            os.chmod(path, 0o600)  # SQLite gave a new -wal/-shm the database's mode
    state, detail = checks["file modes"]
    assert state == WARN, result.stdout
    # Doctor's own connection made a -wal/-shm with the database's mode: named after it.
    assert detail.startswith(
        f"not owner-only (group or others have access): {installed.database} (0640)"
    ), result.stdout
    assert f"fix: chmod -R go-rwx {installed.database}" in result.stdout
    assert checks["database"][0] == checks["redis"][0] == checks["storage"][0] == "OK"
    assert result.returncode == 0, result.stdout + result.stderr  # a warning, not a failure


def test_doctor_warns_on_a_world_readable_env_file(installed, redis_server, tmp_path):
    env_file = tmp_path / "world-readable.env"
    shutil.copyfile(installed.env_file, env_file)
    os.chmod(env_file, 0o644)
    env = installed.env(REDIS_URL=redis_server)
    env["ENV_FILE"] = str(env_file)
    result, checks = doctor(env)
    assert checks["file modes"] == (
        WARN,
        f"not owner-only (group or others have access): {env_file} (0644)",
    ), result.stdout
    assert f"fix: chmod -R go-rwx {env_file}; " in result.stdout
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_loose_folder_is_named_once_with_what_is_inside(tmp_path):
    instance = tmp_path / "instance"
    (instance / "redis" / "appendonlydir").mkdir(parents=True)
    (instance / "redis" / "redis.log").write_text("")
    (instance / "threadline.db").write_text("")
    for path in (instance, instance / "redis", instance / "redis" / "appendonlydir"):
        os.chmod(path, 0o755)
    for path in (instance / "redis" / "redis.log", instance / "threadline.db"):
        os.chmod(path, 0o644)
    settings = Settings.from_env(environ={"INSTANCE_PATH": str(instance)})

    check = check_file_modes(settings)

    assert check.state == WARN
    assert check.detail == f"not owner-only (group or others have access): {instance} (0755)"
    assert check.fix.startswith(f"chmod -R go-rwx {instance}; ")

    os.chmod(instance, 0o700)
    check = check_file_modes(settings)
    assert check.detail == (
        "not owner-only (group or others have access): "
        f"{instance}/threadline.db (0644), {instance}/redis (0755)"
    )
    postgres = Settings.from_env(
        environ={"INSTANCE_PATH": str(instance), "DATABASE_URL": "postgresql://u@db/x"}
    )
    assert f"{instance}/threadline.db" not in check_file_modes(postgres).detail
