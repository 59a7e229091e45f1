"""Stored means stored: an object under a message's content-addressed key is verified (size and
SHA-1) before a 2xx and before the worker reads it; an empty or truncated one is rewritten by the
sender's retry, never acknowledged or processed as the message. Real local disk, a real S3 server
(SeaweedFS), a real database and Redis."""

from __future__ import annotations

import hashlib
import io

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
