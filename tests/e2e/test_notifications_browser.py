"""Notifications in a real Chromium: an @mention chosen by keyboard in a note reaches the
colleague (bell, Mentions view, the highlighted note, read once the thread is open), and the
bell follows a customer's new email without a reload, with a desktop notification while the
tab is hidden.

Screenshots (mention-autocomplete-*.png, notifications-list-*.png, notification-settings-*.png
at 1280 and 390 px) go to
$TEST_ARTIFACTS, else the test's tmp_path; axe-core runs at both widths.
"""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from extensions import db
from models import Inbox, InboxMember, Message, Notification
from models.enums import NotificationEvent as Event
from services.notifications import events
from tests.support.inbound import post_relay, work_inbound
from tests.support.screens import check_both_widths

pytestmark = pytest.mark.e2e

POLL = 20_000  # the bell polls every 15 s
UNSTYLE = "document.querySelectorAll('[style=\"\"]').forEach(e => e.removeAttribute('style'))"

# Headless Chromium shows no system notifications and its tab is never hidden: the page gets a
# stand-in for the Notification API that records what it was asked to show, and a switch for
# document.hidden. Everything else (the poll, the bell, static/notifications.js) is real.
FAKE_NOTIFICATIONS = """
window.__shown = [];
window.__hidden = false;
window.Notification = class {
  constructor(title, options) {
    window.__shown.push({title, body: options.body, tag: options.tag});
  }
  static requestPermission() {
    window.Notification.permission = "granted";
    return Promise.resolve("granted");
  }
  addEventListener() {}
  close() {}
};
window.Notification.permission = "default";
Object.defineProperty(Document.prototype, "hidden", {
  configurable: true, get: () => window.__hidden,
});
"""


@pytest.fixture
def team(app, make_user):
    inbox = Inbox(name="Support", support_address="support@example.com")
    db.session.add(inbox)
    db.session.commit()
    ana = make_user(email="ana@example.com", name="Ana Agent")
    bob = make_user(email="bob@example.com", name="Bob Builder")
    bobby = make_user(email="bobby@example.com", name="Bobby Tables")
    for user in (ana, bob, bobby):
        db.session.add(InboxMember(inbox_id=inbox.id, user_id=user.id))
    db.session.commit()
    return ana, bob, bobby


def receive(app, subject: str):
    """A customer's email through the relay ingress and the inbound job."""
    message = EmailMessage()
    message["From"] = "Carla Customer <carla@customer.example>"
    message["To"] = "support@example.com"
    message["Subject"] = subject
    message["Message-ID"] = f"<{abs(hash(subject))}@customer.example>"
    message.set_content("Help, it is burning.")
    post_relay(app.test_client(), message.as_bytes())
    work_inbound(app)
    return db.session.scalar(select(Message).where(Message.subject == subject)).conversation


def screens(page, tmp_path, name: str) -> None:
    check_both_widths(page, tmp_path, name)
    page.evaluate(UNSTYLE)  # axe-core leaves style="" behind, which htmx's settle would copy


def signed_in_page(browser, live_server, user):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.add_init_script(FAKE_NOTIFICATIONS)
    page.goto("/login")
    page.get_by_label("Email", exact=True).fill(user.email)
    page.get_by_label("Password", exact=True).fill(user.plain_password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#notification-bell")).to_be_visible()
    return context, page


def test_a_mention_chosen_by_keyboard_reaches_the_colleague(
    app, browser, page, sign_in, team, live_server, tmp_path
):
    ana, bob, _bobby = team
    conversation = receive(app, "Printer on fire")
    db.session.query(Notification).delete()  # the new conversation's own: not this test's
    db.session.commit()
    sign_in(ana.email, ana.plain_password)
    page.goto(f"/conversations/{conversation.id}")
    composer = page.locator("#composer")
    expect(composer).to_be_visible()
    text = composer.locator("textarea[data-composer-text]")
    listbox = page.get_by_role("listbox", name="People to mention")

    # Keyboard only: "n" is the Note tab with the focus in the text (static/keys.js).
    page.locator("body").press("n")
    expect(composer.get_by_role("radio", name="Internal note")).to_be_checked()
    expect(text).to_be_focused()
    page.keyboard.type("Please check the toner, @bo")
    expect(listbox).to_be_visible()
    options = listbox.get_by_role("option")
    expect(options).to_have_count(2)
    expect(options.nth(0)).to_contain_text("Bob Builder")
    expect(options.nth(1)).to_contain_text("Bobby Tables")
    expect(options.nth(0)).to_have_attribute("aria-selected", "true")
    expect(text).to_have_attribute("aria-controls", f"mentions-{conversation.id}")
    expect(text).to_have_attribute("aria-activedescendant", f"mentions-{conversation.id}-0")
    expect(composer.locator("[data-mention-status]")).to_contain_text("2 people match")
    page.keyboard.press("ArrowDown")
    expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    expect(text).to_have_attribute("aria-activedescendant", f"mentions-{conversation.id}-1")
    page.keyboard.press("ArrowDown")  # round to the first again
    expect(options.nth(0)).to_have_attribute("aria-selected", "true")
    # Typing on narrows the list; Escape closes it, and typing on does not reopen it.
    page.keyboard.type("b")
    expect(options).to_have_count(2)
    page.keyboard.press("Escape")
    expect(listbox).to_be_hidden()
    expect(text).to_be_focused()
    assert text.get_attribute("aria-controls") is None
    page.keyboard.type("x")
    expect(listbox).to_be_hidden()
    for _ in range(len("@bobx")):
        page.keyboard.press("Backspace")
    page.keyboard.type("@Tab")  # "Tables": a word of Bobby's name
    expect(options).to_have_count(1)
    expect(options.first).to_contain_text("Bobby Tables")
    for _ in range(len("Tab")):
        page.keyboard.press("Backspace")
    page.keyboard.type("buil")
    expect(options).to_have_count(1)
    expect(options.first).to_contain_text("Bob Builder")
    screens(page, tmp_path, "mention-autocomplete")
    page.keyboard.press("Enter")  # chooses; no new line
    expect(listbox).to_be_hidden()
    expect(text).to_have_value("Please check the toner, @Bob Builder ")
    page.keyboard.type("thanks!")
    # Tab chooses too.
    page.keyboard.type(" And @an")
    expect(options).to_have_count(0)  # Ana is me: never offered
    page.keyboard.press("Backspace")
    page.keyboard.press("Backspace")
    page.keyboard.type("bobby")
    page.keyboard.press("Tab")
    expect(text).to_have_value("Please check the toner, @Bob Builder thanks! And @Bobby Tables ")
    expect(text).to_be_focused()
    composer.get_by_role("button", name="Add note", exact=True).focus()
    page.keyboard.press("Enter")
    note = page.locator("#thread-messages .msg-note", has_text="toner")
    expect(note).to_have_count(1)
    expect(note.locator("mark.mention")).to_have_text(["@Bob Builder", "@Bobby Tables"])

    # A mention typed in the Reply tab is an address, not a mention: no list.
    page.locator("body").press("r")
    page.keyboard.type("Write to @bo")
    expect(listbox).to_be_hidden()

    # Bob, in his own browser: the bell says so, the Mentions view shows it.
    context, bobs = signed_in_page(browser, live_server, bob)
    try:
        bell = bobs.locator("#notification-bell")
        expect(bell).to_have_attribute("aria-label", "Notifications, 1 unread")
        expect(bell.locator(".bell-count")).to_have_text("1")
        bell.focus()
        bobs.keyboard.press("Enter")
        expect(bobs).to_have_url(f"{live_server.url}/notifications")
        bobs.get_by_role("link", name="Mentions").focus()
        bobs.keyboard.press("Enter")
        expect(bobs.get_by_role("link", name="Mentions")).to_have_attribute("aria-current", "page")
        item = bobs.locator(".notification.unread")
        expect(item).to_have_count(1)
        expect(item).to_contain_text("Ana Agent mentioned you in a note")
        expect(item).to_contain_text(f"#{conversation.display_number} Printer on fire")
        expect(item).to_contain_text("Please check the toner")
        expect(bobs.get_by_role("button", name="Turn on desktop notifications")).to_be_visible()
        screens(bobs, tmp_path, "notifications-list")

        # Opening it: the thread, the mention highlighted, and read (the bell without reload).
        item.get_by_role("link").focus()
        bobs.keyboard.press("Enter")
        expect(bobs.locator("#thread mark.mention").first).to_have_text("@Bob Builder")
        expect(bobs.locator("#notification-bell")).to_have_attribute(
            "aria-label", "Notifications, none unread"
        )
        expect(bobs.locator("#notification-bell .bell-count")).to_have_count(0)
        db.session.expire_all()
        assert db.session.scalar(select(Notification.read_at).where(Notification.user_id == bob.id))
    finally:
        context.close()


def test_the_bell_follows_new_email_without_a_reload(app, browser, team, live_server, tmp_path):
    _ana, bob, _bobby = team
    context, page = signed_in_page(browser, live_server, bob)
    try:
        page.goto("/notifications")
        bell = page.locator("#notification-bell")
        expect(bell).to_have_attribute("aria-label", "Notifications, none unread")
        expect(page.get_by_text("Nothing yet")).to_be_visible()

        # Desktop notifications: asked for only when the button is pressed (keyboard).
        button = page.get_by_role("button", name="Turn on desktop notifications")
        button.focus()
        page.keyboard.press("Enter")
        expect(button).to_be_hidden()
        status = page.locator("[data-desktop-notifications-status]")
        expect(status).to_contain_text("Desktop notifications are on in this browser")
        expect(status).to_be_focused()

        # The tab goes to the background; a customer writes (relay ingress, inbound job).
        page.evaluate("window.__hidden = true")
        page.evaluate("document.body.dataset.sameDocument = 'yes'")
        conversation = receive(app, "Printer on fire")
        expect(bell).to_have_attribute("aria-label", "Notifications, 1 unread", timeout=POLL)
        expect(bell.locator(".bell-count")).to_have_text("1")
        assert page.evaluate("document.body.dataset.sameDocument") == "yes", "the page reloaded"
        # The script pops it up after the bell is swapped in: wait for it, not for a time.
        page.wait_for_function("(window.__shown || []).length > 0")
        shown = page.evaluate("window.__shown")
        newest = db.session.scalar(
            select(Notification.id).where(
                Notification.user_id == bob.id, Notification.event == Event.NEW_CONVERSATION
            )
        )
        assert shown == [
            {
                "title": "Carla Customer started a new conversation",
                "body": f"#{conversation.display_number} Printer on fire",
                "tag": f"threadline-{newest}",
            }
        ]

        # In the foreground, the next one updates the bell but pops nothing up.
        page.evaluate("window.__hidden = false")
        receive(app, "Second printer on fire")
        expect(bell).to_have_attribute("aria-label", "Notifications, 2 unread", timeout=POLL)
        assert len(page.evaluate("window.__shown")) == 1

        # "Mark all read", by keyboard: the list and the bell at once.
        page.reload()
        expect(page.locator(".notification.unread")).to_have_count(2)
        page.get_by_role("button", name="Mark all read").focus()
        page.keyboard.press("Enter")
        expect(
            page.get_by_role("status").filter(has_text="2 notifications marked read.")
        ).to_be_visible()
        expect(page.locator(".notification.unread")).to_have_count(0)
        expect(bell).to_have_attribute("aria-label", "Notifications, none unread")

        # What he hears about, on his profile page: by keyboard, saved.
        page.goto("/profile#notifications")
        box = page.get_by_role("checkbox", name="In the app New conversation")
        expect(box).to_be_checked()
        screens(page, tmp_path, "notification-settings")
        box.focus()
        page.keyboard.press("Space")
        page.get_by_role("button", name="Save notification settings").focus()
        page.keyboard.press("Enter")
        expect(page.get_by_text("Your notification settings are saved.")).to_be_visible()
        expect(page.get_by_role("checkbox", name="In the app New conversation")).not_to_be_checked()
        receive(app, "Third printer on fire")
        page.wait_for_timeout(500)
        db.session.expire_all()
        assert events.unread_count(bob) == 0
    finally:
        context.close()
