"""The thread page: a compact header of menus, and a long thread folded to its latest messages
with "N earlier messages" loading the rest on demand (a GET that never writes)."""

from __future__ import annotations

import re

import pytest

from extensions import db
from models import Message
from services import earlier_messages, workspace
from tests.support.workspace import (
    Browser,
    make_team,
    messages_of,
    messages_poll,
    poll_fingerprint,
    quick_conversation,
)


@pytest.fixture
def team(inbox, make_user):
    return make_team(inbox, make_user)


@pytest.fixture
def browser(client, auth):
    return Browser(client, auth)


def long_thread(inbox, emails: int, activity_every: int = 0):
    """A conversation with `emails` incoming emails ("Email 1" first), and an activity line
    after every `activity_every`-th one."""
    conversation = quick_conversation(inbox, "Long story", text="Email 1")
    (first,) = messages_of(conversation)
    for n in range(2, emails + 1):
        db.session.add(
            Message(
                conversation_id=conversation.id,
                inbox_id=inbox.id,
                direction="incoming",
                contact_id=first.contact_id,
                from_address=first.from_address,
                text_body=f"Email {n}",
                delivery_status="received",
                threaded_by="in_reply_to",
            )
        )
        if activity_every and n % activity_every == 0:
            db.session.add(
                Message(
                    conversation_id=conversation.id,
                    inbox_id=inbox.id,
                    direction="activity",
                    text_body=f"Activity after {n}",
                )
            )
    db.session.commit()
    return conversation


def shown_emails(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'class="msg-text">Email (\d+)<', html)]


def test_the_header_is_a_row_of_menus_posting_the_same_fields(team, browser):
    conv = quick_conversation(team.support)
    browser.login(team.bob)
    page = browser.get(f"/conversations/{conv.id}").get_data(as_text=True)
    header = re.search(r'<header class="thread-head">.*?</header>', page, re.S).group(0)
    for menu in ("menu-status", "menu-assign", "menu-labels", "menu-snooze"):
        assert re.search(rf'<details class="menu" id="{menu}">\s*<summary>', header), menu
    # No raw select, no row of snooze buttons on show: each choice is a button in a menu.
    assert "<select" not in header
    resolve = '<button type="submit" class="primary thread-resolve" name="status" value="resolved">'
    assert resolve in header  # the everyday action: one click
    assert f'name="assignee_id" value="{team.bob.id}"' in header
    assert 'name="assignee_id" value=""' in header  # "Unassigned"
    assert 'name="for" value="1h"' in header and 'name="until"' in header
    assert f'href="/contacts/{conv.contact_id}"' in header  # the contact's page
    # Posting what the menus post works as before.
    response = browser.post(f"/conversations/{conv.id}/assign", {"assignee_id": str(team.bob.id)})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="thread-controls"')
    assert re.search(rf'value="{team.bob.id}" aria-pressed="true">Bob Agent \(me\)<', html)
    response = browser.post(f"/conversations/{conv.id}/status", {"status": "resolved"})
    html = response.get_data(as_text=True)
    assert "thread-resolve" not in html  # resolved: no one-click Resolve, Reopen in the menu
    assert 'value="resolved" disabled aria-pressed="true">Resolve</button>' in html
    assert ">Reopen</button>" in html


def test_a_failed_menu_form_opens_its_menu_with_what_to_fix(team, browser):
    conv = quick_conversation(team.support)
    browser.login(team.bob)
    response = browser.post(f"/conversations/{conv.id}/snooze", {"until": "next week"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert '<details class="menu" id="menu-snooze" open>' in html and 'role="alert"' in html
    response = browser.post(f"/conversations/{conv.id}/labels", {"labels": "x" * 41})
    assert response.status_code == 422
    assert '<details class="menu" id="menu-labels" open>' in response.get_data(as_text=True)


def test_a_long_thread_shows_its_latest_messages_and_loads_the_rest(team, browser):
    conv = long_thread(team.support, 30, activity_every=5)
    browser.login(team.bob)
    page = browser.get(f"/conversations/{conv.id}").get_data(as_text=True)
    latest = workspace.LATEST
    assert shown_emails(page) == list(range(31 - latest, 31))
    # The activity line right after the newest folded email is shown with what follows it.
    assert "Activity after 20" in page and "Activity after 15" not in page
    button = re.search(r'<a id="thread-earlier"[^>]*>([^<]*)</a>', page, re.S)
    assert button.group(1).strip() == f"{30 - latest} earlier messages"
    first_shown = next(m.id for m in messages_of(conv) if m.text_body == "Activity after 20")
    earlier_url = re.search(r'hx-get="([^"]*)"', button.group(0)).group(1).replace("&amp;", "&")
    assert earlier_url == f"/conversations/{conv.id}/messages/earlier?before={first_shown}"
    assert workspace.earlier_start(conv.id) == first_shown

    # The poll is unchanged: the page's fingerprint is the whole thread's.
    assert browser.get(messages_poll(page), htmx=True).status_code == 204
    fp = poll_fingerprint(page)
    response = browser.get(f"{earlier_url}&fp={fp}", htmx=True)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert shown_emails(html) == list(range(1, 31 - latest))
    assert "Activity after 15" in html and "Activity after 20" not in html
    assert "<html" not in html and 'id="thread-earlier"' not in html
    # The poll, out of band, now asks for the whole thread, with the page's fingerprint.
    poll = re.search(r'<input [^>]*id="thread-fp"[^>]*>', html).group(0)
    assert 'hx-swap-oob="true"' in poll and f'value="{fp}"' in poll and "all=1" in poll
    poll_url = messages_poll(html)
    assert browser.get(poll_url, htmx=True).status_code == 204

    # A new email: the poll with all=1 draws the whole thread again, not the folded one.
    long_reply = Message(
        conversation_id=conv.id,
        inbox_id=conv.inbox_id,
        direction="incoming",
        contact_id=conv.contact_id,
        text_body="Email 31",
        delivery_status="received",
        threaded_by="in_reply_to",
    )
    db.session.add(long_reply)
    db.session.commit()
    redrawn = browser.get(poll_url, htmx=True).get_data(as_text=True)
    assert shown_emails(redrawn) == list(range(1, 32)) and "thread-earlier" not in redrawn
    # Without all=1 (another tab), the poll draws the latest ones and the button.
    folded = browser.get(messages_poll(page), htmx=True).get_data(as_text=True)
    assert shown_emails(folded) == list(range(32 - latest, 32))
    assert f"{31 - latest} earlier messages" in folded


def shown_ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'id="message-(\d+)"', html)]


def earlier_button(html: str) -> tuple[str, str] | None:
    """The "earlier messages" button's text and the URL it fetches, if the answer has one."""
    found = re.search(r'<a id="thread-earlier"[^>]*>([^<]*)</a>', html, re.S)
    if found is None:
        return None
    url = re.search(r'hx-get="([^"]*)"', found.group(0)).group(1).replace("&amp;", "&")
    return found.group(1).strip(), url


def test_collapsed_threads_load_every_message(team, browser):
    """A 500-message thread (emails and activity lines): the page shows the latest, and
    pressing "earlier messages" until it is gone shows every message exactly once, in order,
    each answer at most a page of emails (with their activity lines) and the button for the
    page before, in its place."""
    emails = 450
    conv = long_thread(team.support, emails, activity_every=9)
    everything = [m.id for m in messages_of(conv)]
    assert len(everything) == 500
    browser.login(team.bob)
    page = browser.get(f"/conversations/{conv.id}").get_data(as_text=True)
    shown = shown_ids(page)
    assert shown == everything[-len(shown) :]
    fp, presses = poll_fingerprint(page), 0
    button = earlier_button(page)
    folded = emails - workspace.LATEST
    while button is not None:
        text, url = button
        if folded > earlier_messages.PAGE:
            assert text == f"Show {earlier_messages.PAGE} of {folded} earlier messages"
        else:
            assert text == f"{folded} earlier messages"
        assert url.endswith(f"before={shown[0]}")
        html = browser.get(f"{url}&fp={fp}", htmx=True).get_data(as_text=True)
        loaded = shown_ids(html)
        loaded_emails = len(re.findall(r'class="msg-text">Email \d+<', html))
        assert loaded_emails == min(folded, earlier_messages.PAGE)
        # The answer replaces the button: the page before it, then these messages.
        button = earlier_button(html)
        assert (button is None) == (folded <= earlier_messages.PAGE)
        if button is not None:
            assert html.index('id="thread-earlier"') < html.index(f'id="message-{loaded[0]}"')
        shown = loaded + shown
        folded -= loaded_emails
        presses += 1
    assert shown == everything and len(set(shown)) == 500
    assert folded == 0 and presses == -(-(emails - workspace.LATEST) // earlier_messages.PAGE)


def test_earlier_messages_without_htmx_open_the_whole_thread(team, browser):
    conv = long_thread(team.support, 14)
    browser.login(team.bob)
    response = browser.get(f"/conversations/{conv.id}/messages/earlier")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/conversations/{conv.id}?all=1")
    page = browser.get(f"/conversations/{conv.id}?all=1").get_data(as_text=True)
    assert shown_emails(page) == list(range(1, 15)) and "thread-earlier" not in page
    # No `before` (an old link): the messages the page folds away.
    html = browser.get(f"/conversations/{conv.id}/messages/earlier", htmx=True).get_data(
        as_text=True
    )
    assert shown_emails(html) == list(range(1, 15 - workspace.LATEST))


def test_a_short_thread_has_no_earlier_button(team, browser):
    conv = long_thread(team.support, workspace.LATEST)
    browser.login(team.bob)
    page = browser.get(f"/conversations/{conv.id}").get_data(as_text=True)
    assert shown_emails(page) == list(range(1, workspace.LATEST + 1))
    assert "thread-earlier" not in page
    html = browser.get(f"/conversations/{conv.id}/messages/earlier", htmx=True).get_data(
        as_text=True
    )
    assert shown_emails(html) == []


def test_a_change_in_a_folded_thread_appends_only_its_news(team, browser):
    """A label change on a long thread: the activity line is appended (the page had everything
    up to its fingerprint, though only the latest messages were read), and the next poll is a
    204. When more arrived than the page shows, the whole (folded) list is drawn again."""
    conv = long_thread(team.support, 25)
    browser.login(team.bob)
    page = browser.get(f"/conversations/{conv.id}").get_data(as_text=True)
    html = browser.post(
        f"/conversations/{conv.id}/labels", {"labels": "vip", "fp": poll_fingerprint(page)}
    ).get_data(as_text=True)
    (news,) = re.findall(r'<div hx-swap-oob="beforeend:#thread-messages">(.*?)\n</div>', html, re.S)
    assert "Bob Agent labelled this vip" in news and "Email" not in news
    assert browser.get(messages_poll(html), htmx=True).status_code == 204

    for n in range(workspace.LATEST + 1):  # more news than the window holds
        db.session.add(
            Message(
                conversation_id=conv.id,
                inbox_id=conv.inbox_id,
                direction="incoming",
                contact_id=conv.contact_id,
                text_body=f"Later {n}",
                delivery_status="received",
                threaded_by="in_reply_to",
            )
        )
    db.session.commit()
    html = browser.post(
        f"/conversations/{conv.id}/labels", {"labels": "", "fp": poll_fingerprint(html)}
    ).get_data(as_text=True)
    assert '<div id="thread-messages" class="thread-messages" hx-swap-oob="true">' in html
    assert "beforeend:#thread-messages" not in html
    assert browser.get(messages_poll(html), htmx=True).status_code == 204


def test_the_thread_page_reads_a_long_thread_in_a_few_queries(team, browser, app):
    """The folded page reads the latest messages, not all 60: the same handful of statements
    as a short thread."""
    from sqlalchemy import event

    conv = long_thread(team.support, 60)
    browser.login(team.bob)
    browser.get(f"/conversations/{conv.id}", htmx=True)
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        html = browser.get(f"/conversations/{conv.id}", htmx=True).get_data(as_text=True)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert shown_emails(html) == list(range(61 - workspace.LATEST, 61))
    whole = [
        s
        for s in statements
        if "FROM messages" in s and "ORDER BY messages.id" in s and "messages.text_body" in s
    ]
    # The latest ones only: beyond the fold point (a subquery of the same statement).
    assert len(whole) == 1 and "messages.id > coalesce((SELECT" in whole[0], whole
    # The session, the conversation (with its inbox and contact), the messages with their
    # attachments, one aggregate, the people, the drafts, the labels, the contact panel's
    # participants, inbox addresses and earlier conversations, Bob's memberships, and the
    # conversation's participants (the composer's reply-all, services/participants.py).
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) <= 13, "\n".join(selects)
