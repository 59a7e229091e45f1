"""The two-machine shape, proven on one machine.

Two process sets, "a" and "b", each in a folder of its own (its own env file, INSTANCE_PATH
and working folder; nothing shared on disk), share only what README's "Outgrowing one
machine" says they share: one PostgreSQL (tests/support/postgres.py: TEST_DATABASE_URL, else
127.0.0.1:5432, else a private cluster), one Redis and one S3 server (SeaweedFS), plus the
same SECRET_KEY, ENCRYPTION_KEY and ingress password. Every process runs the Procfile's
command from its set's folder with the code on PYTHONPATH, as an installed package runs from
/var/lib/threadline under deploy/systemd.

Set a runs its web only and set b its web and its worker, so the only worker is b's: what
a's web receives can only be processed and sent by b. Through the real pages and the real
relay ingress:

1. mail with an attachment posted to a's ingress becomes a conversation, processed by b's
   worker (RQ records which worker ran the job);
2. the attachment b's worker stored in S3 downloads through a's web, byte for byte;
3. a reply composed on a's web is sent by b's worker to a real SMTP server (aiosmtpd),
   answering the customer's message (In-Reply-To).

The admin is created with `flask admin create` on a, signs in on a's web, and sets up the
inbox with the wizard on b's web with the same browser session.
"""

from __future__ import annotations

import email
import email.policy
import http.cookiejar
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from minio import Minio
from redis import Redis
from rq import Worker
from rq.job import Job
from sqlalchemy import create_engine, text

from runtime.process_set import process_commands
from tests.conftest import csrf_token_from
from tests.support.postgres import fresh_database, postgres_server
from tests.support.smtp_server import running_smtp_server
from tests.support.waiting import post_relay_over_http
from tests.support.waiting import wait_for as support_wait_for

# Always on PostgreSQL (tests/support/postgres.py), so not marked `db`: the PostgreSQL rerun
# of .ci/run would only run it twice.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
FLASK = Path(sys.executable).with_name("flask")
WAIT = 60  # seconds for any one thing to happen, on a busy 2-core machine
STOP_GRACE = 15
REDIS_DB = 11  # a database of its own on the session's Redis: other tests' queues stay apart

ADMIN_EMAIL, ADMIN_PASSWORD, ADMIN_NAME = "rita@example.com", "two machines, one inbox", "Rita"
SUPPORT_ADDRESS = "help@example.com"
CUSTOMER = "zofia@example.pl"
ATTACHMENT_NAME = "ledger.bin"
REPLY_TEXT = "Thank you, Zofia: the ledger arrived on the other machine."


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float = WAIT):
    return support_wait_for(predicate, timeout, interval=0.25)


def procfile_command(name: str) -> str:
    """The Procfile's line for `name`, run from another folder: a script named relative to
    the checkout (`python worker.py`) gets its full path; the rest is unchanged."""
    words = process_commands(ROOT / "Procfile")[name].split(" ")
    return " ".join(
        str(ROOT / w) if w.endswith(".py") and (ROOT / w).is_file() else w for w in words
    )


class ProcessSet:
    """One "machine": a folder with its env file and instance/, and the processes it runs."""

    def __init__(self, name: str, base: Path, shared: dict[str, str]):
        self.name = name
        self.folder = base / f"machine-{name}"
        self.folder.mkdir()
        self.instance = self.folder / "instance"
        self.env_file = self.folder / "threadline.env"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings = {
            **shared,
            "INSTANCE_PATH": str(self.instance),
            "APP_URL": self.url,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "WEB_CONCURRENCY": "1",
        }
        fd = os.open(self.env_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.writelines(f"{key}={value}\n" for key, value in self.settings.items())
        self.procs: dict[str, subprocess.Popen] = {}

    def env(self) -> dict[str, str]:
        """ENV_FILE holds every setting; HOST/PORT/WEB_CONCURRENCY are exported too, since
        the Procfile's web line expands them (as `serve` and the systemd unit do)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
        python_path = [str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
        env.update(
            ENV_FILE=str(self.env_file),
            PYTHONPATH=os.pathsep.join(python_path),
            PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
            HOST=self.settings["HOST"],
            PORT=self.settings["PORT"],
            WEB_CONCURRENCY=self.settings["WEB_CONCURRENCY"],
        )
        return env

    def flask(self, *args: str) -> str:
        result = subprocess.run(
            [str(FLASK), "--app", str(ROOT / "app"), *args],
            cwd=self.folder,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=180,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"{self.name}: flask {' '.join(args)}:\n{output}"
        return output

    def log_path(self, name: str) -> Path:
        return self.folder / f"{name}.log"

    def start(self, name: str) -> subprocess.Popen:
        with open(self.log_path(name), "wb") as log:
            proc = subprocess.Popen(
                ["/bin/sh", "-c", "exec " + procfile_command(name)],
                cwd=self.folder,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: gunicorn's worker, RQ's work horse
            )
        self.procs[name] = proc
        return proc

    def log(self, name: str, lines: int = 80) -> str:
        try:
            content = self.log_path(name).read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(content.splitlines()[-lines:])

    def logs(self) -> str:
        return "\n".join(
            f"--- machine {self.name}: {name} (pid {proc.pid}, exit {proc.poll()}) ---\n"
            f"{self.log(name)}"
            for name, proc in self.procs.items()
        )

    def wait_until_ready(self) -> None:
        """/readyz answers 200: this web reaches the database, Redis and S3."""
        web = self.procs["web"]
        last = ""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            assert web.poll() is None, f"{self.name}'s web exited with {web.returncode}"
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=10) as response:
                    if response.status == 200:
                        return
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}: {exc.read()[:500]!r}"
            except (urllib.error.URLError, OSError) as exc:
                last = str(exc)
            time.sleep(0.25)
        pytest.fail(f"{self.name}'s /readyz did not answer 200 within {WAIT}s ({last})")

    def stop(self) -> None:
        """SIGTERM every process, then SIGKILL whatever is left of its group."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                pass


@dataclass
class Page:
    status: int
    url: str
    body: bytes
    headers: dict[str, str]

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")

    @property
    def path(self) -> str:
        return urllib.parse.urlsplit(self.url).path


class Browser:
    """One cookie jar for both webs (cookies do not depend on the port): a session started on
    one machine's web is sent to the other's as well."""

    def __init__(self):
        jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def _open(self, request: urllib.request.Request) -> Page:
        try:
            with self.opener.open(request, timeout=30) as response:
                return Page(response.status, response.url, response.read(), dict(response.headers))
        except urllib.error.HTTPError as exc:
            return Page(exc.code, exc.filename, exc.read(), dict(exc.headers))

    def get(self, url: str) -> Page:
        return self._open(urllib.request.Request(url))

    def post(self, url: str, form: dict) -> Page:
        data = urllib.parse.urlencode(form, doseq=True).encode()
        return self._open(urllib.request.Request(url, data=data))


relay = post_relay_over_http


def customer_mail(message_id: str, attachment: bytes) -> bytes:
    mail = EmailMessage()
    mail["From"] = f"Zofia Nowak <{CUSTOMER}>"
    mail["To"] = SUPPORT_ADDRESS
    mail["Subject"] = "The ledger, from one machine to the other"
    mail["Message-ID"] = f"<{message_id}>"
    mail["Date"] = formatdate(localtime=False)
    mail.set_content("Hello,\n\nthe ledger is attached.\n\nZofia\n")
    mail.add_attachment(
        attachment, maintype="application", subtype="octet-stream", filename=ATTACHMENT_NAME
    )
    return mail.as_bytes()


@pytest.fixture(scope="module")
def postgres_database():
    """A fresh database on whichever PostgreSQL this machine has (or a private cluster)."""
    with postgres_server() as server_url, fresh_database(server_url, "threadline_two") as url:
        yield url


@pytest.fixture
def shared_redis(redis_server):
    url = f"{redis_server}?db={REDIS_DB}"
    connection = Redis.from_url(url)
    connection.flushdb()
    yield url, connection
    connection.flushdb()
    connection.close()


@pytest.fixture
def shared_bucket(s3_server):
    """A bucket of its own on the session's S3 server, emptied and removed afterwards."""
    client = Minio(
        s3_server["endpoint"],
        access_key=s3_server["access_key"],
        secret_key=s3_server["secret_key"],
        secure=False,
    )
    bucket = f"two-machines-{uuid.uuid4().hex[:12]}"
    client.make_bucket(bucket)
    yield client, bucket
    for obj in client.list_objects(bucket, recursive=True):
        client.remove_object(bucket, obj.object_name)
    client.remove_bucket(bucket)


def test_mail_received_by_one_machine_is_processed_stored_and_answered_by_the_other(
    tmp_path, postgres_database, shared_redis, shared_bucket, s3_server
):
    redis_url, redis = shared_redis
    s3, bucket = shared_bucket
    ingress_password = secrets.token_hex(16)
    with running_smtp_server() as smtp:
        shared = {
            "SECRET_KEY": secrets.token_hex(32),
            "ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "INBOUND_EMAIL_PASSWORD": ingress_password,
            "DATABASE_URL": postgres_database,
            "REDIS_URL": redis_url,
            "STORAGE_BACKEND": "minio",
            "MINIO_ENDPOINT": s3_server["endpoint"],
            "MINIO_ACCESS_KEY": s3_server["access_key"],
            "MINIO_SECRET_KEY": s3_server["secret_key"],
            "MINIO_BUCKET": bucket,
            "SMTP_ADDRESS": smtp.host,
            "SMTP_PORT": str(smtp.port),
            "SEND_UNDO_SECONDS": "0",  # no scheduler here: its tick sends what waits
        }
        a = ProcessSet("a", tmp_path, shared)
        b = ProcessSet("b", tmp_path, shared)
        database = create_engine(postgres_database)
        try:
            run_scenario(a, b, database, redis, s3, bucket, smtp, ingress_password)
        except BaseException:
            print(f"{a.logs()}\n{b.logs()}")  # pytest shows it with the failure
            raise
        finally:
            a.stop()
            b.stop()
            database.dispose()


def run_scenario(a, b, database, redis, s3, bucket, smtp, ingress_password) -> None:
    # Once for the installation, from machine a; then a's web, and b's web and worker.
    assert "Running upgrade" in a.flask("db", "upgrade")
    a.flask(
        "admin",
        "create",
        "--email",
        ADMIN_EMAIL,
        "--password",
        ADMIN_PASSWORD,
        "--name",
        ADMIN_NAME,
        "--role",
        "admin",
    )
    a.start("web")
    b.start("web")
    b_worker = b.start("worker")
    a.wait_until_ready()
    b.wait_until_ready()
    workers = wait_for(lambda: Worker.all(connection=redis))
    assert [w.pid for w in workers] == [b_worker.pid], f"workers: {workers}"
    worker_name = workers[0].name

    # The admin signs in on a's web, through the real form.
    browser = Browser()
    login = browser.get(f"{a.url}/login")
    signed_in = browser.post(
        f"{a.url}/login",
        {
            "email": ADMIN_EMAIL,
            "password": ADMIN_PASSWORD,
            "csrf_token": csrf_token_from(login.text),
        },
    )
    assert (signed_in.status, signed_in.path) == (200, "/"), signed_in.text[:1000]
    assert signed_in.url.startswith(a.url) and "Sign out" in signed_in.text

    # The same session on b's web: the inbox wizard there (its draft waits in Redis from the
    # first step's POST on).
    first_step = browser.get(f"{b.url}/admin/inboxes/new")
    assert first_step.status == 200 and "Step 1 of 6" in first_step.text, first_step.text[:1000]
    assert first_step.url.startswith(b.url)
    csrf = csrf_token_from(first_step.text)
    name = {"csrf_token": csrf, "go": "next", "name": "Help", "support_address": SUPPORT_ADDRESS}
    second_step = browser.post(f"{b.url}/admin/inboxes/new", name)
    assert second_step.status == 200 and second_step.path.endswith("/mode"), second_step.text[:1500]
    draft_url = second_step.url.rsplit("/", 1)[0]
    steps = [
        ("mode", {"mode": "forwarding"}, "/forwarding"),
        ("forwarding", {}, "/identity"),
        (
            "identity",
            {
                "sender_name_style": "agent_from_inbox",
                "reply_to_style": "inbox",
                "signature": "The Help team",
                "subject_threading": "1",
            },
            "/agents",
        ),
        ("agents", {}, "/test"),
    ]
    for step, fields, following in steps:
        page = browser.post(f"{draft_url}/{step}", {"csrf_token": csrf, "go": "next", **fields})
        assert page.status == 200 and page.path.endswith(following), (step, page.text[:1500])

    # 1. Mail with an attachment into a's ingress; only b's worker can process it.
    message_id = f"two-machines-{uuid.uuid4().hex}@example.pl"
    attachment = os.urandom(180 * 1024)
    status = relay(a.url, customer_mail(message_id, attachment), ingress_password)
    assert status == 204, f"a's relay ingress answered {status}"

    def inbound_row():
        with database.connect() as conn:
            return conn.execute(
                text("SELECT id, status, reason, storage_key FROM inbound_emails")
            ).first()

    def processed_row():
        row = inbound_row()
        return row if row is not None and row.status not in ("pending", "processing") else None

    row = wait_for(processed_row)
    assert row and row.status == "delivered", f"inbound row: {inbound_row()}"
    inbound_job = Job.fetch(f"process-inbound-{row.id}", connection=redis)
    result = inbound_job.latest_result()
    assert result is not None and result.worker_name == worker_name, (result, worker_name)
    s3.stat_object(bucket, row.storage_key)  # the raw message a's web stored, in S3

    with database.connect() as conn:
        incoming = conn.execute(
            text("SELECT id, conversation_id FROM messages WHERE message_id = :mid"),
            {"mid": message_id},
        ).one()
        stored = conn.execute(
            text("SELECT id, storage_key, size FROM attachments WHERE message_id = :id"),
            {"id": incoming.id},
        ).one()
    assert stored.storage_key and stored.size == len(attachment)
    assert s3.stat_object(bucket, stored.storage_key).size == len(attachment)

    # 2. The attachment b's worker stored downloads through a's web, found in the thread page.
    thread_url = f"{a.url}/conversations/{incoming.conversation_id}"
    thread = browser.get(thread_url)
    assert thread.status == 200, thread.text[:1000]
    links = re.findall(r'href="(/attachments/\d+)"[^>]*>([^<]+)</a>', thread.text)
    assert links == [(f"/attachments/{stored.id}", ATTACHMENT_NAME)], links
    download = browser.get(a.url + links[0][0])
    assert download.status == 200, download.text[:500]
    assert download.body == attachment
    assert ATTACHMENT_NAME in download.headers["Content-Disposition"]
    served = f"GET /attachments/{stored.id} "
    assert wait_for(lambda: served in a.log("web", 400), timeout=10), a.log("web")

    # 3. A reply composed on a's web (its composer form, CSRF and all) is sent by b's worker.
    composer = re.search(r'<form id="composer".*?</form>', thread.text, re.S)
    assert composer, "no reply form in the thread page"
    hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', composer[0]))
    replied = browser.post(f"{thread_url}/reply", {**hidden, "text": REPLY_TEXT})
    assert replied.status == 200 and replied.path == urllib.parse.urlsplit(thread_url).path
    assert REPLY_TEXT in replied.text, replied.text[:1000]

    def our_reply():
        for envelope in smtp.envelopes:
            parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
            body = parsed.get_body(("plain",))
            if body is not None and REPLY_TEXT in body.get_content():
                return envelope, parsed
        return None

    sent = wait_for(our_reply)
    assert sent, f"the reply did not reach the SMTP server in {WAIT}s: {smtp.envelopes}"
    envelope, parsed = sent
    assert envelope.rcpt_tos == [CUSTOMER]
    assert parsed["In-Reply-To"] == f"<{message_id}>"
    assert f"<{message_id}>" in (parsed["References"] or "")

    with database.connect() as conn:
        outgoing = conn.execute(
            text(
                "SELECT id, delivery_status, message_id FROM messages "
                "WHERE conversation_id = :c AND direction = 'outgoing'"
            ),
            {"c": incoming.conversation_id},
        ).one()
    assert parsed["Message-ID"] == f"<{outgoing.message_id}>"
    send_job = Job.fetch(f"send-message-{outgoing.id}", connection=redis)
    result = wait_for(send_job.latest_result)
    assert result is not None and result.worker_name == worker_name, (result, worker_name)

    # Nothing on either machine's disk: every object went to S3, every row to PostgreSQL.
    for machine in (a, b):
        assert not list(machine.instance.glob("**/*")), (
            machine.name,
            list(machine.instance.glob("**/*")),
        )
