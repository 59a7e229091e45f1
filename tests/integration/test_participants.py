"""Participants and reply-all, through the relay ingress, the thread page and a real SMTP
server: the people the customer copied become participants (never our own addresses), the
composer prefills To = whoever wrote the latest email and CC = everyone else, and the reply
goes out to exactly those."""

from __future__ import annotations

import re
from html import unescape

import pytest
from sqlalchemy import select

from extensions import db
from models import Conversation, Message
from models.conversations import Participant
from tests.conftest import global_smtp
from tests.support import inbound
from tests.support.inbound import email_message
from tests.support.statements import sql_statements
from worker import build_worker

DOMAIN = "reply.example.com"


@pytest.fixture
def app_config(app_config, smtp):
    return {**app_config, "MAILER_INBOUND_EMAIL_DOMAIN": DOMAIN, **global_smtp(smtp)}


def arrive(app, client, sender, message_id, body, **headers) -> Message:
    """One email through the relay ingress and the inbound job: the stored message."""
    subject = headers.pop("subject", "Group question")
    to = headers.pop("To", "support@example.com")
    return inbound.arrive(
        app, client, email_message(sender, to, subject, message_id, body, **headers)
    )


def first_email(app, client) -> Message:
    return arrive(
        app,
        client,
        "Carla Customer <carla@customer.example>",
        "group-1@customer.example",
        "Can you all have a look?",
        To="support@example.com, Zoe Partner <zoe@partner.example>",
        Cc=f"Dan <dan@customer.example>, billing@example.com, reply+abc@{DOMAIN}, "
        "carla@customer.example",
    )


def prefilled(bob, conversation) -> tuple[str, str, str]:
    """The composer's To and CC inputs' values and its text label, as the page draws them."""
    html = bob.get(f"/conversations/{conversation.id}").get_data(as_text=True)
    form = re.search(r'<form id="composer".*?</form>', html, re.S).group(0)

    def value(name):
        found = re.search(rf'<input[^>]*name="{name}"[^>]*>', form).group(0)
        return unescape(re.search(r'value="([^"]*)"', found).group(1))

    label = re.search(r'<span class="when-reply">(Reply to [^<]*)</span>', form).group(1)
    return value("to"), value("cc"), unescape(label)


def people(conversation) -> dict[str, tuple[str, str]]:
    rows = db.session.scalars(
        select(Participant).where(Participant.conversation_id == conversation.id)
    )
    return {p.email: (p.name, p.role) for p in rows}


def test_the_people_copied_become_participants_and_reply_all_follows_who_wrote(
    app, client, team, bob
):
    first = first_email(app, client)
    conversation = db.session.get(Conversation, first.conversation_id)
    # Zoe and Dan; not Carla (the contact), not support@, billing@ or anything at our domain.
    assert people(conversation) == {
        "zoe@partner.example": ("Zoe Partner", "cc"),
        "dan@customer.example": ("Dan", "cc"),
    }
    assert first.participant_id is None  # the contact wrote it
    assert prefilled(bob, conversation) == (
        "carla@customer.example",
        "zoe@partner.example, dan@customer.example",
        "Reply to Carla Customer",
    )

    # Zoe answers everyone: her email is hers (participant_id), shown under her own address,
    # and a reply now goes to her, with Carla and Dan copied.
    zoes = arrive(
        app,
        client,
        "Zoe Partner <zoe@partner.example>",
        "zoe-1@partner.example",
        "Looks like the fuser.",
        subject="Re: Group question",
        To="support@example.com",
        Cc="carla@customer.example, dan@customer.example",
        In_Reply_To="<group-1@customer.example>",
    )
    assert zoes.conversation_id == conversation.id
    zoe = db.session.scalar(select(Participant).where(Participant.email == "zoe@partner.example"))
    assert zoes.participant_id == zoe.id
    db.session.expire_all()
    assert db.session.get(Conversation, conversation.id).contact.email == "carla@customer.example"
    assert len(people(conversation)) == 2  # nobody twice
    page = bob.get(f"/conversations/{conversation.id}").get_data(as_text=True)
    assert "Zoe Partner &lt;zoe@partner.example&gt;" in page
    assert prefilled(bob, conversation) == (
        "zoe@partner.example",
        "carla@customer.example, dan@customer.example",
        "Reply to Zoe Partner",
    )


def test_the_reply_all_envelope_reaches_exactly_the_prefilled_people(app, client, team, bob, smtp):
    conversation = first_email(app, client).conversation
    to, cc, _label = prefilled(bob, conversation)
    response = bob.post(
        f"/conversations/{conversation.id}/reply", {"text": "On it.", "to": to, "cc": cc}
    )
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    build_worker(app, ["outbound"], simple=True).work(burst=True)
    envelope = smtp.wait_for_messages(1)[-1]
    assert sorted(envelope.rcpt_tos) == [
        "carla@customer.example",
        "dan@customer.example",
        "zoe@partner.example",
    ]
    sent = envelope.content.decode()
    assert "To: Carla Customer <carla@customer.example>" in sent
    # Each named as the customer's email named them (their participant's name).
    assert "Cc: Zoe Partner <zoe@partner.example>, Dan <dan@customer.example>" in sent

    # Bob copies his manager on the next reply: from then on she is on the conversation.
    bob.post(
        f"/conversations/{conversation.id}/reply",
        {"text": "Looping in Mia.", "to": to, "cc": f"{cc}, mia@example.org"},
    )
    assert prefilled(bob, conversation)[1] == (
        "zoe@partner.example, dan@customer.example, mia@example.org"
    )
    panel = bob.get(f"/conversations/{conversation.id}").get_data(as_text=True)
    assert '<span class="participant-address">mia@example.org</span>' in panel


def test_participants_follow_a_merge_into_the_survivor(app, client, team, bob):
    old = first_email(app, client).conversation  # Zoe and Dan copied
    zoes = arrive(
        app,
        client,
        "Zoe Partner <zoe@partner.example>",
        "zoe-2@partner.example",
        "Me too.",
        subject="Re: Group question",
        To="support@example.com",
        In_Reply_To="<group-1@customer.example>",
    )
    survivor = arrive(
        app,
        client,
        "Carla Customer <carla@customer.example>",
        "other-1@customer.example",
        "Another thing.",
        subject="Toner",
        To="support@example.com",
        Cc="zoe@partner.example, Eve <eve@customer.example>",
    ).conversation
    assert survivor.id != old.id
    response = bob.post(f"/conversations/{old.id}/merge", {"into": f"#{survivor.display_number}"})
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    db.session.expire_all()
    assert sorted(people(survivor)) == [
        "dan@customer.example",
        "eve@customer.example",
        "zoe@partner.example",
    ]
    assert people(old) == {}
    zoe = db.session.scalar(
        select(Participant).where(
            Participant.conversation_id == survivor.id, Participant.email == "zoe@partner.example"
        )
    )
    assert db.session.get(Message, zoes.id).participant_id == zoe.id


def test_a_thread_page_reads_its_participants_once_and_a_write_is_seen_at_once(
    app, client, team, bob
):
    """The composer's reply-all and the contact panel share one read of the participants
    (services/participants.of); anything written after it is read again."""
    from mail.model import Person
    from services import participants

    conversation = first_email(app, client).conversation
    with sql_statements() as statements:
        html = bob.get(f"/conversations/{conversation.id}").get_data(as_text=True)
    reads = [s for s in statements if "FROM conversation_participants" in s]
    assert len(reads) == 1  # not once for the composer and again for the panel
    assert "zoe@partner.example" in html and "dan@customer.example" in html
    before = [p.email for p in participants.of(conversation.id)]
    added = participants.add(conversation, Person("Ivy", "ivy@partner.example"))
    assert [p.email for p in participants.of(conversation.id)] == before + [added.email]
    db.session.rollback()
    assert [p.email for p in participants.of(conversation.id)] == before
