"""Fixing wrong threading: move a customer's email into another conversation or split it off
into a new one; the customer's next reply follows the email to where it was moved."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from extensions import db
from models import Attachment, Conversation, Message
from tests.support.workspace import Browser, deliver, make_team, messages_of


@pytest.fixture
def team(app, inbox, make_user):
    return make_team(inbox, make_user)


@pytest.fixture
def bob(client, auth, team):
    return Browser(client, auth).login(team.bob)


def move_url(conversation, message):
    return f"/conversations/{conversation.id}/messages/{message.id}/move"


def split_url(conversation, message):
    return f"/conversations/{conversation.id}/messages/{message.id}/split"


def incoming(conversation):
    return messages_of(conversation, "incoming")


def test_split_moves_the_email_and_its_attachments_and_replies_follow(app, client, team, bob):
    first = deliver(app, client, "q1@customer.example", "My printer is on fire")
    # The customer answered on the same thread, but about something else entirely.
    same = deliver(
        app,
        client,
        "q2@customer.example",
        "Also: my invoice is wrong",
        in_reply_to="q1@customer.example",
    )
    assert same.id == first.id
    stray = db.session.scalar(select(Message).where(Message.message_id == "q2@customer.example"))
    db.session.add(Attachment(message_pk=stray.id, filename="invoice.pdf", size=3))
    db.session.commit()

    page = bob.get(f"/conversations/{first.id}").get_data(as_text=True)
    assert "Wrong conversation?" in page and split_url(first, stray) in page

    response = bob.post(split_url(first, stray))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    new = db.session.scalar(select(Conversation).where(Conversation.id != first.id))
    assert f"Email split off into #{new.display_number}." in html
    assert f'href="/conversations/{new.id}"' in html

    assert [m.message_id for m in incoming(first)] == ["q1@customer.example"]
    assert [m.message_id for m in incoming(new)] == ["q2@customer.example"]
    moved = db.session.get(Message, stray.id)
    assert moved.threaded_by == "manual" and moved.attachments[0].filename == "invoice.pdf"
    assert new.status == "open" and new.assignee_id is None and new.inbox_id == first.inbox_id
    assert new.contact_id == first.contact_id and new.subject == "Printer on fire"
    lines = [m.text_body for m in messages_of(first, "activity")]
    assert any(
        "Bob Agent split the email" in line and f"#{new.display_number}" in line for line in lines
    )
    assert any(f"from #{first.display_number}" in m.text_body for m in messages_of(new, "activity"))
    assert "moved here by an agent" in bob.get(f"/conversations/{new.id}").get_data(as_text=True)

    # The customer replies to the moved email: the reply joins the new conversation.
    reply = deliver(
        app,
        client,
        "q3@customer.example",
        "Any news on the invoice?",
        in_reply_to="q2@customer.example",
    )
    assert reply.id == new.id


def test_move_into_the_right_conversation_resolves_the_empty_one(app, client, team, bob):
    right = deliver(
        app, client, "a1@customer.example", "Order 55 never arrived", subject="Order 55"
    )
    # A reply that lost its headers became a conversation of its own.
    wrong = deliver(app, client, "a2@customer.example", "Still waiting!", subject="Where is it")
    assert wrong.id != right.id
    stray = incoming(wrong)[0]

    response = bob.post(move_url(wrong, stray), {"target": f"#{right.display_number}"})
    assert response.status_code == 200
    assert f"Email moved to #{right.display_number}." in response.get_data(as_text=True)
    assert [m.message_id for m in incoming(right)] == ["a1@customer.example", "a2@customer.example"]
    db.session.refresh(wrong)
    assert wrong.status == "resolved" and incoming(wrong) == []
    assert "no customer email is left here" in messages_of(wrong, "activity")[-1].text_body
    assert f"here from #{wrong.display_number}" in messages_of(right, "activity")[-1].text_body

    # Without htmx: a redirect back to the source thread with the same message flashed.
    other = deliver(app, client, "a3@customer.example", "Hello?", subject="Another one")
    response = bob.post(
        move_url(other, incoming(other)[0]), {"target": str(right.display_number)}, htmx=False
    )
    assert response.status_code == 303 and response.headers["Location"].endswith(
        f"/conversations/{other.id}"
    )
    assert f"Email moved to #{right.display_number}." in bob.get(
        f"/conversations/{other.id}"
    ).get_data(as_text=True)


def test_bad_moves_get_a_422_that_says_what_to_fix(app, client, team, bob):
    source = deliver(app, client, "b1@customer.example", "One", subject="One")
    deliver(app, client, "b2@customer.example", "Two", in_reply_to="b1@customer.example")
    stray = incoming(source)[1]
    billing = deliver(
        app, client, "b3@customer.example", "Bill", subject="Bill", to="billing@example.com"
    )
    cases = {
        "": "Give the number of the conversation to move to, like #42.",
        "forty-two": "Give the number of the conversation to move to, like #42.",
        "#99999": "There is no conversation #99999 in your inboxes.",
        f"#{source.display_number}": f"The email is already in #{source.display_number}.",
        # Bob is not a member of Billing: it must look like it does not exist at all.
        f"#{billing.display_number}": (
            f"There is no conversation #{billing.display_number} in your inboxes."
        ),
    }
    for target, error in cases.items():
        response = bob.post(move_url(source, stray), {"target": target})
        assert response.status_code == 422, target
        html = response.get_data(as_text=True)
        assert error in html, (target, html[:2000])
        assert '<details class="msg-move" open>' in html
    assert [m.message_id for m in incoming(source)] == [
        "b1@customer.example",
        "b2@customer.example",
    ]

    # An admin sees both inboxes but still cannot move across them.
    ana = bob.login(team.ana)
    response = ana.post(move_url(source, stray), {"target": f"#{billing.display_number}"})
    assert response.status_code == 422
    assert "is in another inbox" in response.get_data(as_text=True)

    # Replies, notes and activity lines are ours, not the customer's: they never move.
    bob = ana.login(team.bob)
    bob.post(f"/conversations/{source.id}/reply", {"text": "On it", "private": "1"})
    note = messages_of(source, "note")[0]
    response = bob.post(split_url(source, note))
    assert response.status_code == 422
    assert "Only emails from the customer can be moved" in response.get_data(as_text=True)

    # Splitting the only customer email would just rename the conversation.
    lonely = deliver(app, client, "b4@customer.example", "Alone", subject="Alone")
    response = bob.post(split_url(lonely, incoming(lonely)[0]))
    assert response.status_code == 422
    assert "only email from the customer already" in response.get_data(as_text=True)


def test_moves_are_post_with_csrf_and_members_only(app, client, team, bob):
    source = deliver(app, client, "c1@customer.example", "One", subject="One")
    deliver(app, client, "c2@customer.example", "Two", in_reply_to="c1@customer.example")
    stray = incoming(source)[1]
    assert bob.get(split_url(source, stray)).status_code == 405
    assert bob.post(split_url(source, stray), csrf=False).status_code == 400
    # A message id from another conversation is not addressable through this one.
    other = deliver(app, client, "c3@customer.example", "Three", subject="Three")
    assert bob.post(split_url(other, stray)).status_code == 404
    olga = bob.login(team.olga)
    assert olga.post(split_url(source, stray)).status_code == 404
    assert olga.post(move_url(source, stray), {"target": "1"}).status_code == 404
    assert len(incoming(source)) == 2
