"""Stored means stored: an object under a message's content-addressed key is verified (size and
SHA-1) before a 2xx and before the worker reads it; an empty or truncated one is rewritten by the
sender's retry, never acknowledged or processed as the message. Real local disk, a real S3 server
(SeaweedFS), a real database and Redis."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
from rq import Queue
from rq.job import Job
from sqlalchemy import func, select

from tests.support.inbound import work_inbound
from tests.support.ingress_requests import RELAY_URL, basic_auth, inbound_rows, stored_bytes

RAW = (
    b"From: Carla Customer <carla@customer.example>\r\nTo: support@example.com\r\n"
    b"Subject: Printer on fire\r\nMessage-ID: <damaged.1@customer.example>\r\n\r\n"
    + b"The printer is on fire again.\r\n"
    * 40
)
KEY = f"inbound/{hashlib.sha1(RAW).hexdigest()[:2]}/{hashlib.sha1(RAW).hexdigest()}.eml"
DAMAGE = {"empty": b"", "truncated": RAW[: len(RAW) // 3]}


def s3_settings(server: dict) -> dict:
    return {
        "STORAGE_BACKEND": "minio",
        "MINIO_ENDPOINT": server["endpoint"],
        "MINIO_ACCESS_KEY": server["access_key"],
        "MINIO_SECRET_KEY": server["secret_key"],
        "MINIO_BUCKET": server["bucket"],
    }


@pytest.fixture(params=["local", "s3"])
def backend(request, app_config):
    """The test's app on local disk or on the session's S3 server; yields its client."""
    if request.param == "s3":
        app_config.update(s3_settings(request.getfixturevalue("s3_server")))
    client = request.getfixturevalue("client")
    from extensions import get_storage

    get_storage().delete(KEY)  # the S3 bucket is shared by the session's tests
    return client


def post_relay(client, raw: bytes = RAW):
    return client.post(RELAY_URL, data=raw, content_type="message/rfc822", headers=basic_auth())


def damage(how: str) -> None:
    from extensions import get_storage

    get_storage().put(KEY, io.BytesIO(DAMAGE[how]), length=len(DAMAGE[how]))


def run_retries_now(app) -> None:
    """Make RQ's scheduled retries due and run them (a burst worker never waits for them)."""
    from extensions import get_redis

    queue = Queue("inbound", connection=get_redis())
    registry = queue.scheduled_job_registry
    for job_id in registry.get_job_ids():
        registry.remove(job_id)
        queue.enqueue_job(Job.fetch(job_id, connection=get_redis()))
    work_inbound(app)


def count(model) -> int:
    from extensions import db

    return db.session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize("how", ["empty", "truncated"])
def test_a_damaged_object_under_the_key_is_rewritten_before_the_204(backend, how):
    from storage import DamagedObject

    damage(how)

    response = post_relay(backend)

    assert response.status_code == 204, response.get_data(as_text=True)
    [row] = inbound_rows()
    assert row.storage_key == KEY and row.status == "pending"
    assert stored_bytes(row) == RAW
    from extensions import get_storage

    get_storage().verify(KEY, len(RAW), hashlib.sha1(RAW).hexdigest())
    with pytest.raises(DamagedObject, match="damaged"):
        get_storage().verify(KEY, len(RAW) + 1, hashlib.sha1(RAW).hexdigest())


@pytest.mark.parametrize("how", ["empty", "truncated"])
def test_the_worker_refuses_a_damaged_copy_and_a_retry_by_the_sender_repairs_it(
    backend, app, inbox, how
):
    from extensions import db
    from models import Conversation, InboundEmail, Message

    assert post_relay(backend).status_code == 204
    damage(how)  # e.g. the disk or the S3 server lost the object's tail after the 204

    work_inbound(app)

    [row] = inbound_rows()
    assert row.status == "failed"  # not bounced as "no recipients", not delivered
    assert "stored copy" in row.reason and "damaged" in row.reason
    assert "rewrites the copy" in row.reason
    assert count(Message) == 0 and count(Conversation) == 0

    assert post_relay(backend).status_code == 204  # the sender retries

    [row] = inbound_rows()
    assert (row.status, row.reason) == ("pending", None)
    assert stored_bytes(row) == RAW
    run_retries_now(app)  # RQ's scheduled retry takes it; nothing else is queued
    work_inbound(app)

    [row] = inbound_rows()
    assert row.status == "delivered"
    assert count(Message) == 1 and count(Conversation) == 1
    assert post_relay(backend).status_code == 204  # a later duplicate changes nothing
    run_retries_now(app)
    assert count(Message) == 1
    assert db.session.get(InboundEmail, row.id).status == "delivered"


def test_same_size_but_altered_bytes_fail_the_sha1_check_and_are_rewritten(backend):
    from extensions import get_storage
    from storage import DamagedObject, ObjectNotFound

    storage, sha1 = get_storage(), hashlib.sha1(RAW).hexdigest()
    with pytest.raises(ObjectNotFound):
        storage.verify(KEY, len(RAW), sha1)
    altered = RAW.replace(b"fire", b"FIRE")
    storage.put(KEY, io.BytesIO(altered), length=len(altered))
    with pytest.raises(DamagedObject, match=f"its SHA-1 is {hashlib.sha1(altered).hexdigest()}"):
        storage.verify(KEY, len(RAW), sha1)
    with pytest.raises(DamagedObject, match="SHA-1"):
        storage.get_verified_bytes(KEY, len(RAW), sha1)

    assert post_relay(backend).status_code == 204

    assert storage.get_verified_bytes(KEY, len(RAW), sha1) == RAW


def test_a_duplicate_post_of_a_whole_copy_is_not_rewritten(backend):
    from extensions import get_storage

    assert post_relay(backend).status_code == 204
    calls = []
    storage = get_storage()
    original = storage.put
    storage.put = lambda *a, **kw: calls.append(a) or original(*a, **kw)
    try:
        assert post_relay(backend).status_code == 204
    finally:
        del storage.put
    assert calls == []


# ---------------------------------------------------------------- a real interruption


class KillableS3Server:
    """SeaweedFS on fixed ports and one data folder, so it can be SIGKILLed and started again
    with what it had stored (tests.support.s3_server starts a fresh one each time)."""

    def __init__(self, base: Path) -> None:
        from tests.support import s3_server as sw

        self.base = base
        for sub in ("data", "logs"):
            (base / sub).mkdir(parents=True)
        (base / "s3.json").write_text(sw._identities(sw.ACCESS_KEY, sw.SECRET_KEY))
        self.sockets = Path(tempfile.mkdtemp(prefix="sw-", dir="/tmp"))
        self.ports = sw._pick_ports()
        self.argv = sw._argv(sw.weed_binary(), base, self.sockets, self.ports)
        self.settings = {
            "endpoint": f"127.0.0.1:{self.ports['s3']}",
            "access_key": sw.ACCESS_KEY,
            "secret_key": sw.SECRET_KEY,
            "bucket": "killed-mid-upload",
        }
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        from tests.support import s3_server as sw

        with open(self.base / "weed.out", "ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=sw._die_with_parent,  # never outlives a killed test run
            )
        problem = sw._wait_until_ready(self.proc, self.settings["endpoint"], self.base)
        assert problem is None, f"SeaweedFS: {problem}\n{sw._log_tail(self.base)}"

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        from tests.support import s3_server as sw

        if self.proc is not None:
            sw._stop(self.proc)
        sw._remove_grpc_sockets(self.ports)
        shutil.rmtree(self.sockets, ignore_errors=True)


@pytest.fixture
def killable_s3(tmp_path):
    server = KillableS3Server(tmp_path / "s3")
    try:
        server.start()
        yield server
    finally:
        server.stop()


def upload_offset(size: int) -> int:
    """How far the S3 SDK has read the spooled message (a deleted temp file of that size this
    process holds open): /proc's fdinfo shows its read position."""
    for fd in Path("/proc/self/fd").iterdir():
        try:
            if "(deleted)" in os.readlink(fd) and os.fstat(int(fd.name)).st_size == size:
                info = Path(f"/proc/self/fdinfo/{fd.name}").read_text()
                return int(info.split("pos:")[1].split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return 0


def large_message(size: int) -> bytes:
    head = RAW.split(b"\r\n\r\n")[0].replace(b"damaged.1@", b"large.1@") + b"\r\n\r\n"
    line = b"0123456789abcdef" * 4 + b"\r\n"
    return head + line * (size // len(line))


def test_the_s3_server_killed_mid_upload_then_restarted_stores_the_retried_post_whole(
    app, app_config, killable_s3
):
    # `app` (the suite's) is here for its teardown: it empties the tables and Redis this
    # test's own app (on the killable S3 server) writes to.
    app_config.update(s3_settings(killable_s3.settings))
    app_config["INBOUND_EMAIL_MAX_BYTES"] = 200 * 1024 * 1024
    from app import create_app
    from extensions import get_storage

    s3_app = create_app(app_config)
    raw = large_message(48 * 1024 * 1024)
    with s3_app.app_context():
        get_storage().check()  # the bucket exists before the clock starts
        answers = []
        poster = threading.Thread(
            target=lambda: answers.append(post_relay(s3_app.test_client(), raw))
        )
        poster.start()
        deadline = time.monotonic() + 30
        while upload_offset(len(raw)) < 8 * 1024 * 1024:  # the first part is sent, more follow
            assert poster.is_alive() and time.monotonic() < deadline, "the upload was not seen"
            time.sleep(0.002)
        killable_s3.kill()
        poster.join(timeout=60)
        [interrupted] = answers
        assert interrupted.status_code == 503, interrupted.get_data(as_text=True)
        assert inbound_rows() == []

        killable_s3.start()
        retried = post_relay(s3_app.test_client(), raw)

        assert retried.status_code == 204, retried.get_data(as_text=True)
        [row] = inbound_rows()
        assert row.size == len(raw) and stored_bytes(row) == raw
