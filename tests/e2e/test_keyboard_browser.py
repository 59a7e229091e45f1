"""Every keyboard shortcut of static/keys.js in Chromium: j / k / Enter / x in the list, r / n /
a / l / e on the open thread, / to search, ? for the shortcuts dialog (Escape closes it), and
none of them while typing in a field."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from extensions import db
from models import Conversation, InboxMember, utcnow
from tests.e2e.conftest import serious_violations
from tests.support.workspace import quick_conversation

pytestmark = pytest.mark.e2e


@pytest.fixture
def agent(support, make_user):
    user = make_user(email="ana@example.com", name="Ana Agent")
    db.session.add(InboxMember(inbox_id=support.id, user_id=user.id))
    db.session.commit()
    return user


@pytest.fixture
def three(support):
    now = utcnow()
    return [
        quick_conversation(support, subject, at=now - timedelta(minutes=n))
        for n, subject in enumerate(("First", "Second", "Third"))
    ]


def focused_row(page) -> str | None:
    return page.evaluate(
        "(() => { const row = document.activeElement.closest('.conv-row');"
        " return row ? row.id : null; })()"
    )


def blur(page) -> None:
    page.evaluate("document.activeElement && document.activeElement.blur()")


def test_list_shortcuts_j_k_x_enter_and_search(page, sign_in, agent, three):
    first, second, third = three
    sign_in(agent.email, agent.plain_password)
    page.goto("/conversations")
    keyboard = page.keyboard
    keyboard.press("j")
    assert focused_row(page) == f"row-{first.id}"
    keyboard.press("j")
    keyboard.press("j")
    assert focused_row(page) == f"row-{third.id}"
    keyboard.press("j")  # the last row stays the last
    assert focused_row(page) == f"row-{third.id}"
    keyboard.press("k")
    assert focused_row(page) == f"row-{second.id}"

    keyboard.press("x")  # tick it for the bulk bar
    expect(page.locator(f"#row-{second.id} .row-select")).to_be_checked()
    expect(page.locator("#bulk-form [data-selected-count]")).to_have_text("1 selected")
    keyboard.press("x")
    expect(page.locator(f"#row-{second.id} .row-select")).not_to_be_checked()

    keyboard.press("Enter")
    expect(page.locator("#open-conversation")).to_have_value(str(second.id))
    expect(page).to_have_url(re.compile(rf"/conversations/{second.id}$"))

    keyboard.press("/")
    search = page.locator("[data-search]")
    expect(search).to_be_focused()
    keyboard.type("jkx")  # typing: no shortcut fires
    expect(search).to_have_value("jkx")
    expect(page.locator(".row-select:checked")).to_have_count(0)
    keyboard.press("Enter")  # the search itself
    expect(page).to_have_url(re.compile(r"q=jkx"))


def test_question_mark_shows_the_shortcuts_and_escape_closes_them(page, sign_in, agent, three):
    sign_in(agent.email, agent.plain_password)
    page.goto("/conversations")
    page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(dialog).to_be_visible()
    for key in ("j", "k", "Enter", "r", "n", "e", "a", "l", "/", "?"):
        expect(dialog.locator("kbd", has_text=re.compile(rf"^{re.escape(key)}$"))).to_have_count(1)
    expect(dialog.get_by_role("button", name="Close")).to_be_focused()
    assert serious_violations(page) == []
    page.keyboard.press("j")  # the dialog is modal: the list's keys wait
    assert focused_row(page) is None
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    page.keyboard.press("?")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()

    # Elsewhere too: on home, "?" and "/" work as well.
    page.goto("/")
    page.keyboard.press("/")
    expect(page.locator("[data-search]")).to_be_focused()
    blur(page)
    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()


def test_thread_shortcuts_r_n_a_l_and_e(page, sign_in, agent, three):
    first, second, _ = three
    sign_in(agent.email, agent.plain_password)
    page.goto(f"/conversations/{first.id}")
    text = page.locator("[data-composer-text]")

    page.keyboard.press("n")
    expect(page.locator('[data-composer-mode="note"], [data-composer-tab="note"]')).to_have_count(1)
    note = page.locator('[data-composer-mode="note"]')
    if note.count():
        expect(note).to_be_checked()
    expect(text).to_be_focused()
    page.keyboard.type("an")  # typed into the note, not shortcuts
    expect(text).to_have_value("an")
    blur(page)
    page.keyboard.press("r")
    reply = page.locator('[data-composer-mode="reply"]')
    if reply.count():
        expect(reply).to_be_checked()
    expect(text).to_be_focused()
    blur(page)

    page.keyboard.press("a")
    assign = page.locator('[data-menu="assign"], #thread details#menu-assign').first
    expect(assign).to_have_attribute("open", "")
    assert page.evaluate("document.activeElement.closest('details') !== null")
    page.keyboard.press("Escape")
    blur(page)
    page.keyboard.press("l")
    labels = page.locator('[data-menu="labels"], #thread details#menu-labels').first
    expect(labels).to_have_attribute("open", "")
    page.keyboard.press("Escape")
    blur(page)

    page.keyboard.press("e")  # resolve, then the next conversation of the list
    expect(page.locator("#open-conversation")).to_have_value(str(second.id))
    db.session.expire_all()
    assert db.session.get(Conversation, first.id).status == "resolved"
