"""Nothing acknowledged is lost: store → commit → enqueue → 2xx, against real storage (local disk
and a real S3 server), a real database and a real Redis, each also really unavailable."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from rq import Queue

from tests.support.ingress_requests import (
    MAILGUN_KEY,
    MANDRILL_KEY,
    POSTMARK_URL,
    RELAY_URL,
    SENDGRID_URL,
    assert_received_once,
    basic_auth,
    inbound_job_ids,
    inbound_rows,
    job_exists,
    load_fixture,
    post_form,
    post_mailgun,
    post_mandrill,
    stored_bytes,
    stored_keys,
)
from tests.support.s3_server import free_port, running_s3_server

PLAIN = load_fixture("plain-text.eml")
PLAIN_ID = "plain-text.1@customer.example.com"
ISO = load_fixture("iso-8859-2-html.eml")
ISO_ID = "iso-8859-2-html.20250114091244@example.pl"
INLINE = load_fixture("inline-images.eml")
ALL_FIVE = {
    "INBOUND_EMAIL_SERVICE": "relay,postmark,sendgrid,mailgun,mandrill",
    "MAILGUN_INGRESS_SIGNING_KEY": MAILGUN_KEY,
    "MANDRILL_INGRESS_API_KEY": MANDRILL_KEY,
}


@pytest.fixture
def configure(app_config, request):
    """Apply settings, then build the test's app and return its client (call once per test)."""

    def make(**settings):
        app_config.update(settings)
        return request.getfixturevalue("client")

    return make


def post_relay(client, raw: bytes):
    return client.post(RELAY_URL, data=raw, content_type="message/rfc822", headers=basic_auth())


def post_each_ingress(client, raw: bytes) -> list:
    """The same kind of request through all five ingresses; returns their responses."""
    events = json.dumps([{"event": "inbound", "msg": {"raw_msg": raw.decode()}}])
    return [
        post_relay(client, raw),
        client.post(POSTMARK_URL, json={"RawEmail": raw.decode()}, headers=basic_auth()),
        post_form(client, SENDGRID_URL, [("email", raw)], headers=basic_auth()),
        post_mailgun(client, raw),
        post_mandrill(client, [("mandrill_events", events)]),
    ]


def s3_settings(server: dict) -> dict:
    return {
        "STORAGE_BACKEND": "minio",
        "MINIO_ENDPOINT": server["endpoint"],
        "MINIO_ACCESS_KEY": server["access_key"],
        "MINIO_SECRET_KEY": server["secret_key"],
        "MINIO_BUCKET": server["bucket"],
    }


def assert_retry_later(response):
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()


# ---------------------------------------------------------------- duplicates


def test_the_same_message_posted_twice_is_stored_and_processed_once(configure):
    client = configure(**ALL_FIVE)

    first = post_relay(client, ISO)
    again = post_relay(client, ISO)
    # A provider redelivering through another ingress is still the same message.
    via_sendgrid = post_form(client, SENDGRID_URL, [("email", ISO)], headers=basic_auth())

    assert [first.status_code, again.status_code, via_sendgrid.status_code] == [204, 204, 204]
    row = assert_received_once(ISO, "relay", ISO_ID)  # one row, one job
    assert stored_keys() == [row.storage_key]  # one object


def test_a_duplicate_of_a_processed_message_is_acknowledged_but_not_processed_again(client):
    from extensions import db, get_redis

    assert post_relay(client, PLAIN).status_code == 204
    row = inbound_rows()[0]
    Queue("inbound", connection=get_redis()).empty()
    row.status = "delivered"
    db.session.commit()

    assert post_relay(client, PLAIN).status_code == 204

    assert [r.id for r in inbound_rows()] == [row.id]
    assert inbound_job_ids() == []


def test_the_same_message_id_with_different_bytes_makes_two_rows(client):
    edited = PLAIN.replace(b"has not arrived yet", b"still has not arrived")

    assert post_relay(client, PLAIN).status_code == 204
    assert post_relay(client, edited).status_code == 204

    rows = inbound_rows()
    assert [row.message_id for row in rows] == [PLAIN_ID, PLAIN_ID]
    assert [row.checksum for row in rows] == [
        hashlib.sha1(PLAIN).hexdigest(),
        hashlib.sha1(edited).hexdigest(),
    ]
    assert [stored_bytes(row) for row in rows] == [PLAIN, edited]
    assert len(stored_keys()) == 2
    assert inbound_job_ids() == [f"process-inbound-{row.id}" for row in rows]


# ---------------------------------------------------------------- storage


def test_messages_are_stored_byte_for_byte_in_a_real_s3_bucket(configure, s3_server):
    from extensions import get_storage

    client = configure(**s3_settings(s3_server))
    assert type(get_storage()).__name__ == "MinioStorage"

    assert post_relay(client, ISO).status_code == 204
    assert post_relay(client, INLINE).status_code == 204

    rows = inbound_rows()
    assert [stored_bytes(row) for row in rows] == [ISO, INLINE]
    assert [hashlib.sha1(stored_bytes(row)).hexdigest() for row in rows] == [
        row.checksum for row in rows
    ]
    assert len(inbound_job_ids()) == 2


@pytest.mark.parametrize(
    ("credentials", "servers_words"),
    [
        ({"MINIO_SECRET_KEY": "not-the-s3-secret"}, "SignatureDoesNotMatch"),
        (
            {"MINIO_ACCESS_KEY": "NOT-A-KEY", "MINIO_SECRET_KEY": "not-the-s3-secret"},
            "InvalidAccessKeyId",
        ),
    ],
    ids=["wrong secret", "wrong access key"],
)
def test_refused_s3_credentials_are_503_and_leave_nothing(
    configure, s3_server, credentials, servers_words
):
    from ingress.receive import storage_key_for
    from storage import MinioStorage

    client = configure(**{**s3_settings(s3_server), **credentials})

    response = post_relay(client, PLAIN)

    assert_retry_later(response)
    body = response.get_data(as_text=True)
    assert "could not be stored" in body
    assert servers_words in body  # the MTA logs the server's reason with the deferral
    assert "not-the-s3-secret" not in body
    assert inbound_rows() == []
    assert inbound_job_ids() == []
    real = MinioStorage(
        s3_server["endpoint"], s3_server["access_key"], s3_server["secret_key"], s3_server["bucket"]
    )
    assert not real.exists(storage_key_for(hashlib.sha1(PLAIN).hexdigest()))


def test_storage_unreachable_is_503_for_every_ingress_and_leaves_nothing(configure):
    closed = {
        "STORAGE_BACKEND": "minio",
        "MINIO_ENDPOINT": f"127.0.0.1:{free_port()}",
        "MINIO_ACCESS_KEY": "threadline",
        "MINIO_SECRET_KEY": "threadline-secret",
    }
    client = configure(**ALL_FIVE, **closed)

    for response in post_each_ingress(client, PLAIN):
        assert_retry_later(response)

    assert inbound_rows() == []
    assert inbound_job_ids() == []


def test_storage_going_down_turns_2xx_into_503(configure, tmp_path):
    with running_s3_server(tmp_path / "s3") as server:
        client = configure(**s3_settings(server))
        assert post_relay(client, PLAIN).status_code == 204
    # The S3 server has stopped: the next message must be refused, not acknowledged.
    other = PLAIN.replace(b"plain-text.1@", b"after-outage@")

    assert_retry_later(post_relay(client, other))

    assert [row.message_id for row in inbound_rows()] == [PLAIN_ID]
    assert len(inbound_job_ids()) == 1


# ---------------------------------------------------------------- database


def test_database_unreachable_is_503_and_nothing_is_stored(app_config, tmp_path):
    from app import create_app

    down = create_app(
        {
            **app_config,
            "DATABASE_URL": f"postgresql://threadline:pw@127.0.0.1:{free_port()}/threadline",
            "INSTANCE_PATH": str(tmp_path / "db-down"),
        }
    )
    with down.app_context():
        response = post_relay(down.test_client(), PLAIN)

        assert_retry_later(response)
        assert "database" in response.get_data(as_text=True)
        assert stored_keys() == []
        assert inbound_job_ids() == []


def test_database_refusing_the_insert_is_503_and_the_stored_bytes_are_removed(app_config, tmp_path):
    """Storage works, the database is up but read-only: the commit fails after the bytes were
    written, so the answer is 503 and the orphaned object is deleted (nothing half-made)."""
    from sqlalchemy import create_engine

    from app import create_app
    from extensions import db

    path = tmp_path / "read-only.db"
    engine = create_engine(f"sqlite:///{path}")
    db.metadata.create_all(engine)
    engine.dispose()
    read_only = create_app(
        {
            **app_config,
            "DATABASE_URL": f"sqlite:///file:{path}?mode=ro&uri=true",
            "INSTANCE_PATH": str(tmp_path / "read-only"),
        }
    )
    with read_only.app_context():
        response = post_relay(read_only.test_client(), PLAIN)

        assert_retry_later(response)
        assert "recorded in the database" in response.get_data(as_text=True)
        assert inbound_rows() == []
        assert stored_keys() == []
        assert inbound_job_ids() == []
        db.engine.dispose()


# ---------------------------------------------------------------- Redis


def test_redis_down_still_acknowledges_and_the_sweep_enqueues_later(app, app_config):
    from app import create_app
    from extensions import db
    from jobs.sweeps import recover_inbound
    from models import utcnow

    redis_down = create_app({**app_config, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    with redis_down.app_context():
        response = post_relay(redis_down.test_client(), ISO)
        assert response.status_code == 204
        [row] = inbound_rows()
        assert row.status == "pending"
        assert stored_bytes(row) == ISO

    # Back on the real Redis: the message is safe but was never enqueued.
    job_id = f"process-inbound-{row.id}"
    assert not job_exists(job_id)
    assert inbound_job_ids() == []
    assert recover_inbound() == 0  # younger than the grace: its enqueue may be in flight
    assert inbound_job_ids() == []

    row = db.session.get(type(row), row.id)
    row.created_at = utcnow() - timedelta(minutes=2)
    db.session.commit()

    assert recover_inbound() == 1
    assert inbound_job_ids() == [job_id]
    recover_inbound()
    assert inbound_job_ids() == [job_id]  # already waiting: not enqueued twice
    assert job_exists(job_id)


def test_a_provider_retry_after_redis_returns_enqueues_the_pending_message(app, app_config):
    from app import create_app

    redis_down = create_app({**app_config, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    with redis_down.app_context():
        assert post_relay(redis_down.test_client(), PLAIN).status_code == 204
    assert inbound_job_ids() == []

    assert post_relay(app.test_client(), PLAIN).status_code == 204

    assert_received_once(PLAIN, "relay", PLAIN_ID)
