"""`make run` as a user starts it: web, worker, scheduler and embedded Redis, stopped by Ctrl-C.

One process set is started per module; the last test stops it with SIGINT to its process
group, as Ctrl-C in a terminal does.
"""

from __future__ import annotations

import base64
import http.cookiejar
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from email.message import EmailMessage
from pathlib import Path

import psutil
import pytest
from redis import Redis
from redis.exceptions import RedisError
from rq import Worker
from rq.cron_scheduler_registry import get_keys as cron_scheduler_keys

from extensions import QUEUE_NAMES
from tests.conftest import csrf_token_from
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60
STOP_TIMEOUT = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ProcessSet:
    """A running `make run`, its log, and every process it started."""

    def __init__(self, base: Path):
        self.base = base
        self.env_file = base / "threadline.env"
        self.instance = base / "instance"
        self.socket_path = self.instance / "redis.sock"
        self.log_path = base / "make-run.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.pids: set[int] = set()  # make and every descendant seen, in any session

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        for name in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL"):  # not a sub-make of `make test`
            env.pop(name, None)
        env.update(
            ENV_FILE=str(self.env_file),
            INSTANCE_PATH=str(self.instance),
            PORT=str(self.port),
            HOST="127.0.0.1",
            WEB_CONCURRENCY="1",
        )
        return env

    def log(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def explain(self, message: str) -> str:
        return f"{message}\n--- make run log (tail) ---\n{self.log()}"

    def start(self) -> None:
        subprocess.run(
            [sys.executable, "scripts/init_env.py", str(self.env_file)], cwd=ROOT, check=True
        )
        assert "SECRET_KEY=" in self.env_file.read_text()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                ["make", "run"],
                cwd=ROOT,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pids.add(self.proc.pid)

    @property
    def pgid(self) -> int:
        return self.proc.pid  # session leader: its pid is the group id

    def remember_descendants(self) -> None:
        """Honcho and Redis start their children in new sessions: track them by parentage."""
        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return
        self.pids.update(child.pid for child in children)

    def commands(self) -> dict[int, str]:
        """The command line of every tracked process still running (zombies are gone)."""
        out = {}
        for pid in sorted(self.pids):
            try:
                proc = psutil.Process(pid)
                if proc.status() != psutil.STATUS_ZOMBIE:
                    out[pid] = " ".join(proc.cmdline())
            except psutil.NoSuchProcess:
                pass
        return out

    def alive(self) -> list[str]:
        return [f"{pid} {cmd[:100]}" for pid, cmd in self.commands().items()]

    def redis(self) -> Redis:
        return Redis(unix_socket_path=str(self.socket_path), socket_timeout=2)

    def redis_answers(self) -> bool:
        try:
            return bool(self.redis().ping())
        except (RedisError, OSError):
            return False

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        last = ""
        while time.monotonic() < deadline:
            self.remember_descendants()
            if self.proc.poll() is not None:
                pytest.fail(self.explain(f"make run exited early with {self.proc.returncode}"))
            try:
                with urllib.request.urlopen(f"{self.url}/login", timeout=2) as response:
                    body = response.read().decode()
                    if response.status == 200 and "Sign in" in body:
                        return
                    last = f"HTTP {response.status}"
            except (urllib.error.URLError, OSError) as exc:
                last = str(exc)
            time.sleep(0.25)
        pytest.fail(self.explain(f"/login did not answer within {START_TIMEOUT}s ({last})"))

    def kill(self) -> None:
        """Last-resort cleanup: SIGKILL the group and every process this set started."""
        if self.proc is None:
            return
        self.remember_descendants()
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for pid in self.pids:
            try:
                psutil.Process(pid).kill()
            except psutil.NoSuchProcess:
                pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass


@pytest.fixture(scope="module")
def process_set(tmp_path_factory):
    running = ProcessSet(tmp_path_factory.mktemp("make-run"))
    try:
        running.start()
        running.wait_until_up()
        yield running
    finally:
        running.kill()


def test_make_run_creates_the_first_admin_and_serves_the_sign_in_page(process_set):
    log = process_set.log(400)
    assert "Created the first admin: admin@example.com" in log, process_set.explain("no admin")
    match = re.search(r"Generated password \(shown only now\): (\S+)", log)
    assert match, process_set.explain("no generated password in the log")
    assert "Running upgrade" in log, process_set.explain("migrations did not run")

    # The printed password signs in on the real web server (gunicorn), CSRF and all.
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{process_set.url}/login", timeout=10).read().decode()
    form = {
        "email": "admin@example.com",
        "password": match.group(1),
        "csrf_token": csrf_token_from(page),
    }
    with opener.open(
        f"{process_set.url}/login", data=urllib.parse.urlencode(form).encode(), timeout=10
    ) as response:
        assert response.status == 200
        assert urllib.parse.urlsplit(response.url).path == "/"
        home = response.read().decode()
    assert "Inboxes" in home and "Sign out" in home, process_set.explain(home[:500])


def test_make_run_starts_a_worker_and_the_cron_scheduler_on_the_embedded_redis(process_set):
    assert process_set.socket_path.exists(), process_set.explain("no embedded Redis socket")
    connection = process_set.redis()
    workers = wait_for(lambda: Worker.all(connection=connection), timeout=20)
    assert len(workers) == 1, process_set.explain(f"workers: {workers}")
    assert set(workers[0].queue_names()) == set(QUEUE_NAMES)
    schedulers = wait_for(lambda: cron_scheduler_keys(connection), timeout=20)
    assert len(schedulers) == 1, process_set.explain(f"cron schedulers: {schedulers}")
    process_set.remember_descendants()
    commands = list(process_set.commands().values())
    assert any("gunicorn" in c for c in commands), commands
    assert any(c.endswith("worker.py") for c in commands), commands
    assert any("worker.py --cron" in c for c in commands), commands
    assert any("redis-server" in c for c in commands), commands


def test_a_second_serve_refuses_to_start_while_one_runs(process_set):
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "serve"],
        cwd=ROOT,
        env=process_set.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0, result.stdout + result.stderr
    assert "already listens" in result.stderr and "make run" in result.stderr, result.stderr
    assert process_set.redis_answers(), process_set.explain("the running Redis was disturbed")


MAKE_INBOX = """
from app import create_app
from extensions import db
from models import Inbox
with create_app().app_context():
    db.session.add(Inbox(name="Support", support_address="support@example.com"))
    db.session.commit()
"""


def relay_post(process_set, raw: bytes) -> int:
    password = re.search(
        r"^INBOUND_EMAIL_PASSWORD=(\S+)", process_set.env_file.read_text(), re.M
    ).group(1)
    token = base64.b64encode(f"actionmailbox:{password}".encode()).decode()
    request = urllib.request.Request(
        f"{process_set.url}/rails/action_mailbox/relay/inbound_emails",
        data=raw,
        headers={"Content-Type": "message/rfc822", "Authorization": f"Basic {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


def live_worker_pids(connection) -> set[int]:
    return {w.pid for w in Worker.all(connection=connection) if w.pid and psutil.pid_exists(w.pid)}


def test_a_killed_worker_is_restarted_while_the_web_keeps_answering(process_set):
    connection = process_set.redis()
    [old_pid] = wait_for(lambda: live_worker_pids(connection), timeout=20) or [None]
    assert old_pid, process_set.explain("no live worker")
    web_failures: list[str] = []
    stop_polling = threading.Event()

    def poll_web():
        while not stop_polling.is_set():
            try:
                with urllib.request.urlopen(f"{process_set.url}/login", timeout=5) as response:
                    if response.status != 200:
                        web_failures.append(f"HTTP {response.status}")
            except (urllib.error.URLError, OSError) as exc:
                web_failures.append(str(exc))
            time.sleep(0.2)

    poller = threading.Thread(target=poll_web, daemon=True)
    poller.start()
    try:
        os.kill(old_pid, signal.SIGKILL)
        new_pids = wait_for(lambda: live_worker_pids(connection) - {old_pid}, timeout=15)
    finally:
        stop_polling.set()
        poller.join(10)
    assert new_pids, process_set.explain(f"no new worker after killing {old_pid}")
    assert web_failures == [], process_set.explain(f"the web failed: {web_failures}")
    assert "restarting in 1 s" in process_set.log(400), process_set.explain("no restart line")
    process_set.remember_descendants()

    # The new worker does the work: a relay POST is delivered to its inbox.
    subprocess.run([sys.executable, "-c", MAKE_INBOX], cwd=ROOT, env=process_set.env(), check=True)
    mail = EmailMessage()
    mail["From"] = "ada@example.org"
    mail["To"] = "support@example.com"
    mail["Subject"] = "After the restart"
    mail["Message-ID"] = "<after-the-restart@example.org>"
    mail.set_content("Still there?")
    assert relay_post(process_set, mail.as_bytes()) == 204

    def status():
        with sqlite3.connect(process_set.instance / "threadline.db") as db:
            row = db.execute("SELECT status FROM inbound_emails").fetchone()
        return row[0] if row and row[0] not in ("pending", "processing") else None

    assert wait_for(status, timeout=30) == "delivered", process_set.explain("not delivered")


def test_ctrl_c_stops_every_process_cleanly(process_set):
    process_set.remember_descendants()
    assert len(process_set.alive()) >= 8, process_set.alive()  # make, serve, redis, 3 procs…
    started = time.monotonic()

    os.killpg(process_set.pgid, signal.SIGINT)  # what Ctrl-C in the terminal sends
    try:
        returncode = process_set.proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(process_set.explain(f"make run still running {STOP_TIMEOUT}s after SIGINT"))

    # GNU make re-raises SIGINT on itself once its recipe has stopped (a shell shows 130);
    # a failing recipe would make it print "make: *** [...] Error N" first.
    log = process_set.log(400)
    assert returncode in (0, -signal.SIGINT), process_set.explain(f"make exited {returncode}")
    assert "make: ***" not in log, process_set.explain("the recipe failed")
    assert "SIGINT received" in log, process_set.explain("honcho never saw the SIGINT")
    assert "Traceback" not in log, process_set.explain("a process crashed while stopping")
    assert "embedded Redis stopped" in log, process_set.explain("Redis was not stopped")

    left = wait_for(lambda: not process_set.alive(), timeout=STOP_TIMEOUT - 5)
    assert left, process_set.explain(f"still running: {process_set.alive()}")
    with pytest.raises(ProcessLookupError):
        os.killpg(process_set.pgid, 0)
    assert not process_set.redis_answers(), process_set.explain("Redis still answers")
    assert time.monotonic() - started < STOP_TIMEOUT


def test_the_embedded_redis_dying_ends_the_whole_set(tmp_path):
    """Restarting workers without Redis would only spin: the set stops, with an error."""
    running = ProcessSet(tmp_path)
    try:
        running.start()
        running.wait_until_up()
        running.remember_descendants()
        [redis_pid] = [pid for pid, cmd in running.commands().items() if "redis-server" in cmd]
        os.kill(redis_pid, signal.SIGKILL)
        try:
            returncode = running.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(running.explain("make run still running after Redis died"))
        assert returncode != 0, running.explain("make run exited 0")
        assert "embedded Redis exited" in running.log(400), running.explain("no reason given")
        left = wait_for(lambda: not running.alive(), timeout=STOP_TIMEOUT - 5)
        assert left, running.explain(f"still running: {running.alive()}")
    finally:
        running.kill()
