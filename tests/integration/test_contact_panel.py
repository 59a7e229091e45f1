"""The contact panel beside a thread: name, address, the other people on the conversation,
the contact's other conversations the agent may see, notes; name and notes edited in place."""

from __future__ import annotations

from datetime import timedelta
from email.utils import getaddresses
from html import unescape

import pytest

from extensions import db
from mail.model import Person
from models import Contact, Message, utcnow
from services import contacts as contact_service
from services import participants
from tests.support.statements import sql_statements
from tests.support.workspace import Browser, make_team, quick_conversation


@pytest.fixture
def team(app, inbox, make_user):
    return make_team(inbox, make_user)


@pytest.fixture
def bob(client, auth, team):
    return Browser(client, auth).login(team.bob)


def jane_conversation(team, subject="Where is my refund?", **kwargs):
    return quick_conversation(
        team.support, subject, email="jane@customer.example", name="Jane Doe", **kwargs
    )


def copy(conversation, sender, to, cc=""):
    """An incoming email; `sender` as a From header reads (`Name <address>`)."""
    [(name, address)] = getaddresses([sender])
    db.session.add(
        Message(
            conversation_id=conversation.id,
            inbox_id=conversation.inbox_id,
            direction="incoming",
            contact_id=conversation.contact_id,
            from_address=address,
            from_name=name,
            to_addresses=to,
            cc_addresses=cc,
            text_body="see above",
            delivery_status="received",
        )
    )
    db.session.commit()


def panel_of(html: str) -> str:
    start = html.index('<aside class="contact-panel"')
    return unescape(html[start : html.index("</aside>", start)])


def panel_and_statements(user, conversation):
    """contact_service.contact_panel and every statement it sent to the database."""
    with sql_statements() as statements:
        panel = contact_service.contact_panel(user, conversation)
    return panel, statements


def test_panel_shows_the_contact_participants_other_conversations_and_notes(team, bob):
    old = jane_conversation(team, "Order #1042 arrived damaged", at=utcnow() - timedelta(days=3))
    hidden = quick_conversation(team.billing, "Invoice copy", email="jane@customer.example")
    current = jane_conversation(team)
    copy(
        current,
        "Jane Doe <jane@customer.example>",
        "support@example.com, Billing <billing@example.com>",
        cc='"Mark Manager" <mark@customer.example>, finance@customer.example',
    )
    current.contact.notes = "VIP since 2021"
    db.session.commit()

    panel = panel_of(bob.get(f"/conversations/{current.id}").get_data(as_text=True))

    assert "Jane Doe" in panel and "jane@customer.example" in panel
    assert "Mark Manager" in panel and "mark@customer.example" in panel
    assert "finance@customer.example" in panel
    # Neither the inbox's own addresses nor the contact count as other participants.
    assert "support@example.com" not in panel and "billing@example.com" not in panel
    assert f"/conversations/{old.id}" in panel and "Order #1042 arrived damaged" in panel
    assert f'href="/conversations/{current.id}"' not in panel  # not itself
    assert "Invoice copy" not in panel and f"/conversations/{hidden.id}" not in panel  # Billing
    assert "VIP since 2021" in panel
    assert f'href="/contacts/{current.contact_id}"' in panel


def test_panel_says_so_when_nobody_else_and_no_other_conversation(team, bob):
    current = jane_conversation(team)
    panel = panel_of(bob.get(f"/conversations/{current.id}").get_data(as_text=True))
    assert "Nobody else is copied." in panel
    assert "This is their first conversation." in panel


def test_panel_lists_five_and_links_to_all(team, bob):
    for n in range(7):
        jane_conversation(team, f"Question {n}", at=utcnow() - timedelta(hours=n + 1))
    current = jane_conversation(team)
    panel = panel_of(bob.get(f"/conversations/{current.id}").get_data(as_text=True))
    assert panel.count('<li>\n            <a href="/conversations/') == 5
    assert "All 7 conversations" in panel
    assert "Question 0" in panel and "Question 6" not in panel  # newest first


def test_panel_costs_the_same_few_queries_for_a_long_history(app, team):
    current = jane_conversation(team)
    for n in range(30):
        jane_conversation(team, f"Question {n}", at=utcnow() - timedelta(hours=n + 1))
        copy(current, "jane@customer.example", "support@example.com", f"p{n}@customer.example")
    assert team.bob.is_admin is False and current.contact.email  # loaded, as on the page,
    assert current.inbox.support_address  # with its inbox (services.access.visible_conversation)
    panel, statements = panel_and_statements(team.bob, current)
    assert len(panel.participants) == 30 and panel.earlier_total == 30
    # Recorded participants, the emails' headers (a conversation from before participants
    # were recorded has none), our addresses, the earlier conversations.
    assert len(statements) <= 4, statements

    for n in range(30):  # as delivery records them now (services/participants.py)
        participants.add(current, Person(f"p{n}@customer.example", ""))
    db.session.commit()
    assert current.contact.email and team.bob.is_admin is False  # loaded again after commit
    panel, statements = panel_and_statements(team.bob, current)
    assert len(panel.participants) == 30 and len(statements) <= 2, statements


def test_a_thread_between_the_contact_and_the_inbox_reads_no_other_addresses(app, team):
    """Only the contact and the inbox's own address on its emails: nobody is left whom the
    other inboxes' addresses and aliases could rule out, so they are not read."""
    current = jane_conversation(team)
    copy(current, "Jane Doe <jane@customer.example>", "Support <SUPPORT@example.com>")
    copy(current, "support@example.com", "jane@customer.example")
    assert current.contact.email and current.inbox.support_address  # loaded, as on the page
    panel, statements = panel_and_statements(team.bob, current)
    assert panel.participants == []
    assert not [s for s in statements if "inbox_addresses" in s], statements


def test_editing_the_name_and_notes(team, bob):
    current = jane_conversation(team)
    contact_id = current.contact_id

    response = bob.post(f"/contacts/{contact_id}/name", {"name": "  Jane   Q. Doe "})
    assert response.status_code == 200
    assert "Name saved." in response.get_data(as_text=True)
    response = bob.post(f"/contacts/{contact_id}/notes", {"notes": "Prefers email.\r\nVIP"})
    assert response.status_code == 200
    assert "Notes saved." in response.get_data(as_text=True)

    contact = db.session.get(Contact, contact_id)
    db.session.refresh(contact)
    assert contact.name == "Jane Q. Doe" and contact.notes == "Prefers email.\nVIP"
    page = bob.get(f"/conversations/{current.id}").get_data(as_text=True)
    assert "Jane Q. Doe" in panel_of(page)


def test_without_htmx_a_save_goes_back_to_the_thread(team, bob):
    current = jane_conversation(team)
    response = bob.post(
        f"/contacts/{current.contact_id}/name",
        {"name": "Jane D.", "next": f"/conversations/{current.id}"},
        htmx=False,
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/conversations/{current.id}")
    outside = bob.post(
        f"/contacts/{current.contact_id}/name",
        {"name": "X", "next": "https://evil.example/"},
        htmx=False,
    )
    assert outside.headers["Location"].endswith(f"/contacts/{current.contact_id}")


def test_too_long_a_name_is_refused_with_what_to_fix(team, bob):
    current = jane_conversation(team)
    response = bob.post(f"/contacts/{current.contact_id}/name", {"name": "x" * 300})
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "at most 255 characters" in body and 'aria-invalid="true"' in body
    assert db.session.get(Contact, current.contact_id).name == "Jane Doe"


def test_an_agent_cannot_edit_a_contact_of_another_inbox(client, auth, team):
    theirs = quick_conversation(team.billing, "Invoice", email="zed@customer.example", name="Zed")
    olga_not = Browser(client, auth).login(team.bob)
    response = olga_not.post(f"/contacts/{theirs.contact_id}/notes", {"notes": "pwned"})
    assert response.status_code == 404
    assert db.session.get(Contact, theirs.contact_id).notes == ""


def test_editing_needs_the_csrf_token(team, bob):
    current = jane_conversation(team)
    response = bob.post(f"/contacts/{current.contact_id}/notes", {"notes": "x"}, csrf=False)
    assert response.status_code == 400
    assert db.session.get(Contact, current.contact_id).notes == ""
