"""The inbox's auto-acknowledgement, through the real relay ingress, the inbound worker, the
outbound worker and a real SMTP server: sent on a new conversation with its variables
filled, marked Auto-Submitted, threaded so the customer's answer lands in the same
conversation; never to automatic or list mail or our own addresses; at most once per sender
within the window; only outside business hours when asked."""

from __future__ import annotations

import re
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest
from sqlalchemy import select, update

from extensions import db
from models import AutoAcknowledgement, Conversation, Inbox, Message, utcnow
from tests.conftest import global_smtp
from tests.integration import test_workspace
from tests.support.inbound import post_relay, work_inbound
from tests.support.workspace import acknowledging, activity, messages_of
from worker import build_worker

team = test_workspace.team
browser = test_workspace.browser
DOMAIN = "reply.example.com"
CARLA = "Carla Customer <carla@customer.example>"


@pytest.fixture
def app_config(app_config, smtp):
    return {**app_config, "MAILER_INBOUND_EMAIL_DOMAIN": DOMAIN, **global_smtp(smtp)}


@pytest.fixture
def ack(inbox):
    body = (
        "Hi {{contact.name}}, we have your message as #{{ conversation.number }} "
        "in {{inbox.name}}. {{ config }} stays as typed."
    )
    return acknowledging(inbox, body, window_minutes=60)


def receive(app, client, message_id, *, sender=CARLA, subject="Printer on fire", **headers):
    """One email through the relay ingress and the inbound job; returns its message row."""
    email = EmailMessage()
    email["From"], email["To"] = sender, headers.pop("to", "support@example.com")
    email["Subject"], email["Message-ID"] = subject, f"<{message_id}>"
    for name, value in headers.items():
        email[name.replace("_", "-")] = value
    email.set_content("Hello, please help.")
    post_relay(client, email.as_bytes())
    work_inbound(app)
    row = db.session.scalar(select(Message).where(Message.message_id == message_id))
    assert row is not None, "the inbound job did not store the message"
    return row


def acknowledgements(inbox_id=None) -> list[Message]:
    query = select(Message).where(Message.auto_flag == "acknowledgement")
    if inbox_id is not None:
        query = query.where(Message.inbox_id == inbox_id)
    return db.session.scalars(query.order_by(Message.id)).all()


def send_queued(app) -> None:
    build_worker(app, ["outbound"], simple=True).work(burst=True)


def test_a_new_conversation_is_acknowledged_and_the_answer_threads(
    app, client, smtp, ack, team, browser
):
    incoming = receive(app, client, "m1@customer.example")
    conversation = db.session.get(Conversation, incoming.conversation_id)
    [sent] = acknowledgements()
    assert sent.direction == "outgoing" and sent.sender_user_id is None
    assert sent.conversation_id == conversation.id
    assert sent.to_addresses.addresses() == ["carla@customer.example"]
    assert sent.text_body == (
        f"Hi Carla Customer, we have your message as #{conversation.display_number} "
        "in Support. {{ config }} stays as typed."
    )
    assert activity(conversation)[-1] == "Auto-acknowledgement sent to carla@customer.example"

    before = len(smtp.envelopes)
    send_queued(app)
    db.session.refresh(sent)
    assert sent.delivery_status == "sent", sent.delivery_error
    assert len(smtp.envelopes) == before + 1
    envelope = smtp.envelopes[-1]
    assert envelope.rcpt_tos == ["carla@customer.example"]
    mail = BytesParser(policy=policy.default).parsebytes(envelope.content)
    assert mail["Auto-Submitted"] == "auto-replied"
    assert mail["X-Auto-Response-Suppress"] == "All"
    assert str(mail["From"]) == "Support <support@example.com>"  # the inbox, no agent
    assert mail["Subject"] == "Re: Printer on fire"
    assert mail["In-Reply-To"] == "<m1@customer.example>"
    assert mail["Reply-To"] == f"reply+{conversation.token}@{DOMAIN}"
    assert mail["Message-ID"] == f"<{sent.message_id}>"
    assert sent.message_id == f"conversation/{conversation.token}/messages/{sent.id}@{DOMAIN}"
    assert f"#{conversation.display_number} in Support" in mail.get_body(("plain",)).get_content()

    # Carla answers the acknowledgement: her mail client replies to Reply-To, quoting it.
    answer = receive(
        app,
        client,
        "m2@customer.example",
        subject="Re: Printer on fire",
        to=f"reply+{conversation.token}@{DOMAIN}",
        In_Reply_To=f"<{sent.message_id}>",
        References=f"<m1@customer.example> <{sent.message_id}>",
    )
    assert answer.conversation_id == conversation.id
    assert len(acknowledgements()) == 1  # a reply in the conversation is not acknowledged

    browser.login(team.bob)
    html = browser.get(f"/conversations/{conversation.id}").get_data(as_text=True)
    assert "Automatic acknowledgement" in html
    assert 'class="badge solid msg-automatic"' in html
    assert "Former agent" not in html


def test_an_agent_reply_still_signs_with_the_agents_name_and_no_auto_headers(
    app, client, smtp, team
):
    from services.replies import create_reply

    incoming = receive(app, client, "m1@customer.example")
    conversation = db.session.get(Conversation, incoming.conversation_id)
    create_reply(conversation, team.bob, "On it.")
    send_queued(app)
    mail = BytesParser(policy=policy.default).parsebytes(smtp.envelopes[-1].content)
    assert str(mail["From"]) == "Bob Agent from Support <support@example.com>"
    assert mail["Auto-Submitted"] is None and mail["X-Auto-Response-Suppress"] is None


@pytest.mark.parametrize(
    ("sender", "headers", "why"),
    [
        (CARLA, {"Auto_Submitted": "auto-replied"}, "an auto-reply"),
        (CARLA, {"Auto_Submitted": "auto-generated"}, "Auto-Submitted mail"),
        (CARLA, {"X_Autoreply": "yes"}, "an out-of-office"),
        ("Mail Delivery System <MAILER-DAEMON@mx.customer.example>", {}, "a bounce"),
        (CARLA, {"Precedence": "bulk"}, "bulk mail"),
        (CARLA, {"List_Id": "Printers <printers.lists.customer.example>"}, "a list mail"),
        (CARLA, {"List_Unsubscribe": "<mailto:leave@lists.customer.example>"}, "a list mail"),
        ("Billing <billing@example.com>", {}, "another inbox's support address"),
        (f"Someone <whoever@{DOMAIN}>", {}, "an address at the inbound domain"),
    ],
)
def test_never_sent_to_automatic_or_list_mail_or_our_own_addresses(
    app, client, ack, sender, headers, why
):
    db.session.add(Inbox(name="Billing", support_address="billing@example.com"))
    db.session.commit()
    incoming = receive(app, client, "m1@customer.example", sender=sender, **headers)
    assert incoming.conversation.messages[0].id == incoming.id  # a new conversation
    assert acknowledgements() == [], why
    assert not any("acknowledgement" in line for line in activity(incoming.conversation))


def test_an_ordinary_sender_with_auto_submitted_no_is_acknowledged(app, client, ack):
    receive(app, client, "m1@customer.example", Auto_Submitted="no")
    assert len(acknowledgements()) == 1


def test_at_most_one_per_sender_within_the_window_and_again_after_it(app, client, ack):
    receive(app, client, "m1@customer.example", subject="Printer on fire")
    receive(app, client, "m2@customer.example", subject="Scanner on fire too")
    second = receive(app, client, "m3@customer.example", subject="Fax", sender="Dan <d@x.example>")
    conversations = {m.conversation_id for m in db.session.scalars(select(Message)) if m.contact_id}
    assert len(conversations) == 3  # three new conversations, Carla's two among them
    sent = acknowledgements()
    assert [str(m.to_addresses) for m in sent] == ["carla@customer.example", "d@x.example"]
    assert sent[1].conversation_id == second.conversation_id

    # An hour and a minute later, Carla's next new conversation is acknowledged again.
    db.session.execute(
        update(Message)
        .where(Message.id == sent[0].id)
        .values(created_at=utcnow() - timedelta(minutes=61))
    )
    db.session.commit()
    fourth = receive(app, client, "m4@customer.example", subject="Copier on fire")
    [*_, latest] = acknowledgements()
    assert latest.conversation_id == fourth.conversation_id
    assert latest.to_addresses.addresses() == ["carla@customer.example"]


def test_the_window_is_per_inbox(app, client, ack):
    billing = Inbox(name="Billing", support_address="billing@example.com")
    db.session.add(billing)
    db.session.flush()
    db.session.add(AutoAcknowledgement(inbox_id=billing.id, enabled=True, body="Billing got it"))
    db.session.commit()
    receive(app, client, "m1@customer.example")
    receive(app, client, "m2@customer.example", subject="Invoice", to="billing@example.com")
    assert [m.text_body for m in acknowledgements(billing.id)] == ["Billing got it"]
    assert len(acknowledgements(ack.inbox_id)) == 1


def test_outside_hours_only_within_and_outside_hours(app, client, ack, inbox):
    ack.outside_hours_only = True
    inbox.time_zone = "UTC"
    inbox.business_hours = {
        day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    }
    db.session.commit()
    receive(app, client, "m1@customer.example", subject="During hours")
    assert acknowledgements() == []

    today = utcnow().date()
    inbox.holidays = [(today + timedelta(days=d)).isoformat() for d in (-1, 0, 1)]
    db.session.commit()
    outside = receive(app, client, "m2@customer.example", subject="On a holiday")
    [sent] = acknowledgements()
    assert sent.conversation_id == outside.conversation_id


def test_not_sent_for_a_reply_in_an_existing_conversation(app, client, ack, inbox):
    ack.enabled = False
    db.session.commit()
    first = receive(app, client, "m1@customer.example")
    ack.enabled, ack.window_minutes = True, 0  # no window: only "new conversation" decides
    db.session.commit()
    reply = receive(
        app,
        client,
        "m2@customer.example",
        subject="Re: Printer on fire",
        In_Reply_To="<m1@customer.example>",
    )
    assert reply.conversation_id == first.conversation_id
    assert acknowledgements() == []


def test_a_disabled_acknowledgement_sends_nothing(app, client, ack):
    ack.enabled = False
    db.session.commit()
    receive(app, client, "m1@customer.example")
    assert acknowledgements() == []


def test_a_custom_subject_and_the_rule_activity_line(app, client, ack, smtp):
    from mail.parse import parse_email
    from services.automations import Effects, after_commit
    from services.automations.acknowledgement import acknowledge

    ack.enabled = False
    ack.subject = "We got it: #{{conversation.number}}"
    db.session.commit()
    incoming = receive(app, client, "m1@customer.example")
    conversation = incoming.conversation
    effects = Effects()
    parsed = parse_email(b"From: carla@customer.example\r\nSubject: x\r\n\r\nhi\r\n", 1000)
    assert acknowledge(incoming, conversation, parsed, effects, by_rule="VIP customers")
    db.session.commit()
    assert activity(conversation)[-1] == (
        "Rule 'VIP customers' sent the auto-acknowledgement to carla@customer.example"
    )
    [sent] = acknowledgements()
    assert effects.outgoing == [sent.id]
    assert sent.subject == f"We got it: #{conversation.display_number}"
    # Once within the window, a second rule's (or the inbox's own) goes nowhere.
    assert not acknowledge(incoming, conversation, parsed, Effects(), by_rule="Again")
    before = len(smtp.envelopes)
    after_commit(effects)  # as the delivery does once it has committed
    send_queued(app)
    assert len(smtp.envelopes) == before + 1
    mail = BytesParser(policy=policy.default).parsebytes(smtp.envelopes[-1].content)
    assert mail["Subject"] == f"We got it: #{conversation.display_number}"
    db.session.refresh(sent)
    assert messages_of(conversation, "outgoing") == [sent] and sent.delivery_status == "sent"


def test_the_thread_names_automatic_replies_and_rule_notes(app, client, team, browser):
    incoming = receive(app, client, "m1@customer.example")
    conversation = incoming.conversation
    common = {"conversation_id": conversation.id, "inbox_id": conversation.inbox_id}
    db.session.add_all(
        [
            Message(
                **common,
                direction="outgoing",
                auto_flag="saved_reply",
                text_body="Here is our manual.",
                to_addresses="carla@customer.example",
                delivery_status="sent",
            ),
            Message(**common, direction="note", from_name="Rule 'VIP'", text_body="Call her."),
            Message(**common, direction="note", text_body="Rule 'VIP' could not reach Ana."),
            Message(**common, direction="outgoing", text_body="Old", delivery_status="sent"),
        ]
    )
    db.session.commit()
    browser.login(team.bob)
    html = browser.get(f"/conversations/{conversation.id}").get_data(as_text=True)
    senders = [
        " ".join(s.split()) for s in re.findall(r'class="msg-sender">(.*?)</strong>', html, re.S)
    ]
    assert senders == [
        "Carla Customer &lt;carla@customer.example&gt;",
        "Automatic reply",
        "Automation",
        "Automation",
        "Former agent",  # an agent's reply whose agent was deleted, as before
    ]
    badges = re.findall(r'class="badge solid msg-automatic">(.*?)</span>', html)
    assert badges == ["automatic", "Rule &#39;VIP&#39;", "automatic"]  # a note names its rule


def test_list_headers_are_kept_on_the_parsed_email():
    from mail.parse import parse_email

    def parsed(headers: str):
        raw = f"From: a@b.example\r\nSubject: x\r\n{headers}\r\nhi\r\n".encode()
        return parse_email(raw, 1000)

    assert parsed("List-Id: Printers <printers.lists.example>\r\n").list_header == (
        "List-Id: Printers <printers.lists.example>"
    )
    assert parsed("List-Unsubscribe: <mailto:x@lists.example>\r\n").list_header == (
        "List-Unsubscribe: <mailto:x@lists.example>"
    )
    plain = parsed("")
    assert plain.list_header is None and plain.auto_flag is None


def test_not_sent_when_a_rule_marked_the_new_conversation_as_spam(app, client, ack, inbox):
    from models import AutomationRule

    db.session.add(
        AutomationRule(
            inbox_id=inbox.id,
            name="Casino",
            conditions=[{"field": "subject", "op": "contains", "value": "casino"}],
            actions=[{"type": "mark_spam"}],
        )
    )
    db.session.commit()
    spam = receive(app, client, "m1@customer.example", subject="Best casino bonus")
    assert "Rule 'Casino' marked this as spam" in activity(spam.conversation)
    assert acknowledgements() == []
    receive(app, client, "m2@customer.example", subject="Printer on fire")
    assert len(acknowledgements()) == 1
