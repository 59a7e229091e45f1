"""A fault drill: mail posted while workers are SIGKILLed, then nobody touches anything.

    .venv/bin/python scripts/fault_drill.py [--messages 1000] [--post-over 45] [--kill-every 3]
                                            [--kill-for 60] [--extra-workers 2]

Sets up a throwaway installation in a temporary folder (its own env file, SQLite database,
embedded Redis and stored mail), starts it as `make run` does (`flask serve`: web, worker,
scheduler, Redis; a worker that dies is restarted with backoff) plus --extra-workers
standalone `python worker.py` processes (restarted 5 s after they die, as systemd's
`RestartSec=5s` does). It posts --messages distinct messages to the relay ingress from 8
threads, spread over --post-over seconds, while every --kill-every seconds for --kill-for
seconds a random worker is killed with SIGKILL together with its work horse. Then it only
watches: it prints every 10 s how many messages are in each state, and at the end how long
after the last kill every message was delivered and whether any was delivered twice. Exit 0
when all were delivered once.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.init_env import render_env  # noqa: E402
from tests.support.waiting import post_relay_over_http  # noqa: E402

FLASK = Path(sys.executable).with_name("flask")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def settings(folder: Path, port: int) -> dict[str, str]:
    env_file = folder / "threadline.env"
    text = render_env((ROOT / ".env.example").read_text())
    text += f"INSTANCE_PATH={folder / 'instance'}\nHOST=127.0.0.1\nPORT={port}\n"
    text += f"APP_URL=http://127.0.0.1:{port}\nLOG_LEVEL=WARNING\n"
    env_file.write_text(text)
    env = dict(os.environ, ENV_FILE=str(env_file))
    values = dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and line[0].isalpha()
    )
    env["INBOUND_EMAIL_PASSWORD"] = values["INBOUND_EMAIL_PASSWORD"].split()[0]
    return env


def message(n: int) -> bytes:
    return (
        f"From: Customer {n} <c{n}@drill.example>\r\nTo: support@example.com\r\n"
        f"Subject: Drill {n}\r\nMessage-ID: <drill-{n}-{uuid.uuid4().hex}@drill.example>\r\n"
        f"\r\nMessage {n} of the drill.\r\n"
    ).encode()


class Drill:
    def __init__(self, args):
        self.args = args
        self.folder = Path(tempfile.mkdtemp(prefix="threadline-drill-"))
        self.port = free_port()
        self.env = settings(self.folder, self.port)
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra: list[subprocess.Popen] = []
        self.kills = 0
        self.stop_killing = threading.Event()
        self.stopped = False
        self.last_kill = time.monotonic()

    def run_flask(self, *args: str) -> None:
        subprocess.run([FLASK, "--app", "app", *args], cwd=ROOT, env=self.env, check=True)

    def setup(self) -> None:
        self.run_flask("db", "upgrade")
        code = (
            "from app import create_app; from extensions import db; from models import Inbox\n"
            "app = create_app()\n"
            "with app.app_context():\n"
            "    db.session.add(Inbox(name='Support', support_address='support@example.com'))\n"
            "    db.session.commit()\n"
        )
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=self.env, check=True)

    def start(self) -> None:
        log = open(self.folder / "serve.log", "wb")  # noqa: SIM115 (lives as long as the drill)
        self.serve = subprocess.Popen(
            [FLASK, "--app", "app", "serve"], cwd=ROOT, env=self.env, stdout=log, stderr=log
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if post_relay_over_http(self.url, b"", self.env["INBOUND_EMAIL_PASSWORD"]) < 500:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        for _ in range(self.args.extra_workers):
            self.extra.append(self.start_worker())

    def start_worker(self) -> subprocess.Popen:
        log = open(self.folder / "workers.log", "ab")  # noqa: SIM115
        return subprocess.Popen(
            [sys.executable, "worker.py"], cwd=ROOT, env=self.env, stdout=log, stderr=log
        )

    def workers(self) -> list[psutil.Process]:
        found = []
        for proc in psutil.Process(os.getpid()).children(recursive=True):
            try:
                line = proc.cmdline()
            except psutil.NoSuchProcess:
                continue
            if line[-1:] == ["worker.py"]:
                found.append(proc)
        return found

    def kill_loop(self) -> None:
        end = time.monotonic() + self.args.kill_for
        while time.monotonic() < end and not self.stop_killing.is_set():
            time.sleep(self.args.kill_every)
            candidates = self.workers()
            if not candidates:
                continue
            victim = random.choice(candidates)
            try:
                family = [victim, *victim.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            for member in family:
                try:
                    member.kill()
                except psutil.NoSuchProcess:
                    pass
            self.kills += 1
            self.last_kill = time.monotonic()
            for i, proc in enumerate(self.extra):
                if proc.pid == victim.pid:
                    proc.wait()
                    threading.Timer(5, self._restart_extra, args=(i,)).start()

    def _restart_extra(self, index: int) -> None:
        if not self.stopped:
            self.extra[index] = self.start_worker()

    def post_all(self) -> list[int]:
        """Every message once, spread evenly over --post-over seconds (0: as fast as 8 threads
        go), so kills land before, during and after processing."""
        password = self.env["INBOUND_EMAIL_PASSWORD"]
        started = time.monotonic()
        gap = self.args.post_over / self.args.messages

        def post(n: int) -> int:
            time.sleep(max(0.0, started + n * gap - time.monotonic()))
            return post_relay_over_http(self.url, message(n), password)

        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(post, range(self.args.messages)))

    def counts(self) -> tuple[dict[str, int], int]:
        """Rows per status, and how many Message-IDs have more than one conversation message."""
        import sqlite3

        db = sqlite3.connect(self.folder / "instance" / "threadline.db", timeout=30)
        try:
            statuses = dict(db.execute("SELECT status, count(*) FROM inbound_emails GROUP BY 1"))
            twice = db.execute(
                "SELECT count(*) FROM (SELECT message_id FROM messages WHERE direction = "
                "'incoming' GROUP BY message_id HAVING count(*) > 1)"
            ).fetchone()[0]
        finally:
            db.close()
        return statuses, twice

    def stop(self) -> None:
        self.stop_killing.set()
        self.stopped = True
        for proc in [*self.extra, self.serve]:
            proc.terminate()
        for proc in [*self.extra, self.serve]:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--kill-every", type=float, default=3.0)
    parser.add_argument("--kill-for", type=float, default=60.0)
    parser.add_argument("--post-over", type=float, default=45.0)
    parser.add_argument("--extra-workers", type=int, default=2)
    parser.add_argument("--watch", type=float, default=300.0, help="seconds to wait at most")
    args = parser.parse_args()
    drill = Drill(args)
    print(f"drill folder: {drill.folder}")
    drill.setup()
    drill.start()
    try:
        killer = threading.Thread(target=drill.kill_loop, daemon=True)
        killer.start()
        started = time.monotonic()
        answers = drill.post_all()
        print(
            f"posted {len(answers)} in {time.monotonic() - started:.0f} s: "
            f"{sum(a == 204 for a in answers)} acknowledged (204), "
            f"others: {sorted(set(a for a in answers if a != 204))}"
        )
        killer.join()
        print(f"{drill.kills} workers SIGKILLed; watching from the last kill")
        acknowledged = sum(a == 204 for a in answers)
        deadline = drill.last_kill + args.watch
        next_report = 0.0
        while True:
            statuses, twice = drill.counts()
            since = time.monotonic() - drill.last_kill
            done = statuses.get("delivered", 0) >= acknowledged
            if since >= next_report or done:
                print(f"{since:5.0f} s after the last kill: {statuses}, delivered twice: {twice}")
                next_report += 10
            if done or time.monotonic() > deadline:
                break
            time.sleep(1)
        ok = done and twice == 0
        print(
            f"{'all' if done else 'NOT all'} {acknowledged} acknowledged messages delivered "
            f"{since:.0f} s after the last kill; delivered twice: {twice}"
        )
        return 0 if ok else 1
    finally:
        drill.stop()


if __name__ == "__main__":
    sys.exit(main())
