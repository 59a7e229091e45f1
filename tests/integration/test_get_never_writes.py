"""GET never writes: every page, partial and poll an admin can open, with and without htmx,
leaves the database as it was. Reading a thread marks it read only through its POST.

The one write a GET may cause is the signed-in session's own bookkeeping (user_sessions:
last seen, sliding expiry), which is what keeps an idle session ending when it should; it
is written at most once a minute and is not product data. Presence lives in Redis. One
route is exempt by name: the OAuth callback, which providers can only reach with a GET.
"""

from __future__ import annotations

import re
from email.message import EmailMessage

import pytest
from sqlalchemy import event, select

from extensions import db
from models import Attachment, AutomationRule, InboundEmail, Message, SavedReply
from services.replies import create_reply
from tests.conftest import csrf_token_from
from tests.support.inbound import post_relay, work_inbound
from tests.support.workspace import HX, make_team

WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)
SESSION_BOOKKEEPING = re.compile(r"^\s*UPDATE\s+\"?user_sessions\"?\s", re.IGNORECASE)
SKIPPED_PREFIXES = ("/api/", "/rails/", "/static/")
# The one GET that writes: the identity provider sends the admin back to it with a GET, and
# it stores the tokens (blueprints/inboxes/oauth.py); tests/integration/test_oauth_connect.py.
WRITING_GETS = {"inboxes.oauth_callback"}


def seeded_mail(client, app) -> Message:
    message = EmailMessage()
    message["From"], message["To"] = "Dora <dora@customer.example>", "support@example.com"
    message["Subject"], message["Message-ID"] = "Screenshot", "<shot@customer.example>"
    message.set_content("The screen looks like this.")
    message.add_attachment(b"log line\n", maintype="text", subtype="plain", filename="a.log")
    post_relay(client, message.as_bytes())
    work_inbound(app)
    return db.session.scalar(select(Message).where(Message.message_id == "shot@customer.example"))


@pytest.fixture
def urls(app, client, auth, inbox, make_user):
    """Every GET route with its parameters filled from real rows, signed in as an admin."""
    team = make_team(inbox, make_user)
    mail = seeded_mail(client, app)
    reply = create_reply(mail.conversation, team.bob, "Here is what to do.")
    auth.login(team.ana.email, team.ana.plain_password)
    token = csrf_token_from(client.get("/").get_data(as_text=True))
    started = client.post(
        "/admin/inboxes/new",
        data={"name": "Sales", "support_address": "sales@example.com", "csrf_token": token},
    )
    assert started.status_code == 303, "the wizard's first step creates the draft"
    draft_id = started.headers["Location"].rstrip("/").split("/")[-2]
    saved = SavedReply(name="Thanks", body="Thanks, {{contact.first_name}}!")
    rule = AutomationRule(inbox_id=inbox.id, name="VIP", conditions=[], actions=[])
    db.session.add_all([saved, rule])
    db.session.commit()
    values = {
        "conversation_id": mail.conversation_id,
        "message_pk": reply.id,
        "attachment_id": db.session.scalar(select(Attachment.id)),
        "contact_id": mail.conversation.contact_id,
        "inbox_id": inbox.id,
        "user_id": team.bob.id,
        "inbound_id": db.session.scalar(select(InboundEmail.id)),
        "draft_id": draft_id,
        "step": "mode",
        "token": "no-such-token",
        "job_id": "no-such-job",
        "reply_id": saved.id,
        "rule_id": rule.id,
    }
    found = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.rule.startswith(SKIPPED_PREFIXES):
            continue
        if rule.endpoint in WRITING_GETS:
            continue
        path = rule.rule
        for name in rule.arguments:
            path = re.sub(rf"<(?:\w+:)?{name}>", str(values[name]), path)
        found.append(path)
    return sorted(found)


def test_no_get_writes_to_the_database(app, client, urls):
    writes: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if WRITE.match(statement) and not SESSION_BOOKKEEPING.match(statement):
            writes.append(statement.split("\n")[0][:120])

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        answered = {}
        for path in urls:
            for headers in ({}, HX):
                before = len(writes)
                response = client.get(path, headers=headers)
                response.get_data()  # a streamed download runs to its end
                response.close()
                answered[path] = response.status_code
                assert response.status_code < 500, f"GET {path} failed"
                assert len(writes) == before, f"GET {path} {headers} wrote: {writes[before:]}"
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    # The crawl reached the pages that used to write: the thread, its poll, the wizard.
    conversation = [p for p in urls if re.fullmatch(r"/conversations/\d+", p)]
    assert conversation and answered[conversation[0]] == 200
    assert answered["/admin/inboxes/new"] == 200
    assert len(urls) >= 25
