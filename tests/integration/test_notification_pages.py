"""The in-app side of notifications, through the real pages and forms (CSRF on): the bell and
its poll, the list and the Mentions view, "Mark all read", the thread on screen reading its
conversation's notifications, the settings on the profile page, @mentions in notes, and each
agent seeing only their own."""

from __future__ import annotations

import html
import json
import re

import pytest
from sqlalchemy import event, select

from extensions import db
from models import Message, Notification
from models.enums import NotificationEvent as Event
from services.notifications import events
from services.replies import create_reply
from tests.support.workspace import HX, Browser, make_team, quick_conversation

BELL = re.compile(r'<a id="notification-bell"[^>]*aria-label="Notifications, (\w+) unread"')


@pytest.fixture
def team(inbox, make_user):
    return make_team(inbox, make_user)


@pytest.fixture
def browser(client, auth):
    return Browser(client, auth)


def notify(event, conversation, *users, actor=None, message=None):
    """What a hook does: record in the caller's transaction, then commit."""
    made = events.record(
        event, conversation, message=message, actor_id=actor.id if actor else None, users=users
    )
    db.session.commit()
    return made


def bell_count(page_html: str) -> str:
    found = BELL.search(page_html)
    assert found, "no bell on the page"
    return found.group(1)


def unread_of(user) -> int:
    return events.unread_count(user)


def test_the_bell_counts_my_unread_notifications_on_every_page(browser, team):
    conversation = quick_conversation(team.support, "Printer on fire")
    browser.login(team.bob)
    assert bell_count(browser.get("/conversations").get_data(as_text=True)) == "none"
    notify(Event.MENTION, conversation, team.bob, actor=team.ana)
    notify(Event.ASSIGNED, conversation, team.bob, actor=team.ana)
    for path in ("/conversations", "/profile", "/saved-replies", "/notifications"):
        page = browser.get(path).get_data(as_text=True)
        assert bell_count(page) == "2", path
    page = browser.get("/notifications").get_data(as_text=True)
    assert re.search(r'id="notification-bell"[^>]*aria-current="page"', page)


def test_the_bell_poll_is_one_count_and_204_while_nothing_changed(browser, team):
    conversation = quick_conversation(team.support, "Printer on fire", name="Carla Customer")
    browser.login(team.bob)
    assert browser.get("/notifications/bell?count=0", htmx=True).status_code == 204

    notify(Event.MENTION, conversation, team.bob, actor=team.ana)
    statements = []

    def count(conn, cursor, statement, *args):
        if "notifications" in statement:
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        same = browser.get("/notifications/bell?count=1", htmx=True)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert same.status_code == 204
    assert len(statements) == 1 and "count(" in statements[0].lower()

    # The count rose: the new bell, with the newest notification for the desktop notice.
    news = browser.get("/notifications/bell?count=0", htmx=True)
    assert news.status_code == 200
    body = news.get_data(as_text=True)
    assert 'aria-label="Notifications, 1 unread"' in body
    assert 'hx-get="/notifications/bell?count=1"' in body and 'hx-trigger="every 15s"' in body
    newest = db.session.scalar(select(Notification.id))
    assert f'data-newest-id="{newest}"' in body
    assert 'data-newest-text="Ana Admin mentioned you in a note"' in body
    assert f'data-newest-title="#{conversation.display_number} Printer on fire"' in body
    assert f'data-newest-url="/conversations/{conversation.id}"' in body
    # It fell (read elsewhere): the bell, without a "newest" to announce.
    events.mark_read(team.bob)
    fell = browser.get("/notifications/bell?count=1", htmx=True).get_data(as_text=True)
    assert "none unread" in fell and "data-newest-id" not in fell
    # Not a page of its own: without htmx, the notifications page.
    plain = browser.get("/notifications/bell")
    assert plain.status_code == 302 and plain.headers["Location"].endswith("/notifications")


def test_the_list_newest_first_with_who_what_where_and_when(browser, team):
    printer = quick_conversation(team.support, "Printer on fire", name="Carla Customer")
    invoice = quick_conversation(team.support, "Invoice missing", name="Dan Debtor")
    customer_message = db.session.scalar(
        select(Message).where(Message.conversation_id == invoice.id)
    )
    notify(Event.NEW_CONVERSATION, printer, team.bob)
    notify(Event.ASSIGNED, printer, team.bob, actor=team.ana)
    notify(Event.CUSTOMER_REPLY, invoice, team.bob, message=customer_message)
    note = create_reply(printer, team.ana, "@Bob Agent can you look at this?", private=True)
    assert note.id and unread_of(team.bob) == 4  # the note's mention, through the real hook
    events.mark_read(team.bob, conversation_id=invoice.id)

    browser.login(team.bob)
    page = browser.get("/notifications").get_data(as_text=True)
    items = re.findall(r'<li class="notification( unread)?" id="notification-(\d+)">', page)
    ids = [int(i) for _, i in items]
    assert ids == sorted(ids, reverse=True) and len(ids) == 4
    text = html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))
    order = [
        "Ana Admin mentioned you in a note",
        "Ana Admin assigned a conversation to you",
        "Carla Customer started a new conversation",
    ]
    positions = [text.index(words) for words in order]
    assert positions == sorted(positions)
    assert "Dan Debtor replied" in text
    assert f"#{printer.display_number} Printer on fire" in text
    assert f"#{invoice.display_number} Invoice missing" in text
    assert "can you look at this?" in text  # the note, as the excerpt
    assert "just now" in text
    # Unread marked (a class, a dot and words for a screen reader); the read one is not.
    unread = [bool(flag) for flag, _ in items]
    assert unread.count(True) == 3 and unread.count(False) == 1
    assert page.count("Unread: ") == 3
    # Each opens its conversation, at the message it is about.
    assert f'href="/conversations/{printer.id}#message-{note.id}"' in page
    assert f'href="/conversations/{printer.id}"' in page


def test_the_mentions_view_lists_only_mentions(browser, team):
    conversation = quick_conversation(team.support, "Printer on fire")
    notify(Event.ASSIGNED, conversation, team.bob, actor=team.ana)
    browser.login(team.bob)
    empty = browser.get("/notifications?view=mentions").get_data(as_text=True)
    assert "No mentions" in empty
    assert re.search(r'<a href="/notifications\?view=mentions" aria-current="page">Mentions', empty)
    create_reply(conversation, team.ana, "Over to you, @bob agent.", private=True)
    page = browser.get("/notifications?view=mentions").get_data(as_text=True)
    assert "mentioned you in a note" in page
    assert "assigned a conversation" not in page
    assert page.count('<li class="notification') == 1
    # htmx asks for the list alone; an unknown view is the whole list.
    part = browser.get("/notifications?view=mentions", htmx=True)
    assert part.get_data(as_text=True).lstrip().startswith('<div id="notification-list"')
    assert (
        browser.get("/notifications?view=nonsense")
        .get_data(as_text=True)
        .count('<li class="notification')
        == 2
    )


def test_mark_all_read_is_a_post_with_csrf(browser, team):
    conversation = quick_conversation(team.support, "Printer on fire")
    notify(Event.ASSIGNED, conversation, team.bob, actor=team.ana)
    notify(Event.MENTION, conversation, team.bob, actor=team.ana)
    browser.login(team.bob)
    page = browser.get("/notifications").get_data(as_text=True)
    assert 'action="/notifications/read"' in page and "Mark all read" in page

    refused = browser.post("/notifications/read", csrf=False)
    assert refused.status_code == 400
    assert unread_of(team.bob) == 2

    answer = browser.post("/notifications/read")  # htmx: the list and the bell out of band
    assert answer.status_code == 200
    body = answer.get_data(as_text=True)
    assert "2 notifications marked read." in body
    assert 'id="notification-list"' in body and "Unread: " not in body
    assert re.search(r'id="notification-bell"[^>]*aria-label="Notifications, none unread"', body)
    assert 'hx-swap-oob="true"' in body
    assert unread_of(team.bob) == 0

    # Without htmx: back to the page, saying so.
    notify(Event.MENTION, conversation, team.bob, actor=team.ana)
    plain = browser.post("/notifications/read?view=mentions", htmx=False)
    assert plain.status_code == 303
    assert plain.headers["Location"].endswith("/notifications?view=mentions")
    assert "1 notification marked read." in browser.get("/notifications").get_data(as_text=True)
    bad = browser.post("/notifications/read", {"conversation_id": "twelve"})
    assert bad.status_code == 400


def test_opening_a_thread_marks_its_conversations_notifications_read(browser, team):
    printer = quick_conversation(team.support, "Printer on fire")
    invoice = quick_conversation(team.support, "Invoice missing")
    notify(Event.ASSIGNED, printer, team.bob, actor=team.ana)
    notify(Event.MENTION, printer, team.bob, actor=team.ana)
    notify(Event.ASSIGNED, invoice, team.bob, actor=team.ana)
    browser.login(team.bob)

    # The GET draws the thread and writes nothing; the thread asks with a POST.
    thread = browser.get(f"/conversations/{printer.id}").get_data(as_text=True)
    assert unread_of(team.bob) == 3
    ask = re.search(r'<span hidden hx-post="/notifications/read" hx-vals=\'([^\']+)\'', thread)
    assert ask and json.loads(ask.group(1)) == {"conversation_id": str(printer.id)}
    answer = browser.post("/notifications/read", {"conversation_id": str(printer.id)})
    assert answer.status_code == 200
    body = answer.get_data(as_text=True)
    assert 'hx-swap-oob="true"' in body and "Notifications, 1 unread" in body
    assert 'id="notification-list"' not in body
    assert unread_of(team.bob) == 1  # the other conversation's stays unread
    # Nothing left to read here: the thread no longer asks.
    again = browser.get(f"/conversations/{printer.id}", htmx=True).get_data(as_text=True)
    assert 'hx-post="/notifications/read"' not in again
    assert 'hx-post="/notifications/read"' in browser.get(
        f"/conversations/{invoice.id}", htmx=True
    ).get_data(as_text=True)


def test_agents_see_and_read_only_their_own_notifications(browser, team):
    support = quick_conversation(team.support, "Printer on fire")
    billing = quick_conversation(team.billing, "Invoice missing")
    notify(Event.ASSIGNED, support, team.bob, actor=team.ana)
    notify(Event.ASSIGNED, billing, team.olga, actor=team.ana)
    notify(Event.MENTION, billing, team.olga, actor=team.ana)

    browser.login(team.bob)
    page = browser.get("/notifications").get_data(as_text=True)
    assert bell_count(page) == "1"
    assert "Printer on fire" in page and "Invoice missing" not in page
    # Reading "a conversation's" (Olga's) or everything of mine leaves Olga's unread.
    browser.post("/notifications/read", {"conversation_id": str(billing.id)})
    browser.post("/notifications/read")
    assert unread_of(team.bob) == 0 and unread_of(team.olga) == 2

    browser.login(team.olga)
    page = browser.get("/notifications").get_data(as_text=True)
    assert bell_count(page) == "2"
    assert "Invoice missing" in page and "Printer on fire" not in page


def prefs_form(browser) -> dict:
    """The settings as the profile page's form would post them."""
    page = browser.get("/profile").get_data(as_text=True)
    form = page[page.index('action="/profile/notifications"') :]
    form = form[: form.index("</form>")]
    data = {}
    for name in re.findall(
        r'<input[^>]*checked[^>]*name="(\w+)"|<input[^>]*name="(\w+)"[^>]*checked', form
    ):
        data[name[0] or name[1]] = "y"
    return data


def test_settings_on_the_profile_page_start_from_the_defaults_and_save(browser, team):
    browser.login(team.bob)
    page = browser.get("/profile").get_data(as_text=True)
    assert 'id="notifications"' in page
    for label, _ in events.EVENTS.values():
        assert html.escape(label) in page
    ticked = prefs_form(browser)
    expected = {
        f"{event}_{kind}"
        for event, (email, in_app) in events.DEFAULTS.items()
        for kind, on in (("email", email), ("in_app", in_app))
        if on
    }
    assert set(ticked) == expected
    # Each box is named by its column and row: "Email Mentioned".
    assert 'aria-labelledby="pref-email pref-mention"' in page

    chosen = {**ticked, "new_conversation_email": "y"}
    del chosen["mention_email"], chosen["send_failed_in_app"]
    saved = browser.post("/profile/notifications", chosen, htmx=False)
    assert saved.status_code == 303
    assert saved.headers["Location"].endswith("/profile#notifications")
    prefs = events.preferences(team.bob)
    assert prefs[Event.NEW_CONVERSATION] == (True, True)
    assert prefs[Event.MENTION] == (False, True)
    assert prefs[Event.SEND_FAILED] == (True, False)
    assert prefs[Event.ASSIGNED] == events.DEFAULTS[Event.ASSIGNED]
    page = browser.get("/profile").get_data(as_text=True)
    assert "Your notification settings are saved." in page
    assert set(prefs_form(browser)) == set(chosen)


def test_settings_refuse_bad_input_and_need_csrf(browser, team):
    browser.login(team.bob)
    before = events.preferences(team.bob)
    odd = browser.post("/profile/notifications", {"mention_email": "maybe"}, htmx=False)
    assert odd.status_code == 422
    assert "is not a choice here" in html.unescape(odd.get_data(as_text=True))
    unknown = browser.post("/profile/notifications", {"weather_email": "y"}, htmx=False)
    assert unknown.status_code == 422
    assert "“weather_email” is not a notification setting" in html.unescape(
        unknown.get_data(as_text=True)
    )
    forged = browser.post("/profile/notifications", {"mention_email": "y"}, htmx=False, csrf=False)
    assert forged.status_code == 400
    assert events.preferences(team.bob) == before


def test_the_composer_offers_the_people_to_mention_and_notes_highlight_them(browser, team):
    conversation = quick_conversation(team.support, "Printer on fire")
    browser.login(team.bob)
    page = browser.get(f"/conversations/{conversation.id}").get_data(as_text=True)
    found = re.search(r"data-mentions='([^']+)'", page)
    assert found, "no @mention list in the composer"
    people = json.loads(html.unescape(found.group(1)))
    # Who can see the conversation (the inbox's member, the admin), never me; not Olga.
    assert people == [{"name": "Ana Admin", "email": "ana@staff.example"}]
    assert 'role="listbox"' in page

    sent = browser.post(
        f"/conversations/{conversation.id}/reply",
        {"text": "@Ana Admin, see <b>this</b>; @Olga Outsider cannot.", "private": "1"},
    )
    assert sent.status_code == 200
    body = sent.get_data(as_text=True)
    assert '<mark class="mention">@Ana Admin</mark>, see &lt;b&gt;this&lt;/b&gt;' in body
    assert "@Olga Outsider cannot." in body and ">@Olga Outsider<" not in body
    ana_items = events.recent(team.ana, mentions_only=True)
    assert [n.actor_id for n in ana_items] == [team.bob.id]
    assert events.recent(team.olga) == []


def test_the_notification_pages_need_sign_in(client):
    for path in ("/notifications", "/notifications?view=mentions"):
        assert client.get(path).status_code == 302
    polled = client.get("/notifications/bell?count=0", headers=HX)
    assert polled.headers.get("HX-Redirect", "").startswith("/login")
    assert client.post("/notifications/read").status_code in (302, 400)
