"""IMAP/SMTP mode the way an admin and an agent meet it, with real servers only.

An admin creates an IMAP inbox in the wizard (a live Dovecot mailbox and a real aiosmtpd
server), sends the test email from step 7; the "mail provider" puts what the SMTP server
accepted into the mailbox; the scheduler's periodic job queues a poll, a worker imports it
and the step-7 page links to the new conversation. Then a customer writes, the agent answers
from the workspace, and the reply leaves through the inbox's own SMTP server.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from extensions import db
from jobs.imap_poll import enqueue_due_imap_polls
from models import Conversation, ImapSettings, InboundEmail, Message
from tests.conftest import csrf_token_from
from tests.integration.test_inbox_wizard import (
    IDENTITY,
    Wizard,
    imap_fields,
    location,
    smtp_fields,
    text,
)
from tests.support.smtp_server import running_smtp_server
from tests.support.workspace import Browser
from worker import build_worker

DOMAIN = "in.example.com"


@pytest.fixture
def app_config(app_config):
    return {**app_config, "MAILER_INBOUND_EMAIL_DOMAIN": DOMAIN}


@pytest.fixture
def smtp():
    with running_smtp_server("agent", "smtp-secret") as server:
        yield server


def run_scheduler_tick_and_workers(app) -> None:
    """What `python worker.py --cron` and the workers do: queue due polls, run them, then
    process what they imported."""
    with app.app_context():
        enqueue_due_imap_polls()
    build_worker(app, ["default", "inbound"], simple=True).work(burst=True)


def test_imap_inbox_from_wizard_to_a_customer_answered_over_its_own_smtp(
    app, client, auth, make_user, dovecot, imap_account, smtp
):
    username, password = imap_account
    admin = make_user(email="root@example.com", name="Rita Admin", role="admin")
    auth.login(admin.email, admin.plain_password)
    csrf = csrf_token_from(client.get("/admin/inboxes").get_data(as_text=True))
    wizard = Wizard(client, csrf)
    location(wizard.post("name", {"name": "Help", "support_address": "help@example.com"}))
    location(wizard.post("mode", {"mode": "imap"}))
    fields = {**imap_fields(dovecot, username, password), **smtp_fields(smtp)}
    assert location(wizard.post("connection", fields)).endswith("/identity")
    location(wizard.post("identity", IDENTITY))
    test_page = location(wizard.post("agents", {"agents": str(admin.id)}))
    assert re.search(r"/admin/inboxes/\d+/test$", test_page)

    # Step 7: the test email goes out through the inbox's SMTP server...
    response = client.post(test_page + "/send", data={"csrf_token": csrf})
    assert response.status_code == 200, text(response)
    poll = re.search(r'hx-get="(/admin/inboxes/\d+/test/[^"]+)"', text(response)).group(1)
    envelope = smtp.wait_for_messages(1)[0]
    assert envelope.rcpt_tos == ["help@example.com"]
    # ...and the provider files it in the mailbox that Threadline polls.
    dovecot.deliver(username, envelope.content)
    assert "every 2s" in text(client.get(poll))  # nothing imported yet
    run_scheduler_tick_and_workers(app)
    done = text(client.get(poll))
    link = re.search(r'href="/conversations/(\d+)">Open conversation #\d+', done)
    assert link, done
    inbound = db.session.scalars(select(InboundEmail)).one()
    assert inbound.source.startswith("imap:") and inbound.status == "delivered"

    # A customer writes to the support address; it lands in the same mailbox.
    customer = (
        b"From: Carla Customer <carla@customer.example>\r\nTo: help@example.com\r\n"
        b"Subject: Order 77\r\nMessage-ID: <order77@customer.example>\r\n\r\n"
        b"Where is my order?\r\n"
    )
    dovecot.deliver(username, customer)
    run_scheduler_tick_and_workers(app)  # not due yet: the poll interval has not passed
    assert db.session.scalar(select(Message).where(Message.subject == "Order 77")) is None
    db.session.scalars(select(ImapSettings)).one().next_poll_at = None  # the interval passed
    db.session.commit()
    run_scheduler_tick_and_workers(app)
    message = db.session.scalar(select(Message).where(Message.subject == "Order 77"))
    assert message is not None and message.threaded_by == "new"
    conversation = db.session.get(Conversation, message.conversation_id)

    # The agent answers from the workspace; the reply leaves through the inbox's SMTP.
    browser = Browser(client, auth)
    browser.token = csrf
    response = browser.post(f"/conversations/{conversation.id}/reply", {"text": "On its way!"})
    assert response.status_code == 200
    build_worker(app, ["outbound"], simple=True).work(burst=True)
    sent = smtp.wait_for_messages(2)[1]
    assert sent.rcpt_tos == ["carla@customer.example"] and b"On its way!" in sent.content
    # The inbox's own credentials each time: the wizard's check, the test email, the reply.
    assert smtp.logins == ["agent", "agent", "agent"]
    # The original stays unread in the mailbox: Threadline only peeked.
    with dovecot.client(username, password) as imap:
        imap.select_folder("INBOX", readonly=True)
        flags = imap.get_flags(imap.search("ALL"))
    assert all(b"\\Seen" not in f for f in flags.values()), flags
