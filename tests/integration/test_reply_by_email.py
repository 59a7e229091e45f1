"""Answering a notification by email, through the relay ingress, the inbound job and real
SMTP: the agent's text reaches the customer threaded like any reply (quote and signature cut
off), "#note" makes a private note, anything doubtful is refused with its reason in the
Inbound log and posts nothing, an answer to a conversation that changed meanwhile is held as
a draft (and the agent told), and the same email processed twice posts once."""

from __future__ import annotations

import re
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from extensions import db, get_settings
from models import (
    Conversation,
    InboundEmail,
    InboxMember,
    Message,
    Notification,
    NotificationThread,
    utcnow,
)
from services import reply_drafts
from services.conversations import update_conversation
from services.inbound_reprocess import reprocess
from services.notifications.email import send_due_notification_emails
from services.notifications.reply_address import AgentReply, address_for, make_address
from services.notifications.reply_by_email import agent_text
from services.replies import create_reply
from tests.conftest import global_smtp
from tests.support.inbound import post_relay, work_inbound
from tests.support.workspace import Browser, deliver, make_team, messages_of
from worker import build_worker

DOMAIN = "reply.example.com"
DSN = Path(__file__).resolve().parents[1] / "fixtures" / "mail" / "dsn-bounce.eml"
QUOTED_NOTIFICATION = """
On Mon, 2 Mar 2026 at 14:00, Threadline <threadline@example.com> wrote:
> Carla Customer wrote in #1 Printer on fire:
> The printer is on fire.
>
> Answer this email to reply to the customer; start with #note for a private note.
"""


@pytest.fixture
def app_config(app_config, smtp):
    return {**app_config, "MAILER_INBOUND_EMAIL_DOMAIN": DOMAIN, **global_smtp(smtp)}


@pytest.fixture
def team(app, inbox, make_user):
    return make_team(inbox, make_user)


@pytest.fixture
def conv(app, client, team) -> Conversation:
    """Carla's conversation in Support, where Bob is a member."""
    return deliver(app, client, "m1@customer.example", "The printer is on fire.")


def newest(conversation: Conversation) -> int:
    return max(m.id for m in messages_of(conversation))


def answer(
    app,
    client,
    body: str,
    *,
    to: str,
    sender: str = "Bob Agent <bob@staff.example>",
    cc: str | None = None,
    headers: dict | None = None,
) -> InboundEmail:
    """The agent's mail client answering a notification: returns the processed row."""
    message = EmailMessage()
    message["From"], message["To"] = sender, to
    if cc:
        message["Cc"] = cc
    message["Subject"] = "Re: [#1] Printer on fire"
    message["Message-ID"] = f"<answer-{utcnow().timestamp()}@staff.example>"
    message["In-Reply-To"] = "<notification-1@threadline.example>"
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    post_relay(client, message.as_bytes())
    return processed(app, message["Message-ID"].strip("<>"))


def processed(app, message_id: str) -> InboundEmail:
    work_inbound(app)
    db.session.expire_all()
    return db.session.scalar(select(InboundEmail).where(InboundEmail.message_id == message_id))


def send_queued(app) -> None:
    build_worker(app, ["outbound"], simple=True).work(burst=True)


def parsed(envelope):
    return BytesParser(policy=policy.default).parsebytes(envelope.content)


def body_of(mail) -> str:
    return mail.get_body(("plain",)).get_content()


def message_count() -> int:
    return db.session.scalar(select(func.count(Message.id)))


def test_an_answer_reaches_the_customer_threaded_without_quote_or_signature(
    app, client, team, conv, smtp
):
    address = address_for(team.bob.id, conv.id, newest(conv))
    before = len(smtp.envelopes)
    row = answer(
        app,
        client,
        "Thanks Carla, a new fuser is on its way.\n\nBob\n\n-- \nBob Agent\nSupport team\n"
        + QUOTED_NOTIFICATION,
        to=address,
    )
    assert (row.status, row.inbox_id) == ("delivered", team.support.id)
    assert "posted as a reply to the customer" in row.reason
    [reply] = messages_of(conv, "outgoing")
    assert reply.sender_user_id == team.bob.id and reply.inbound_email_id == row.id
    assert reply.text_body == "Thanks Carla, a new fuser is on its way.\n\nBob"
    assert messages_of(conv, "incoming")[0].inbound_email_id != row.id
    assert db.session.scalar(select(func.count(Conversation.id))) == 1  # never a new one

    send_queued(app)
    db.session.refresh(reply)
    assert reply.delivery_status == "sent", reply.delivery_error
    [envelope] = smtp.envelopes[before:]
    mail = parsed(envelope)
    assert envelope.rcpt_tos == ["carla@customer.example"]
    assert envelope.mail_from == "support@example.com"
    assert str(mail["To"]) == "Carla Customer <carla@customer.example>"
    assert "Bob" in str(mail["From"]) and "support@example.com" in str(mail["From"])
    assert str(mail["In-Reply-To"]) == "<m1@customer.example>"
    assert "<m1@customer.example>" in str(mail["References"])
    assert str(mail["Reply-To"]) == f"reply+{conv.token}@{DOMAIN}"
    assert str(mail["Message-ID"]) == f"<{reply.message_id}>"
    text = body_of(mail)
    assert "a new fuser is on its way" in text
    assert "Support team" not in text and "wrote:" not in text and "on fire" not in text


def test_answering_the_real_notification_email_reaches_the_customer(app, client, team, conv, smtp):
    """The notification the sweep sends (Reply-To and MAIL FROM: Bob's reply address),
    answered top-posted as mail clients do, with the whole notification quoted."""
    update_conversation(conv, team.ana, assignee_id=team.bob.id)  # Bob hears of it by email
    db.session.execute(update(NotificationThread).values(due_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    before = len(smtp.envelopes)
    send_due_notification_emails()
    [envelope] = [e for e in smtp.envelopes[before:] if e.rcpt_tos == ["bob@staff.example"]]
    notification = parsed(envelope)
    address = notification["Reply-To"].addresses[0].addr_spec
    assert address.startswith("agent+") and envelope.mail_from == address
    quoted = "\n".join(f"> {line}".rstrip() for line in body_of(notification).splitlines())
    wrote = "On Mon, 2 Mar 2026 at 14:00, Threadline <threadline@example.com> wrote:"
    row = answer(app, client, f"Replacing the fuser today.\n\n{wrote}\n{quoted}\n", to=address)
    assert row.status == "delivered", row.reason
    [reply] = messages_of(conv, "outgoing")
    assert (reply.text_body, reply.sender_user_id) == ("Replacing the fuser today.", team.bob.id)
    before = len(smtp.envelopes)
    send_queued(app)
    [sent] = smtp.envelopes[before:]
    assert sent.rcpt_tos == ["carla@customer.example"]
    assert str(parsed(sent)["In-Reply-To"]) == "<m1@customer.example>"


def test_a_mobile_footer_is_cut_and_the_customers_cc_stays_in_cc(app, client, team, smtp):
    conv = deliver(
        app,
        client,
        "m2@customer.example",
        "Also my colleague.",
        to="support@example.com, Dan <dan@customer.example>",
    )
    address = address_for(team.bob.id, conv.id, newest(conv))
    answer(app, client, "On it.\n\nSent from my iPhone\n" + QUOTED_NOTIFICATION, to=address)
    [reply] = messages_of(conv, "outgoing")
    assert reply.text_body == "On it."
    assert reply.cc_addresses.addresses() == ["dan@customer.example"]  # as the composer prefills it
    before = len(smtp.envelopes)
    send_queued(app)
    [envelope] = smtp.envelopes[before:]
    assert sorted(envelope.rcpt_tos) == ["carla@customer.example", "dan@customer.example"]


def test_note_makes_a_private_note_that_is_never_sent_and_notifies_mentions(
    app, client, team, conv, smtp, make_user
):
    cleo = make_user(email="cleo@staff.example", name="Cleo Colleague")
    db.session.add(InboxMember(inbox_id=team.support.id, user_id=cleo.id))
    db.session.commit()
    address = address_for(team.bob.id, conv.id, newest(conv))
    before = len(smtp.envelopes)
    row = answer(
        app,
        client,
        "#Note\nCalled her: it was the toner. @Cleo Colleague can you send a new one?\n"
        + QUOTED_NOTIFICATION,
        to=address,
    )
    assert row.status == "delivered" and "private note" in row.reason
    [note] = messages_of(conv, "note")
    assert note.sender_user_id == team.bob.id
    assert note.text_body == (
        "Called her: it was the toner. @Cleo Colleague can you send a new one?"
    )
    assert messages_of(conv, "outgoing") == []
    send_queued(app)
    assert len(smtp.envelopes) == before  # a note is never emailed
    mention = db.session.scalar(select(Notification).where(Notification.user_id == cleo.id))
    assert mention is not None and mention.event == "mention"
    assert (mention.actor_id, mention.message_id) == (team.bob.id, note.id)


def tampered(address: str) -> str:
    local, domain = address.split("@")
    payload, signature = local.split(".")
    return f"{payload}.{'a' * 16 if signature != 'a' * 16 else 'b' * 16}@{domain}"


def expired(team, conv) -> str:
    settings = get_settings()
    day = utcnow().date() - timedelta(days=31)
    reply = AgentReply(team.bob.id, conv.id, newest(conv))
    return make_address(reply, settings.secret_key, settings.inbound_domain, on=day)


@pytest.mark.parametrize(
    "case, reason",
    [
        ("forged", "forged agent reply address"),
        ("another agent's id", "forged agent reply address"),
        ("expired", "expired agent reply address"),
        ("wrong sender", "wrong sender: mallory@evil.example is not Bob Agent's address"),
        ("deactivated", "Bob Agent is deactivated"),
        ("no longer a member", "Bob Agent no longer has access to the Support inbox"),
        ("empty", "empty reply"),
    ],
)
def test_a_doubtful_answer_is_refused_with_its_reason_and_posts_nothing(
    app, client, team, conv, smtp, case, reason
):
    address = address_for(team.bob.id, conv.id, newest(conv))
    sender, body = "Bob Agent <BOB@staff.example>", "Please refund her.\n"
    if case == "forged":
        address = tampered(address)
    elif case == "another agent's id":
        local, domain = address.split("@")
        user, rest = local.removeprefix("agent+").split("-", 1)
        address = f"agent+{int(user, 36) + 1}-{rest}@{domain}"
    elif case == "expired":
        address = expired(team, conv)
    elif case == "wrong sender":
        sender = "Bob Agent <mallory@evil.example>"
    elif case == "deactivated":
        team.bob.active = False
    elif case == "no longer a member":
        db.session.delete(db.session.get(InboxMember, (team.support.id, team.bob.id)))
    elif case == "empty":
        body = "\n-- \nBob Agent\n" + QUOTED_NOTIFICATION
    db.session.commit()
    messages, before = message_count(), len(smtp.envelopes)
    # The support address in CC changes nothing: it is the agent's answer, not a customer's.
    row = answer(app, client, body, to=address, sender=sender, cc="support@example.com")
    assert row.status == "refused"
    assert reason in row.reason
    assert message_count() == messages
    assert db.session.scalar(select(func.count(Conversation.id))) == 1
    send_queued(app)
    assert len(smtp.envelopes) == before


def test_an_auto_reply_or_bounce_to_a_notification_is_refused_and_answered_by_nothing(
    app, client, team, conv, smtp
):
    address = address_for(team.bob.id, conv.id, newest(conv))
    messages, before = message_count(), len(smtp.envelopes)
    notifications = db.session.scalar(select(func.count(Notification.id)))
    away = answer(
        app,
        client,
        "I am out of the office until Monday.\n",
        to=address,
        headers={"Auto-Submitted": "auto-replied"},
    )
    assert away.status == "refused"
    assert away.reason == "auto-reply to a notification (Auto-Submitted: auto-replied)"
    raw = DSN.read_bytes().replace(b"support@example.com\r\n", address.encode() + b"\r\n", 2)
    raw = raw.replace(b"<20250120120002", b"<bounce-of-a-notification", 1)
    post_relay(client, raw)
    bounce = processed(app, "bounce-of-a-notification.4YY1L02rAiz9sRV@mx.customer.example")
    assert bounce.status == "refused"
    assert bounce.reason.startswith("a notification bounced: ")
    assert "User unknown" in bounce.reason
    send_queued(app)
    assert len(smtp.envelopes) == before  # nobody is told: nothing can loop
    assert message_count() == messages
    assert db.session.scalar(select(func.count(Notification.id))) == notifications


@pytest.mark.parametrize("change", ["customer", "colleague"])
def test_an_answer_to_a_changed_conversation_is_held_as_a_draft_and_the_agent_told(
    app, client, team, conv, smtp, change
):
    address = address_for(team.bob.id, conv.id, newest(conv))
    if change == "customer":
        deliver(app, client, "m3@customer.example", "Never mind, it works.",
                in_reply_to="m1@customer.example")  # fmt: skip
        why = "Carla Customer wrote again at "
    else:
        create_reply(conv, team.ana, "Ana here: already sent a technician.")
        why = "Ana Admin replied at "
    outgoing = len(messages_of(conv, "outgoing"))
    send_queued(app)
    before = len(smtp.envelopes)
    row = answer(app, client, "Sending a new fuser.\n" + QUOTED_NOTIFICATION, to=address)
    assert row.status == "delivered"
    assert row.reason.startswith("held as a draft: " + why)
    assert len(messages_of(conv, "outgoing")) == outgoing  # not sent
    draft = reply_drafts.get(conv.id, team.bob.id)
    assert (draft.kind, draft.text) == ("reply", "Sending a new fuser.")

    send_queued(app)
    [envelope] = smtp.envelopes[before:]
    assert envelope.rcpt_tos == ["bob@staff.example"]
    told = parsed(envelope)
    assert str(told["Subject"]) == "Not sent: your reply to [#1] Printer on fire"
    assert str(told["Auto-Submitted"]) == "auto-generated"
    text = body_of(told)
    assert re.search(re.escape(why) + r"\d\d:\d\d", text)
    assert f"http://localhost/conversations/{conv.id}" in text
    assert "> Sending a new fuser." in text


def test_the_agents_own_later_reply_does_not_hold_the_answer(app, client, team, conv):
    address = address_for(team.bob.id, conv.id, newest(conv))
    create_reply(conv, team.bob, "First answer from the workspace.")
    row = answer(app, client, "And a second one by email.\n", to=address)
    assert row.status == "delivered" and not row.reason.startswith("held")
    assert [m.text_body for m in messages_of(conv, "outgoing")] == [
        "First answer from the workspace.",
        "And a second one by email.",
    ]


def test_processing_the_same_answer_twice_posts_it_once(app, client, team, conv, smtp):
    address = address_for(team.bob.id, conv.id, newest(conv))
    row = answer(app, client, "Only once, please.\n", to=address)
    assert row.status == "delivered"
    reprocess(row)  # as an admin's "Reprocess" (or a job retried after its work was done)
    again = processed(app, row.message_id)
    assert (again.status, again.reason) == ("delivered", "duplicate of a message already delivered")
    assert [m.text_body for m in messages_of(conv, "outgoing")] == ["Only once, please."]
    before = len(smtp.envelopes)
    send_queued(app)
    assert len(smtp.envelopes) == before + 1


def test_the_inbound_log_shows_and_filters_refused_mail_with_its_reason(
    app, client, auth, team, conv
):
    address = address_for(team.bob.id, conv.id, newest(conv))
    row = answer(app, client, "Refund her.\n", to=address, sender="mallory@evil.example")
    admin = Browser(client, auth).login(team.ana)
    page = admin.get("/admin/inbound?status=refused").get_data(as_text=True)
    assert re.search(r'value="refused" checked> Refused <span class="count">1</span>', page)
    listed = re.findall(r'<tr id="inbound-(\d+)"', page)
    assert listed == [str(row.id)]
    html = re.search(rf'<tr id="inbound-{row.id}".*?</tr>', page, re.S).group(0)
    assert '<span class="badge status refused">refused</span>' in html
    assert "wrong sender: mallory@evil.example is not Bob Agent&#39;s address" in html
    found = admin.get("/admin/inbound?q=wrong+sender").get_data(as_text=True)
    assert re.findall(r'<tr id="inbound-(\d+)"', found) == [str(row.id)]


OUTLOOK_QUOTE = """
________________________________
From: Threadline <threadline@example.com>
Sent: Monday, March 2, 2026 14:00
To: Bob Agent <bob@staff.example>
Subject: [#1] Printer on fire

Carla Customer wrote: The printer is on fire.
"""


@pytest.mark.parametrize(
    "typed, kept",
    [
        ("Done.\n" + QUOTED_NOTIFICATION, "Done."),
        ("Done.\r\n\r\nBob\r\n" + OUTLOOK_QUOTE.replace("\n", "\r\n"), "Done.\n\nBob"),
        ("Done.\n\n-- \nBob Agent\n+1 555 0100\n", "Done."),
        ("Done.\n--\nBob Agent\n", "Done."),
        ("-- \nBob Agent\n" + QUOTED_NOTIFICATION, ""),
        ("Done.\n\nSent from my iPhone\n" + QUOTED_NOTIFICATION, "Done."),
        ("Done.\n\nGet Outlook for iOS\n" + OUTLOOK_QUOTE, "Done."),
        ("Erledigt.\n\nVon meinem iPhone gesendet\n", "Erledigt."),
        ("C'est fait.\n\nEnvoyé de mon iPad", "C'est fait."),
        ("Done.\n\nSent from my Samsung Galaxy smartphone.\n-- \nBob\n", "Done."),
        # What reads like a sentence stays: only a device or app makes a footer.
        ("The parcel was sent.\nSent from our warehouse in Leeds.", None),
        ("Get the driver from the site.", None),
        ("Use the new cartridge -- not the old one.", None),
    ],
)
def test_the_agents_text_loses_the_quoted_notification_and_the_signature(typed, kept):
    assert agent_text(typed) == (typed.strip() if kept is None else kept)
