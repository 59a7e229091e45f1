"""Parts of the thread drawn once and kept (blueprints/fragment_cache.py): the page is the same
as drawn fresh, shows every change at once, and never carries another agent's CSRF token or
anything drawn for them."""

from __future__ import annotations

import re

import pytest
from flask import current_app
from sqlalchemy import select

import blueprints.fragment_cache as fragment_cache
from extensions import db
from models import Message
from tests.conftest import AuthActions
from tests.support.workspace import Browser, make_team, quick_conversation

TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


@pytest.fixture
def team(inbox, make_user):
    return make_team(inbox, make_user)


def tokens(html: str) -> set[str]:
    return {a or b for a, b in TOKEN.findall(html)}


def session_of(token: str) -> str:
    """The session's raw token a signed CSRF token carries (its signature and time differ
    from request to request)."""
    return token.split(".")[0]


def without_tokens(html: str) -> str:
    return TOKEN.sub("csrf", html)


def store():
    return current_app.jinja_env.fragment_store


def drawn_fresh(browser, path: str, htmx: bool = True) -> str:
    """The page as drawn with nothing kept."""
    real = fragment_cache.draw
    fragment_cache.draw = lambda store, key, render: real(store, None, render)
    try:
        return browser.get(path, htmx=htmx).get_data(as_text=True)
    finally:
        fragment_cache.draw = real


def add_note(conv, author, text: str) -> None:
    db.session.add(
        Message(
            conversation_id=conv.id,
            inbox_id=conv.inbox_id,
            direction="note",
            sender_user_id=author.id,
            text_body=text,
        )
    )
    db.session.commit()


def thread_with_note(team):
    conv = quick_conversation(team.support, text="Where is my parcel?")
    add_note(conv, team.bob, "@Ana Admin can you check the courier?")
    return conv


@pytest.mark.parametrize("htmx", [True, False], ids=["fragment", "full page"])
def test_a_kept_thread_is_the_thread_drawn_fresh(team, client, auth, htmx):
    conv = thread_with_note(team)
    bob = Browser(client, auth).login(team.bob)
    path = f"/conversations/{conv.id}"
    fresh = drawn_fresh(bob, path, htmx)
    store().clear()
    first = bob.get(path, htmx=htmx).get_data(as_text=True)
    assert len(store()) > 0
    kept = bob.get(path, htmx=htmx).get_data(as_text=True)
    assert without_tokens(first) == without_tokens(fresh)
    assert without_tokens(kept) == without_tokens(fresh)
    assert "Where is my parcel?" in kept and '<mark class="mention">@Ana Admin</mark>' in kept
    # One token per page, wherever its forms were drawn: the request's own.
    assert len(tokens(kept)) == 1


def test_never_another_agents_token_or_drawing(team, app):
    conv = thread_with_note(team)
    bob, ana = Agent(app, team.bob), Agent(app, team.ana)
    path = f"/conversations/{conv.id}"
    bob_page = bob.get(path, htmx=True).get_data(as_text=True)
    ana_page = ana.get(path, htmx=True).get_data(as_text=True)
    (bob_token,) = tokens(bob_page)
    (ana_token,) = tokens(ana_page)
    assert session_of(bob_token) != session_of(ana_token)
    again = bob.get(path, htmx=True).get_data(as_text=True)
    assert {session_of(t) for t in tokens(again)} == {session_of(bob_token)}
    # Each agent's parts are kept under their own key, none drawn for the other (the page's
    # head, links to static files, is the same for every agent of a role).
    users = {key[1] for key in store()._entries if key[0] != "head"}
    assert users == {team.bob.id, team.ana.id}
    for html in store()._entries.values():
        assert bob_token not in html and ana_token not in html


def test_a_changed_message_shows_at_once(team, client, auth):
    conv = quick_conversation(team.support, text="Where is my parcel?")
    bob = Browser(client, auth).login(team.bob)
    path = f"/conversations/{conv.id}"
    assert "Where is my parcel?" in bob.get(path, htmx=True).get_data(as_text=True)
    message = db.session.scalar(select(Message).where(Message.conversation_id == conv.id))
    message.text_body = "Found it, thanks"
    db.session.commit()
    page = bob.get(path, htmx=True).get_data(as_text=True)
    assert "Found it, thanks" in page and "Where is my parcel?" not in page


def test_a_new_message_and_a_renamed_author_show_at_once(team, client, auth):
    conv = thread_with_note(team)
    bob = Browser(client, auth).login(team.bob)
    path = f"/conversations/{conv.id}"
    assert "Bob Agent" in bob.get(path, htmx=True).get_data(as_text=True)
    team.bob.name = "Robert Agent"
    add_note(conv, team.ana, "On it")
    page = bob.get(path, htmx=True).get_data(as_text=True)
    assert "On it" in page
    head = re.findall(r'<strong class="msg-sender">\s*(.*?)\s*</strong>', page)
    assert "Robert Agent" in head and "Bob Agent" not in head


def test_the_store_keeps_a_bounded_number(app):
    kept = fragment_cache.FragmentStore(size=2)
    for n in range(3):
        kept.put(n, f"<p>{n}</p>")
    assert len(kept) == 2 and kept.get(0) is None and kept.get(2) == "<p>2</p>"


class Agent(Browser):
    """A browser of its own (its own session), each request in an app context of its own as a
    real request runs: Flask-Login keeps the signed-in user in `g`."""

    def __init__(self, app, user):
        client = app.test_client()
        super().__init__(client, AuthActions(client))
        self.app = app
        with app.app_context():
            self.login(user)

    def get(self, path, htmx=False, **kwargs):
        with self.app.app_context():
            return super().get(path, htmx, **kwargs)

    def post(self, path, data=None, htmx=True, csrf=True):
        with self.app.app_context():
            return super().post(path, data, htmx, csrf)


def test_the_contact_panel_shows_a_change_at_once(team, client, auth):
    conv = quick_conversation(team.support, text="Where is my parcel?", name="Pat Doe")
    bob = Browser(client, auth).login(team.bob)
    path = f"/conversations/{conv.id}"
    assert "This is their first conversation." in bob.get(path, htmx=True).get_data(as_text=True)
    conv.contact.notes = "Prefers email"
    conv.contact.name = "Pat Smith"
    other = quick_conversation(team.support, "Second order", email=conv.contact.email)
    page = bob.get(path, htmx=True).get_data(as_text=True)
    panel = page.split('<aside class="contact-panel"', 1)[1]
    assert "Prefers email" in panel and "Pat Smith" in panel and "Pat Doe" not in panel
    assert f"#{other.display_number} Second order" in panel


def test_each_agent_sees_the_contacts_conversations_they_may_see(team, app):
    conv = quick_conversation(team.support, text="Hello", email="pat@customer.example")
    elsewhere = quick_conversation(team.billing, "Billing matter", email="pat@customer.example")
    bob, ana = Agent(app, team.bob), Agent(app, team.ana)
    path = f"/conversations/{conv.id}"
    shown = f"#{elsewhere.display_number} Billing matter"
    assert shown in ana.get(path, htmx=True).get_data(as_text=True)  # an admin sees every inbox
    assert shown not in bob.get(path, htmx=True).get_data(as_text=True)
    assert shown in ana.get(path, htmx=True).get_data(as_text=True)


def header(page: str) -> str:
    return re.search(r'<header class="thread-head">.*?</header>', page, re.S).group(0)


def composer(page: str) -> str:
    return re.search(r'<form id="composer".*?</form>', page, re.S).group(0)


def test_the_menus_show_each_action_at_once(team, client, auth):
    conv = quick_conversation(team.support)
    bob = Browser(client, auth).login(team.bob)
    path = f"/conversations/{conv.id}"
    assert f'value="{team.bob.id}" aria-pressed="true"' not in header(
        bob.get(path, htmx=True).get_data(as_text=True)
    )
    assert bob.post(f"{path}/assign", {"assignee_id": team.bob.id}).status_code == 200
    assert bob.post(f"{path}/labels", {"labels": "urgent"}).status_code == 200
    assert bob.post(f"{path}/status", {"status": "pending"}).status_code == 200
    head = header(bob.get(path, htmx=True).get_data(as_text=True))
    assert f'value="{team.bob.id}" aria-pressed="true"' in head
    assert 'value="urgent"' in head and ">urgent</a>" in head
    assert 'value="pending" disabled aria-pressed="true"' in head


def test_the_menus_say_me_to_each_agent(team, app):
    conv = quick_conversation(team.support)
    bob, ana = Agent(app, team.bob), Agent(app, team.ana)
    path = f"/conversations/{conv.id}"
    for agent, me, other in ((bob, "Bob Agent", "Ana Admin"), (ana, "Ana Admin", "Bob Agent")):
        for _ in range(2):  # drawn, then kept
            head = header(agent.get(path, htmx=True).get_data(as_text=True))
            assert f">{me} (me)<" in head and f">{other}<" in head


def test_the_composer_is_each_agents_own_and_shows_their_draft(team, app):
    conv = quick_conversation(team.support)
    bob, ana = Agent(app, team.bob), Agent(app, team.ana)
    path = f"/conversations/{conv.id}"
    blank = composer(bob.get(path, htmx=True).get_data(as_text=True))
    assert "Draft restored" not in blank
    saved = bob.post(f"{path}/draft", {"text": "Checking with the courier", "to": ""})
    assert saved.status_code == 200, saved.get_data(as_text=True)
    mine = composer(bob.get(path, htmx=True).get_data(as_text=True))
    assert "Checking with the courier" in mine and "Draft restored" in mine
    theirs = composer(ana.get(path, htmx=True).get_data(as_text=True))
    assert "Checking with the courier" not in theirs and "Draft restored" not in theirs


def test_the_composer_shows_a_new_signature_at_once(team, client, auth):
    conv = quick_conversation(team.support)
    bob = Browser(client, auth).login(team.bob)
    path = f"/conversations/{conv.id}"
    assert "composer-signature" not in composer(bob.get(path, htmx=True).get_data(as_text=True))
    team.support.signature = "<p>The Support team</p>"
    db.session.commit()
    assert "The Support team" in bob.get(path, htmx=True).get_data(as_text=True)


def row(page: str, conversation_id: int) -> str:
    return re.search(rf'<li class="conv-row[^"]*" id="row-{conversation_id}".*?</li>', page, re.S)[
        0
    ]


def test_a_list_row_shows_each_change_at_once(team, client, auth):
    conv = quick_conversation(team.support, text="Where is my parcel?")
    bob = Browser(client, auth).login(team.bob)
    before = row(bob.get("/conversations").get_data(as_text=True), conv.id)
    assert "Where is my parcel?" in before and "Unassigned" in before and " unread" in before
    assert (
        bob.post(f"/conversations/{conv.id}/assign", {"assignee_id": team.bob.id}).status_code
        == 200
    )
    assert bob.post(f"/conversations/{conv.id}/read").status_code in (200, 204)
    db.session.add(
        Message(
            conversation_id=conv.id,
            inbox_id=team.support.id,
            direction="outgoing",
            sender_user_id=team.bob.id,
            text_body="It left the warehouse today",
            delivery_status="sent",
        )
    )
    db.session.commit()
    after = row(bob.get("/conversations").get_data(as_text=True), conv.id)
    assert "It left the warehouse today" in after and "Assigned to Bob Agent" in after
    # Read by Bob: not for Ana, whose row of the same conversation stays unread.
    assert " unread" not in after
    ana = Agent(current_app, team.ana)
    assert " unread" in row(ana.get("/conversations").get_data(as_text=True), conv.id)


def test_the_bulk_bar_and_the_head_are_each_agents_own(team, app):
    quick_conversation(team.support)
    bob, ana = Agent(app, team.bob), Agent(app, team.ana)
    for _ in range(2):  # drawn, then kept
        bob_page = bob.get("/conversations").get_data(as_text=True)
        ana_page = ana.get("/conversations").get_data(as_text=True)
        bulk = re.search(r'<form id="bulk-form".*?</form>', bob_page, re.S)[0]
        assert ">Bob Agent (me)<" in bulk and ">Ana Admin (me)<" not in bulk
        assert "admin.css" in ana_page and "admin.css" not in bob_page
    # Signed out, the sign-in page links no stylesheet of the workspace.
    assert "thread.css" not in app.test_client().get("/login").get_data(as_text=True)
