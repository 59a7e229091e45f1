"""Raw email through the real ingress, a real Redis queue and a worker into conversations."""

import json
from datetime import timedelta

import pytest
from rq import Queue
from sqlalchemy import select

from extensions import db, get_redis, get_storage
from models import Contact, Conversation, InboundEmail, Message, utcnow
from tests.support.inbound import post_relay, work_inbound

DOMAIN = "reply.example.com"


@pytest.fixture
def app_config(app_config):
    return {**app_config, "MAILER_INBOUND_EMAIL_DOMAIN": DOMAIN}


def email(message_id="m1@customer.example", to="support@example.com", extra="", body="Hello"):
    return (
        f"From: Carla Customer <Carla@Customer.example>\r\nTo: {to}\r\n{extra}"
        f"Subject: Printer on fire\r\nMessage-ID: <{message_id}>\r\n\r\n{body}\r\n"
    ).encode()


post = post_relay
work = work_inbound


def only(model):
    return db.session.scalars(select(model)).one()


def test_new_email_becomes_a_conversation(app, client, inbox):
    post(client, email())
    work(app)
    inbound = only(InboundEmail)
    assert (inbound.status, inbound.reason, inbound.inbox_id) == ("delivered", None, inbox.id)
    assert inbound.processed_at is not None and inbound.attempts == 1
    conversation, message, contact = only(Conversation), only(Message), only(Contact)
    assert (contact.email, contact.name) == ("carla@customer.example", "Carla Customer")
    assert conversation.subject == "Printer on fire" and conversation.status == "open"
    assert conversation.display_number == 1 and conversation.contact_id == contact.id
    assert message.text_body.strip() == "Hello" and message.threaded_by == "new"
    assert message.message_id == "m1@customer.example" and message.direction == "incoming"


def test_plus_tags_and_case_do_not_hide_the_inbox(app, client, inbox):
    post(client, email(to="Support+urgent@Example.com"))
    work(app)
    assert only(InboundEmail).status == "delivered"


def test_forwarded_copy_matches_by_x_original_to(app, client, inbox):
    post(
        client,
        email(to="someone@elsewhere.example", extra="X-Original-To: support@example.com\r\n"),
    )
    work(app)
    assert only(InboundEmail).status == "delivered"


def test_generated_forwarding_address_matches(app, client, inbox):
    post(client, email(to=inbox.forwarding_address(DOMAIN)))
    work(app)
    assert only(Message).inbox_id == inbox.id


def test_an_inbox_known_at_receive_time_wins_over_the_headers(app, inbox):
    """IMAP polls one inbox's own mailbox: its mail belongs there even when To: names
    another inbox (or nothing we know)."""
    from ingress.receive import RawEmail, receive
    from models import Inbox

    sales = Inbox(name="Sales", support_address="sales@example.com")
    db.session.add(sales)
    db.session.commit()
    receive(RawEmail(email(to="support@example.com")), source="imap:2:INBOX", inbox_id=sales.id)
    receive(
        RawEmail(email("m2@customer.example", to="x@nowhere.example")), "imap:2:INBOX", sales.id
    )
    work(app)
    messages = db.session.scalars(select(Message)).all()
    assert [m.inbox_id for m in messages] == [sales.id, sales.id]
    assert {i.status for i in db.session.scalars(select(InboundEmail))} == {"delivered"}


def test_unroutable_mail_is_bounced_with_the_reason(app, client, inbox):
    post(client, email(to="nobody@example.org"))
    work(app)
    inbound = only(InboundEmail)
    assert inbound.status == "bounced"
    assert inbound.reason == "no inbox matches any recipient (nobody@example.org)"
    assert db.session.query(Message).count() == 0


def test_reply_token_in_cc_continues_and_reopens_the_conversation(app, client, inbox):
    post(client, email())
    work(app)
    conversation = only(Conversation)
    conversation.status = "resolved"
    db.session.commit()
    reply = email(
        message_id="m2@customer.example",
        to="someone@else.example",
        extra=f"Cc: reply+{conversation.token}@{DOMAIN}\r\n",
        body="Still burning",
    )
    post(client, reply)
    work(app)
    db.session.refresh(conversation)
    assert conversation.status == "open"
    messages = db.session.scalars(
        select(Message).where(Message.direction != "activity").order_by(Message.id)
    ).all()
    assert [m.threaded_by for m in messages] == ["new", "reply_token"]
    assert {m.conversation_id for m in messages} == {conversation.id}


def test_processing_twice_creates_nothing_new(app, client, inbox):
    from jobs.process_inbound import process_inbound_email

    post(client, email())
    work(app)
    inbound = only(InboundEmail)
    inbound.status = "pending"
    db.session.commit()
    assert process_inbound_email(inbound.id) == "delivered"
    assert db.session.query(Message).count() == 1
    assert db.session.query(Conversation).count() == 1


def test_same_message_id_with_different_bytes_is_one_message(app, client, inbox):
    post(client, email())
    post(client, email(extra="X-Forwarded-For: support@example.com\r\n"))  # a second route
    work(app)
    rows = db.session.scalars(select(InboundEmail).order_by(InboundEmail.id)).all()
    assert [r.status for r in rows] == ["delivered", "delivered"]
    assert rows[1].reason == "duplicate of a message already delivered"
    assert db.session.query(Message).count() == 1


def test_a_failure_is_recorded_with_its_reason_and_retried(app, client, inbox):
    post(client, email())
    inbound = only(InboundEmail)
    get_storage().delete(inbound.storage_key)  # the raw bytes vanished under us
    work(app)
    db.session.refresh(inbound)
    assert inbound.status == "failed"
    assert inbound.reason.startswith("ObjectNotFound")
    scheduled = Queue("inbound", connection=get_redis()).scheduled_job_registry
    assert f"process-inbound-{inbound.id}" in scheduled.get_job_ids()  # RQ retries later


def test_a_write_that_meets_another_workers_commit_is_delivered_again(
    app, client, inbox, monkeypatch
):
    """SQLite's "database is locked" at a stale snapshot is contention between workers: the
    delivery is rolled back and run again, once, not failed (jobs/process_inbound.py)."""
    from sqlalchemy.exc import OperationalError

    from jobs import process_inbound

    real, calls = process_inbound.deliver, []

    def meets_a_commit(row, raw):
        calls.append(row.id)
        if len(calls) == 1:
            db.session.add(Contact(email="half-written@customer.example", name="Half"))
            db.session.flush()  # a write of this attempt, which the rollback must undo
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        return real(row, raw)

    monkeypatch.setattr(process_inbound, "deliver", meets_a_commit)
    post(client, email())
    work(app)
    inbound = only(InboundEmail)
    assert (inbound.status, inbound.attempts, len(calls)) == ("delivered", 1, 2)
    assert only(Message).message_id == "m1@customer.example"
    assert [c.email for c in db.session.scalars(select(Contact))] == ["carla@customer.example"]


def test_a_delivery_writes_only_after_its_reads_storage_and_sanitising(
    app, client, inbox, monkeypatch
):
    """On SQLite the first write takes the database's write lock until the commit, and a
    second worker's delivery waits for it: a new contact is written only once everything
    that reads, stores the attachments and sanitises the content is done."""
    from sqlalchemy import event

    from services import inbound_delivery

    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args):
        statements.append(statement.lstrip().split(None, 1)[0].upper())

    real_put, real_build, writes_before = (
        inbound_delivery.put_attachments,
        inbound_delivery.build_content,
        [],
    )

    def put_attachments(parsed, inbound_email):
        writes_before.append(("store", _writes(statements)))
        return real_put(parsed, inbound_email)

    def build_content(parsed, urls):
        writes_before.append(("sanitise", _writes(statements)))
        return real_build(parsed, urls)

    monkeypatch.setattr(inbound_delivery, "put_attachments", put_attachments)
    monkeypatch.setattr(inbound_delivery, "build_content", build_content)
    attached = (
        'Content-Type: multipart/mixed; boundary="b"\r\n',
        "\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>Hello <b>there</b></p>\r\n"
        "--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; "
        'filename="a.pdf"\r\n\r\n%PDF-1.4\r\n--b--',
    )
    post(client, email(extra=attached[0], body=attached[1]))
    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        work(app)
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    assert only(InboundEmail).status == "delivered"
    assert only(Contact).email == "carla@customer.example"  # new: written in this delivery
    assert [a.filename for a in only(Message).attachments] == ["a.pdf"]
    # The claim (an UPDATE of the row, committed) comes first; nothing else before the work.
    assert writes_before == [("store", ["UPDATE"]), ("sanitise", ["UPDATE"])]


def test_a_delivery_reads_what_its_writes_consult_before_the_first_of_them(app, client, inbox):
    """The inbox's rules and acknowledgement settings and our own addresses are read before
    the delivery's first write (inside SQLite's write lock, every statement is time another
    worker waits), and a new conversation is written once, its activity time included."""
    from sqlalchemy import event

    from models import AutoAcknowledgement
    from services.labels import conversation_labels
    from tests.support.automations import rule

    rule(inbox)  # labels a new conversation "vip"
    db.session.add(AutoAcknowledgement(inbox_id=inbox.id, enabled=True, body="Got it"))
    db.session.commit()
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args):
        statements.append(" ".join(statement.split()))

    post(client, email())
    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        work(app)
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    conversation = only(Conversation)
    assert [label.name for label in conversation_labels(conversation.id)] == ["vip"]  # ran
    outgoing = select(Message).where(Message.direction == "outgoing")
    assert len(db.session.scalars(outgoing).all()) == 1  # and the acknowledgement
    kinds = [s.split(None, 1)[0].upper() for s in statements]
    claim = kinds.index("UPDATE")  # the claim, committed on its own
    first_write = next(
        n for n, kind in enumerate(kinds) if n > claim and kind in ("INSERT", "UPDATE", "SAVEPOINT")
    )
    read_first = ("FROM automation_rules", "FROM auto_acknowledgements", "FROM inboxes UNION ALL")
    for table in read_first:
        where = [n for n, s in enumerate(statements) if table in s]
        assert where and max(where) < first_write, (table, where, first_write)
    message_written = next(n for n, s in enumerate(statements) if "INTO messages" in s)
    assert not [s for s in statements[:message_written] if s.startswith("UPDATE conversations")]


def _writes(statements: list[str]) -> list[str]:
    return [s for s in statements if s in ("INSERT", "UPDATE", "DELETE")]


def test_the_message_and_its_outcome_commit_together(app, client, inbox, monkeypatch):
    """A worker lost between writing the message and recording the outcome leaves neither:
    the row is still the lease's, and the job run again delivers it once."""
    from jobs import process_inbound

    real = process_inbound.finish

    def lost_before_the_commit(kind, row_id, claim, **values):
        if values.get("status") == "delivered":
            raise RuntimeError("the worker was lost before its commit")
        return real(kind, row_id, claim, **values)

    monkeypatch.setattr(process_inbound, "finish", lost_before_the_commit)
    post(client, email())
    work(app)
    inbound = only(InboundEmail)
    assert inbound.status == "processing"
    assert db.session.scalars(select(Message)).all() == []
    assert db.session.scalars(select(Conversation)).all() == []
    monkeypatch.setattr(process_inbound, "finish", real)
    inbound.lease_expires_at = utcnow() - timedelta(seconds=1)  # as the sweep finds it
    db.session.commit()
    assert process_inbound.process_inbound_email(inbound.id) == "delivered"
    db.session.refresh(inbound)
    assert (inbound.status, inbound.attempts) == ("delivered", 2)
    assert only(Message).message_id == "m1@customer.example"


def test_only_the_delivery_commits_without_waiting_for_the_disk(app, client, inbox, monkeypatch):
    """Delivering an acknowledged message is redone from its stored copy if a power cut
    undoes it, so its commits do not wait for the disk; the connection it used is durable
    again for whoever takes it next (the acknowledgement, an agent's reply)."""
    from sqlalchemy import text

    from jobs import process_inbound

    sqlite = db.engine.dialect.name == "sqlite"
    setting = text("PRAGMA synchronous" if sqlite else "SHOW synchronous_commit")
    durable, relaxed = ("2", "1") if sqlite else ("on", "off")  # FULL, NORMAL / on, off
    real, seen = process_inbound.deliver, []

    def deliver(row, raw):
        seen.append(str(db.session.execute(setting).scalar()))
        return real(row, raw)

    monkeypatch.setattr(process_inbound, "deliver", deliver)
    post(client, email())
    work(app)
    assert only(InboundEmail).status == "delivered"
    assert seen == [relaxed]
    db.session.commit()
    for _ in range(3):  # whichever pooled connection comes next
        with db.engine.connect() as connection:
            assert str(connection.execute(setting).scalar()) == durable
    assert str(db.session.execute(setting).scalar()) == durable


def test_cli_list_show_and_reprocess(app, client, inbox, runner):
    post(client, email(to="nobody@example.org"))
    work(app)
    inbound = only(InboundEmail)

    listed = runner.invoke(args=["inbound", "list"])
    assert listed.exit_code == 0
    assert f"#{inbound.id}" in listed.output and "bounced" in listed.output
    assert "no inbox matches any recipient (nobody@example.org)" in listed.output
    as_json = json.loads(runner.invoke(args=["inbound", "list", "--json"]).output)
    assert as_json[0]["status"] == "bounced" and as_json[0]["source"] == "relay"
    filtered = runner.invoke(args=["inbound", "list", "--status", "delivered"])
    assert "No inbound email with status delivered." in filtered.output

    shown = runner.invoke(args=["inbound", "show", str(inbound.id)])
    assert shown.exit_code == 0 and "m1@customer.example" in shown.output
    missing = runner.invoke(args=["inbound", "show", "999999"])
    assert missing.exit_code == 1 and "no inbound email #999999" in missing.output

    # The admin fixes the inbox address, then reprocesses: the message now lands.
    inbox.support_address = "nobody@example.org"
    db.session.commit()
    result = runner.invoke(args=["inbound", "reprocess", str(inbound.id)])
    assert result.exit_code == 0, result.output
    work(app)
    db.session.refresh(inbound)
    assert inbound.status == "delivered" and inbound.attempts == 2
    shown = runner.invoke(args=["inbound", "show", str(inbound.id)])
    conversation = only(Conversation)
    assert f"conversation_id: {conversation.id}" in shown.output


def test_reprocess_after_retention_says_why_it_cannot(app, client, inbox, runner):
    post(client, email())
    inbound = only(InboundEmail)
    inbound.storage_key, inbound.processed_at = None, utcnow() - timedelta(days=40)
    db.session.commit()
    result = runner.invoke(args=["inbound", "reprocess", str(inbound.id)])
    assert result.exit_code == 1
    assert "deleted after the retention period" in result.output
