"""Forwarding to a third party, through the composer's Forward tab, the real send job and SMTP
server, and the relay ingress: the forward carries the note, the forwarded email and its
attachment, and its own reply address; the third party's answer comes back into the same
conversation marked as theirs, without acknowledging the customer; answering them from the
thread goes to them alone."""

from __future__ import annotations

import re
from datetime import timedelta
from email import policy
from email.parser import BytesParser
from html import unescape

import pytest
from sqlalchemy import select

from extensions import db
from models import Contact, Conversation, Message, utcnow
from models.conversations import Participant
from services import send_later
from services.labels import conversation_labels
from tests.conftest import global_smtp
from tests.integration.test_automation_rules import rule
from tests.support.inbound import arrive, email_message
from tests.support.workspace import acknowledging
from worker import build_worker

DOMAIN = "reply.example.com"
CARLA = "carla@customer.example"
SAM = "sam@supplier.example"


@pytest.fixture
def app_config(app_config, smtp):
    return {**app_config, "MAILER_INBOUND_EMAIL_DOMAIN": DOMAIN, **global_smtp(smtp)}


@pytest.fixture
def ack(inbox):
    """The inbox acknowledges every email (no window): a customer-side automation."""
    return acknowledging(inbox, "We have it.", window_minutes=0)


@pytest.fixture
def on_every_answer(inbox):
    """A rule for the customer's answers: labels the conversation (it must not run for a third
    party's email, no more than the acknowledgement)."""
    return rule(
        inbox,
        "Customer answered",
        [{"field": "kind", "op": "is", "value": "reply"}],
        [{"type": "add_labels", "labels": ["answered"]}],
    )


def problems(response) -> str:
    """What the page says went wrong, for an assertion's message."""
    return str(re.findall(r'class="error"[^>]*>[^<]*', response.get_data(as_text=True)))


def send_all(app, smtp, before: int) -> list:
    """Run the send job; the emails the SMTP server received since `before`."""
    build_worker(app, ["outbound"], simple=True).work(burst=True)
    return smtp.envelopes[before:]


def parsed(envelope):
    return BytesParser(policy=policy.default).parsebytes(envelope.content)


def customer_conversation(app, client) -> Conversation:
    first = email_message(
        f"Carla Customer <{CARLA}>",
        "support@example.com",
        "Printer on fire",
        "<fire-1@customer.example>",
        "Help, it is burning. Serial number attached.",
    )
    first.add_attachment(
        b"%PDF-1.4 serial", maintype="application", subtype="pdf", filename="serial.pdf"
    )
    return arrive(app, client, first).conversation


def to_customer() -> list[Message]:
    """Everything we queued or sent to the customer."""
    outgoing = db.session.scalars(select(Message).where(Message.direction == "outgoing"))
    return [
        m for m in outgoing if CARLA in (m.to_addresses.addresses() or [CARLA]) and not m.forward
    ]


def test_forward_then_the_third_partys_answer_comes_back_and_is_answered_to_them_alone(
    app, client, team, bob, smtp, ack, on_every_answer
):
    start = len(smtp.envelopes)  # the server is the module's: earlier tests' mail is there
    conversation = customer_conversation(app, client)
    assert len(send_all(app, smtp, start)) == 1  # the acknowledgement of Carla's email
    sent_before = start + 1
    assert len(to_customer()) == 1

    page = bob.get(f"/conversations/{conversation.id}").get_data(as_text=True)
    assert 'value="forward"' in page and "Forward</label>" in page
    assert f'action="/conversations/{conversation.id}/forward"' in page
    conversation.inbox.signature = "<p>{{agent.name}}, Support</p>"  # signed under the note
    db.session.commit()
    response = bob.post(
        f"/conversations/{conversation.id}/forward",
        {"to": f"Sam <{SAM}>", "note": "Sam, is this covered by the warranty?", "message": ""},
    )
    assert response.status_code == 200, problems(response)
    assert f"Forwarded to {SAM}" in response.get_data(as_text=True)

    sam = db.session.scalar(select(Participant).where(Participant.email == SAM))
    assert sam.role == "third_party" and sam.token and sam.conversation_id == conversation.id
    forward = db.session.scalar(select(Message).where(Message.forward.is_(True)))
    assert forward.participant_id == sam.id

    (envelope,) = send_all(app, smtp, sent_before)
    assert envelope.rcpt_tos == [SAM]  # never the customer
    sent = parsed(envelope)
    # Named as their own email named them (the participant's name), never the customer.
    assert sent["To"].addresses[0].addr_spec == SAM and sent["Cc"] is None
    assert str(sent["Reply-To"]) == f"reply+{sam.token}@{DOMAIN}"
    assert str(sent["Subject"]) == "Fwd: Printer on fire"
    text = sent.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert text.startswith("Sam, is this covered by the warranty?\n\n-- \nBob")
    assert "We have it." not in text  # the automatic acknowledgement is not forwarded
    assert text.index(", Support") < text.index("---------- Forwarded message ----------")
    page = sent.get_body(("html",)).get_content()
    assert page.index('<div class="signature">') < page.index("Forwarded message")
    assert "---------- Forwarded message ----------" in text
    assert f"From: Carla Customer <{CARLA}>" in text
    assert "Help, it is burning." in text
    files = {part.get_filename(): part.get_content() for part in sent.iter_attachments()}
    assert files == {"serial.pdf": b"%PDF-1.4 serial"}

    # Sam answers to the forward's reply address.
    answer = arrive(
        app,
        client,
        email_message(
            f"Sam Supplier <{SAM}>",
            f"reply+{sam.token}@{DOMAIN}",
            "Re: Fwd: Printer on fire",
            "<sam-1@supplier.example>",
            "Yes, covered: send it back to us.",
            In_Reply_To=str(sent["Message-ID"]),
        ),
    )
    assert answer.conversation_id == conversation.id
    assert answer.participant_id == sam.id and answer.threaded_by == "reply_token"
    assert answer.contact_id == db.session.scalar(select(Contact.id).where(Contact.email == SAM))
    assert db.session.get(Conversation, conversation.id).contact.email == CARLA
    assert len(to_customer()) == 1  # no acknowledgement, nothing else queued for Carla
    assert send_all(app, smtp, sent_before + 1) == []
    assert conversation_labels(conversation.id) == []  # the customer's rules did not run

    page = bob.get(f"/conversations/{conversation.id}").get_data(as_text=True)
    assert f"Sam Supplier &lt;{SAM}&gt;" in page and "Third party</span>" in page
    composer = re.search(r'<form id="composer".*?</form>', page, re.S).group(0)
    to = re.search(r'<input[^>]*name="to"[^>]*value="([^"]*)"', composer).group(1)
    cc = re.search(r'<input[^>]*name="cc"[^>]*value="([^"]*)"', composer).group(1)
    assert (unescape(to), cc) == (SAM, "")
    assert "Reply to Sam</span>" in composer  # the name the agent gave Sam in the forward

    # Bob answers Sam from the thread: to Sam alone, with Sam's reply address, in Sam's thread.
    response = bob.post(
        f"/conversations/{conversation.id}/reply",
        {"text": "Thanks, sending it today.", "to": to, "cc": cc},
    )
    assert response.status_code == 200, problems(response)
    (envelope,) = send_all(app, smtp, sent_before + 1)
    assert envelope.rcpt_tos == [SAM]
    sent = parsed(envelope)
    assert str(sent["Reply-To"]) == f"reply+{sam.token}@{DOMAIN}"
    assert str(sent["In-Reply-To"]) == "<sam-1@supplier.example>"
    assert CARLA not in envelope.content.decode()


def test_an_answer_by_in_reply_to_from_the_third_party_is_theirs_too(app, client, team, bob, smtp):
    start = len(smtp.envelopes)
    conversation = customer_conversation(app, client)
    bob.post(f"/conversations/{conversation.id}/forward", {"to": SAM, "note": ""})
    (envelope,) = send_all(app, smtp, start)
    sam = db.session.scalar(select(Participant).where(Participant.email == SAM))
    # Sam's client answers support@ instead, threaded by In-Reply-To only.
    answer = arrive(
        app,
        client,
        email_message(
            SAM,
            "support@example.com",
            "Re: Fwd: Printer on fire",
            "<sam-2@supplier.example>",
            "Covered.",
            In_Reply_To=str(parsed(envelope)["Message-ID"]),
        ),
    )
    assert answer.conversation_id == conversation.id and answer.participant_id == sam.id


@pytest.mark.parametrize(
    "to, why",
    [
        ("", "Add the address to forward to in To."),
        ("not-an-address", "To: &#39;not-an-address&#39; is not an email address"),
        (CARLA, f"To: {CARLA} is the customer"),
    ],
)
def test_a_forward_without_a_valid_address_is_refused_beside_to(app, client, team, bob, to, why):
    conversation = customer_conversation(app, client)
    response = bob.post(f"/conversations/{conversation.id}/forward", {"to": to, "note": "FYI"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    field = f'id="forward-to-{conversation.id}-error"'
    assert field in html, html[:3000]
    error = re.search(rf'<p class="error" role="alert" {field}>([^<]*)</p>', html).group(1)
    assert why in error
    assert 'value="forward" data-composer-mode="forward" checked' in html  # the tab stays open
    assert db.session.scalar(select(Message).where(Message.forward.is_(True))) is None
    assert db.session.scalar(select(Participant).where(Participant.email == to)) is None


def test_a_messages_forward_link_opens_the_tab_with_that_email_chosen(app, client, team, bob, smtp):
    start = len(smtp.envelopes)
    conversation = customer_conversation(app, client)
    email = db.session.scalar(select(Message).where(Message.conversation_id == conversation.id))
    page = bob.get(f"/conversations/{conversation.id}").get_data(as_text=True)
    link = f"/conversations/{conversation.id}?forward={email.id}#forward-{conversation.id}"
    assert f'href="{link}"' in page
    page = bob.get(link.split("#")[0]).get_data(as_text=True)
    assert 'value="forward" data-composer-mode="forward" checked' in page
    assert f'<option value="{email.id}" selected>' in page
    response = bob.post(
        f"/conversations/{conversation.id}/forward", {"to": SAM, "message": str(email.id)}
    )
    assert response.status_code == 200, problems(response)
    (envelope,) = send_all(app, smtp, start)
    assert "Help, it is burning." in parsed(envelope).get_body(("plain",)).get_content()


def test_a_third_partys_answer_never_holds_a_reply_scheduled_for_the_customer(
    app, client, team, bob, smtp
):
    """Send later is held when the customer writes in between (services/send_later.py); a
    supplier answering the forward is not the customer, but does hold a reply to them."""
    start = len(smtp.envelopes)
    conversation = customer_conversation(app, client)
    bob.post(f"/conversations/{conversation.id}/forward", {"to": SAM, "note": "Covered?"})
    (forwarded,) = send_all(app, smtp, start)
    sam = db.session.scalar(select(Participant).where(Participant.email == SAM))
    at = (utcnow() + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M")  # Bob's zone is UTC
    for to, text in ((CARLA, "We are on it, Carla."), (SAM, "Any news, Sam?")):
        response = bob.post(
            f"/conversations/{conversation.id}/reply",
            {"text": text, "to": to, "cc": "", "later": "1", "send_at": at},
        )
        assert response.status_code == 200, problems(response)
    to_carla, to_sam = db.session.scalars(
        select(Message).where(Message.scheduled.is_(True)).order_by(Message.id)
    ).all()
    assert (to_carla.participant_id, to_sam.participant_id) == (None, sam.id)

    arrive(
        app,
        client,
        email_message(
            SAM,
            f"reply+{sam.token}@{DOMAIN}",
            "Re: Fwd: Printer on fire",
            "<sam-3@supplier.example>",
            "Yes, covered.",
            In_Reply_To=str(parsed(forwarded)["Message-ID"]),
        ),
    )
    assert send_later.hold_answered() == 1
    db.session.expire_all()
    assert (to_carla.delivery_status, to_sam.delivery_status) == ("queued", "held")

    arrive(
        app,
        client,
        email_message(CARLA, "support@example.com", "Re: Printer on fire", "<fire-2@x.com>", "?"),
    )
    assert send_later.hold_answered() == 1
    db.session.expire_all()
    assert to_carla.delivery_status == "held"
