"""The ingress acknowledgement's cost and its guarantees under the cheaper path (issue 20):
a new message is one INSERT … ON CONFLICT DO NOTHING RETURNING, no lookup before it; a
duplicate is still one row and one job, also when posted concurrently, also when its raw
copy was incinerated; the duplicate path leaves no SQLite write lock behind. Real SQLite (or
PostgreSQL), real Redis, real local disk."""

from __future__ import annotations

import hashlib
import sqlite3
import threading

import pytest
from sqlalchemy import event, select

from extensions import db
from tests.support.ingress_requests import (
    RELAY_URL,
    assert_received_once,
    basic_auth,
    inbound_job_ids,
    inbound_rows,
    load_fixture,
    stored_keys,
)
from tests.support.statements import sql_statements

PLAIN = load_fixture("plain-text.eml")
DOMAIN = "customer.example.com"
PLAIN_ID = "plain-text.1@" + DOMAIN


def post_relay(client, raw: bytes):
    return client.post(RELAY_URL, data=raw, content_type="message/rfc822", headers=basic_auth())


def another(raw: bytes, n: int) -> bytes:
    return raw.replace(b"plain-text.1@", f"plain-text.{n}.other@".encode())


# ---------------------------------------------------------------- the cost of one message


def test_a_new_message_is_one_insert_with_no_lookup_before_it(client):
    assert post_relay(client, PLAIN).status_code == 204  # warm: the pool's first connect

    with sql_statements() as statements:
        assert post_relay(client, another(PLAIN, 2)).status_code == 204

    touching = [s for s in statements if "inbound_emails" in s]
    assert len(touching) == 1, touching
    [insert] = touching
    assert insert.startswith("INSERT INTO inbound_emails")
    assert "ON CONFLICT (message_id, checksum) DO NOTHING" in insert
    # PostgreSQL returns the id; SQLite's is the cursor's lastrowid (see the next test).
    assert ("RETURNING" in insert) == (db.engine.dialect.name == "postgresql")
    assert [row.message_id for row in inbound_rows()] == [PLAIN_ID, "plain-text.2.other@" + DOMAIN]


def test_on_sqlite_a_web_request_commits_the_insert_as_it_runs(client):
    """Autocommit: the write lock is not held from the INSERT until a later COMMIT. Seen from
    another connection the moment the statement returns, before receive() commits."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite only: PostgreSQL has no database-wide write lock")
    seen = []

    def look(_conn, _cursor, statement, *_args):
        if statement.startswith("INSERT INTO inbound_emails"):
            with sqlite3.connect(db.engine.url.database, timeout=0) as other:
                seen.append(other.execute("SELECT count(*) FROM inbound_emails").fetchone()[0])
                other.execute("BEGIN IMMEDIATE")  # "database is locked" if the INSERT held it
                other.rollback()
            other.close()

    event.listen(db.engine, "after_cursor_execute", look)
    try:
        assert post_relay(client, PLAIN).status_code == 204
    finally:
        event.remove(db.engine, "after_cursor_execute", look)

    assert seen == [1]
    assert len(inbound_rows()) == 1


def test_a_new_message_is_queued_once_with_its_options(client):
    from rq.job import Job

    from extensions import get_redis

    assert post_relay(client, PLAIN).status_code == 204

    [row] = inbound_rows()
    job = Job.fetch(f"process-inbound-{row.id}", connection=get_redis())
    assert job.func_name == "jobs.process_inbound.process_inbound_email"
    assert job.args == (row.id,)
    assert (job.timeout, job.result_ttl, job.failure_ttl) == (300, 3600, 7 * 24 * 3600)
    assert (job.retries_left, job.retry_intervals) == (3, [10, 60, 300])
    assert job.get_status() == "queued"
    assert inbound_job_ids() == [job.id]


def test_a_new_message_is_one_redis_command_once_its_queue_is_listed(client):
    """RQ lists every queue it enqueues on in `rq:queues` (what `rq info` shows): in a round
    trip of its own before a unique enqueue's script. Once per process is enough."""
    from extensions import get_redis

    redis = get_redis()
    assert post_relay(client, PLAIN).status_code == 204
    assert redis.smembers("rq:queues") == {b"rq:queue:inbound"}

    redis.config_resetstat()
    assert post_relay(client, another(PLAIN, 2)).status_code == 204
    commands = {
        name.removeprefix("cmdstat_"): stats["calls"]
        for name, stats in redis.info("commandstats").items()
    }
    # The unique enqueue's script (the commands it runs inside count too), and no
    # MULTI / SADD / EXEC round trip before it.
    assert commands["evalsha"] == 1, commands
    assert not {"multi", "sadd", "exec"} & set(commands), commands
    assert len(inbound_job_ids()) == 2


def test_a_job_left_under_the_same_id_that_will_not_run_is_replaced_once(client):
    """A record of the id that is in no queue (its worker died after popping it, or the
    database handed the id out again): the atomic "only if none" finds it, so the job is
    queued over it, and queuing again finds it waiting."""
    from extensions import get_redis
    from ingress.receive import enqueue_job

    assert post_relay(client, PLAIN).status_code == 204
    [row] = inbound_rows()
    job_id = f"process-inbound-{row.id}"
    get_redis().delete("rq:queue:inbound")  # popped by a worker that died: queued, in no list

    assert enqueue_job(row.id) is True
    assert inbound_job_ids() == [job_id]
    assert enqueue_job(row.id) is True
    assert inbound_job_ids() == [job_id]


HEADS = [
    b"Subject: a\r\nMessage-ID: <crlf@x>\r\n\r\nMessage-ID: <body@x>\r\n",
    b"Subject: a\nMessage-ID: <lf@x>\n\nFrom: body@x\n",
    b"Subject: a\rMessage-ID: <cr@x>\r\rFrom: body@x\r",
    b"Subject: a\r\n\rMessage-ID: <after-a-lone-cr-line@x>\n\nx",
    b"\nMessage-ID: <no-headers@x>\n\nFrom: body@x\n",
    b"Subject: folded\n  over two lines\nFrom: =?utf-8?q?Zo=C3=AB?= <z@x>\nTo: t@x\n\nbody",
    b"Subject: not a header next\nthis line ends the block\nMessage-ID: <late@x>\n\n",
    b"Subject: no body at all\nMessage-ID: <nobody@x>\n",
]


def test_the_header_block_reads_the_same_cut_at_its_first_empty_line():
    """read_head parses only up to the first empty line; what it finds must be what a parse
    of the whole message finds, for every line ending the email parser accepts."""
    from email.parser import BytesHeaderParser
    from email.policy import compat32

    from ingress.receive import message_id_from, read_head
    from mail.summary import summary_of
    from tests.support.ingress_requests import FIXTURES

    fixtures = [path.read_bytes() for path in sorted(FIXTURES.glob("*.eml"))]
    assert fixtures
    for raw in HEADS + fixtures:
        whole = BytesHeaderParser(policy=compat32).parsebytes(raw)
        assert read_head(raw, "c" * 40) == (message_id_from(whole, "c" * 40), summary_of(whole))
    assert read_head(HEADS[0], "c" * 40)[0] == "crlf@x"
    assert read_head(HEADS[4], "c" * 40)[0] == "c" * 40 + "@generated.threadline.invalid"


# ---------------------------------------------------------------- duplicates


def test_the_same_message_posted_concurrently_is_one_row_and_one_job(app):
    from ingress import RawEmail
    from ingress.receive import receive

    posts = 6
    start = threading.Barrier(posts)
    results, errors = [], []

    def post() -> None:
        with app.app_context():
            try:
                start.wait()
                received = receive(RawEmail(PLAIN), source="relay")
                results.append((received.inbound_email_id, received.duplicate))
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=post) for _ in range(posts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    row = assert_received_once(PLAIN, "relay", PLAIN_ID)  # one row, one job, bytes whole
    assert sorted(results) == [(row.id, False)] + [(row.id, True)] * (posts - 1)


def test_a_duplicate_of_an_incinerated_message_leaves_no_copy_and_no_job(client):
    from extensions import get_redis, get_storage
    from models import utcnow

    assert post_relay(client, PLAIN).status_code == 204
    [row] = inbound_rows()
    # What the worker and the incinerator leave: delivered, its job done, the raw copy gone.
    get_redis().flushdb()
    get_storage().delete(row.storage_key)
    row.status, row.storage_key, row.incinerated_at = "delivered", None, utcnow()
    db.session.commit()

    assert post_relay(client, PLAIN).status_code == 204

    [again] = inbound_rows()
    assert (again.id, again.status, again.storage_key) == (row.id, "delivered", None)
    assert stored_keys() == []  # the bytes written before the INSERT found the row: removed
    assert inbound_job_ids() == []


def test_received_loads_the_row_for_a_caller_that_asks(app):
    from ingress import RawEmail
    from ingress.receive import receive

    first = receive(RawEmail(PLAIN), source="relay")
    again = receive(RawEmail(PLAIN), source="relay")

    assert (first.duplicate, again.duplicate) == (False, True)
    assert first.inbound_email_id == again.inbound_email_id
    row = first.inbound_email
    assert (row.id, row.status, row.message_id) == (first.inbound_email_id, "pending", PLAIN_ID)
    assert row.checksum == hashlib.sha1(PLAIN).hexdigest()
    assert (first.enqueued, again.enqueued) == (True, True)  # again: its job already waits
    assert len(inbound_job_ids()) == 1


def test_a_duplicate_ends_its_transaction_and_keeps_what_the_caller_had_pending(app):
    """An IMAP import moves last_uid on in the session and lets the next message's commit
    carry it; a duplicate must not roll that back, nor keep SQLite's write lock taken."""
    from ingress import RawEmail
    from ingress.receive import receive
    from models import Inbox

    receive(RawEmail(PLAIN), source="relay")
    inbox = Inbox(name="Pending", support_address="pending@example.com")
    db.session.add(inbox)  # pending in the caller's session, not yet committed

    assert receive(RawEmail(PLAIN), source="relay").duplicate

    db.session.expunge_all()
    committed = db.session.scalar(select(Inbox).where(Inbox.name == "Pending"))
    assert committed is not None  # committed with the statement, not rolled back
    if db.engine.dialect.name != "sqlite":
        return
    path = db.engine.url.database
    other = sqlite3.connect(path, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")  # fails at once while another writer holds the lock
        other.rollback()
    finally:
        other.close()
