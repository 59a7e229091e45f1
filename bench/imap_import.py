"""Benchmark importing a mailbox over IMAP: 1,000 messages in a real Dovecot mailbox until each
is a delivered InboundEmail, ours against getmail6 feeding the relay ingress.

Both sides run the shipped configuration on a fresh instance (bench/shipped_worker.py):
gunicorn with the Procfile's `web` options, one `python worker.py` and the scheduler
(`python worker.py --cron`), as `make run` starts them.

- **ours**: the support inbox reads the mailbox over IMAP (ImapSettings, as the setup wizard
  saves them); the clock starts when the poll job the scheduler would queue is queued.
- **getmail6**: `getmail` with SimpleIMAPRetriever on the same kind of mailbox (its own copy,
  the same bytes) and an MDA_external destination running our relay command
  (ingress/relay_cli.py, `threadline-relay`) once per message against gunicorn; the clock
  starts when getmail is started.

Either clock stops when every row has settled (delivered, or bounced for the few generated
messages addressed to nobody: the relay has no inbox to route them to, the IMAP import does),
the rows' statuses read every 50 ms. The sides alternate, ROUNDS each.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench import shipped_worker
from bench.idle import dovecot_settings
from bench.process import instance_config
from bench.processes import spawn, stop

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = 1000
ROUNDS = 2
LIMIT = 900  # seconds one side may take before the run is declared broken
GETMAIL = Path(sys.executable).with_name("getmail")
TITLE = "## IMAP import"


@dataclass
class Side:
    label: str
    seconds: float
    statuses: dict[str, int]
    note: str = ""

    @property
    def rate(self) -> float:
        return MESSAGES / self.seconds


def messages() -> list[bytes]:
    """The first MESSAGES of bench/process.py's mix (corpus files and generated mail of every
    shape, 1-2 MB attachments included), each with its own Message-ID."""
    from bench.corpus.mime import mixed_messages

    return mixed_messages()[:MESSAGES]


def fill_mailbox(dovecot, account: tuple[str, str], raws: list[bytes]) -> None:
    with dovecot.client(*account) as imap:
        for raw in raws:
            imap.append("INBOX", raw)


@contextmanager
def scheduler(instance: shipped_worker.Instance) -> Iterator[None]:
    """`python worker.py --cron`, the Procfile's scheduler line."""
    command = [sys.executable, "worker.py", "--cron"]
    process = spawn(command, instance.env, instance.work / "scheduler.log")
    try:
        yield
    finally:
        stop(process)


def _settled(statuses: dict[str, int]) -> bool:
    return sum(statuses.get(s, 0) for s in shipped_worker.SETTLED) >= MESSAGES


@contextmanager
def _running(work: Path, config_for) -> Iterator[shipped_worker.Instance]:
    """A fresh instance with its worker registered and its scheduler started."""
    with shipped_worker.shipped_instance(work, config_for) as instance:
        workers = shipped_worker.Workers(instance, 1, fork=False)
        try:
            workers.start()
            with scheduler(instance):
                workers.wait_until_listening(instance.env["REDIS_URL"])
                yield instance
        finally:
            workers.stop()


def ours(work: Path, dovecot, account: tuple[str, str]) -> Side:
    from app import create_app
    from extensions import db
    from models import ImapSettings, Inbox
    from services.background import enqueue_poll

    configs = []

    def config_for(folder: Path, redis_url: str) -> dict:
        configs.append(instance_config(folder, redis_url))
        return configs[-1]

    with _running(work, config_for) as instance:
        app = create_app(configs[-1])
        with app.app_context():
            inbox = db.session.query(Inbox).one()
            inbox.mode = "imap"
            inbox.imap = dovecot_settings(dovecot, account)  # polled when we say
            db.session.commit()
            inbox_id = inbox.id
            started = time.perf_counter()
            enqueue_poll(inbox_id)  # what enqueue_due_imap_polls queues for a due inbox
            ended = shipped_worker._wait(instance.db_path, _settled, "not all settled", LIMIT)
            result = db.session.get(ImapSettings, inbox_id).last_poll_result
            db.session.remove()
            db.engine.dispose()
        statuses = shipped_worker._statuses(instance.db_path)
    return Side("ours", ended - started, statuses, f"last poll: {result}")


def _getmailrc(folder: Path, dovecot, account: tuple[str, str], url: str, password: str) -> Path:
    relay = ROOT / "ingress" / "relay_cli.py"
    rc = folder / "getmailrc"
    rc.write_text(
        "[retriever]\n"
        "type = SimpleIMAPRetriever\n"
        f"server = {dovecot.host}\nport = {dovecot.port}\n"
        f"username = {account[0]}\npassword = {account[1]}\n"
        "mailboxes = ('INBOX',)\n\n"
        "[destination]\n"
        "type = MDA_external\n"
        f"path = {sys.executable}\n"
        f"arguments = ('{relay}', '--url', '{url}', '--password', '{password}')\n"
        "allow_root_commands = true\n\n"  # the bench may run as root; getmail refuses then
        "[options]\n"
        "verbose = 0\nread_all = true\ndelete = false\n"
        "delivered_to = false\nreceived = false\nmessage_log_syslog = false\n"
    )
    return rc


def _note_exit(process: subprocess.Popen, into: list[float]) -> None:
    process.wait()
    into.append(time.perf_counter())


def baseline(work: Path, dovecot, account: tuple[str, str]) -> Side:
    with _running(work, instance_config) as instance:
        url = f"http://127.0.0.1:{instance.port}{shipped_worker.RELAY_PATH}"
        getmail_dir = work / "getmail"
        getmail_dir.mkdir()
        rc = _getmailrc(getmail_dir, dovecot, account, url, instance.password)
        log = work / "getmail.log"
        started = time.perf_counter()
        command = [str(GETMAIL), "--getmaildir", str(getmail_dir), "--rcfile", str(rc)]
        process = spawn(command, instance.env, log)
        exited: list[float] = []  # when getmail itself was done: its last delivery answered
        waiter = threading.Thread(target=_note_exit, args=(process, exited))
        waiter.start()
        try:
            ended = shipped_worker._wait(instance.db_path, _settled, "not all settled", LIMIT)
            code = process.wait(60)
            waiter.join()
            retrieved = exited[0] - started
        finally:
            stop(process)
        if code != 0:
            raise RuntimeError(f"getmail exited {code}:\n{log.read_text()[-3000:]}")
        statuses = shipped_worker._statuses(instance.db_path)
    return Side("getmail6", ended - started, statuses, f"getmail itself done at {retrieved:.1f} s")


def run() -> str:
    from tests.support.dovecot import DOVECOT

    if not os.path.exists(DOVECOT):
        return f"{TITLE}\n\nSkipped: Dovecot is not installed (`apt-get install dovecot-imapd`).\n"
    if not GETMAIL.exists():
        return f"{TITLE}\n\nSkipped: getmail6 is not installed (`make install-dev`).\n"
    return _run()


def _run() -> str:
    from tests.support.dovecot import DovecotServer, private_base

    raws = messages()
    dovecot = DovecotServer(private_base("threadline-bench-imap-"))
    dovecot.start()
    accounts = {
        side: (f"bench-{side}-{secrets.token_hex(4)}@example.com", secrets.token_hex(8))
        for side in ("ours", "getmail6")
    }
    dovecot.add_users(dict(accounts.values()))
    sides: list[Side] = []
    try:
        for account in accounts.values():
            fill_mailbox(dovecot, account, raws)
        with tempfile.TemporaryDirectory(prefix="threadline-bench-imap-") as tmp:
            for n in range(ROUNDS):
                for side, measure in (("ours", ours), ("getmail6", baseline)):
                    folder = Path(tmp) / f"{side}-{n}"
                    folder.mkdir()
                    sides.append(measure(folder, dovecot, accounts[side]))
                    print(f"{side} round {n + 1}: {sides[-1].seconds:.1f} s", file=sys.stderr)
    finally:
        dovecot.stop()
        dovecot.remove()
    return report(raws, sides)


def report(raws: list[bytes], sides: list[Side]) -> str:
    size = sum(len(raw) for raw in raws) / 1024 / 1024
    rows = []
    for n in range(0, len(sides), 2):
        mine, theirs = sides[n], sides[n + 1]
        for side in (mine, theirs):
            outcome = ", ".join(f"{k} {v}" for k, v in sorted(side.statuses.items()))
            rows.append(
                f"| {n // 2 + 1} | {side.label} | {side.seconds:.1f} | {side.rate:.1f} | "
                f"{outcome} | {side.note} |"
            )
        rows.append(
            f"| {n // 2 + 1} | ratio ours/getmail6 | {mine.seconds / theirs.seconds:.2f}x "
            "| | | target ≤ 1.0x |"
        )
    ours_total = sum(s.seconds for s in sides if s.label == "ours")
    theirs_total = sum(s.seconds for s in sides if s.label != "ours")
    return "\n".join(
        [
            TITLE,
            "",
            f"{MESSAGES} messages ({size:.1f} MiB, bench/process.py's mix) APPENDed to a real "
            "Dovecot mailbox, one per side; seconds from the start until every InboundEmail row "
            "has settled, on a fresh instance each run of gunicorn (Procfile options), one "
            "`python worker.py` and the scheduler. Ours: the inbox's IMAP poll, queued as the "
            "scheduler queues it. Baseline: getmail6 (SimpleIMAPRetriever) piping each message "
            "to our relay command (`ingress/relay_cli.py`) against gunicorn. "
            "`python -m bench imap`.",
            "",
            "| round | side | seconds | msg/s | outcome | note |",
            "| ---: | --- | ---: | ---: | --- | --- |",
            *rows,
            "",
            f"Over all rounds: ours {ours_total:.1f} s, getmail6 {theirs_total:.1f} s: "
            f"**{ours_total / theirs_total:.2f}x** (target ≤ 1.0x).",
            "",
        ]
    )


if __name__ == "__main__":
    print(run())
