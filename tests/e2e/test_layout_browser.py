"""One visual language in a real Chromium: the top bar (a menu on a phone, the current section
marked), the favicon, error pages laid out like the rest, no sideways scrolling at 390 px,
and the contact panel beside a thread (name and notes edited in place, the contact page one
click away). Screenshots at 1280 and 390 px go to $TEST_ARTIFACTS (else tmp_path)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from extensions import db
from models import Contact, InboxMember, Message
from tests.e2e.conftest import serious_violations
from tests.support.screens import PHONE, artifacts, check_both_widths, sideways_overflow
from tests.support.workspace import quick_conversation

pytestmark = pytest.mark.e2e


@pytest.fixture
def admin(app, make_user):
    return make_user(email="ana@example.com", name="Ana Admin", role="admin")


@pytest.fixture
def agent(app, make_user, support):
    user = make_user(email="bob@example.com", name="Bob Agent")
    db.session.add(InboxMember(inbox_id=support.id, user_id=user.id))
    db.session.commit()
    return user


@pytest.fixture
def jane(support):
    """Jane wrote twice; the latest copies her manager and finance."""
    quick_conversation(
        support, "Order #1042 arrived damaged", email="jane@customer.example", name="Jane Doe"
    )
    current = quick_conversation(
        support,
        "Where is my refund?",
        email="jane@customer.example",
        text="Hello, I returned the parcel two weeks ago and I am still waiting for my refund.",
    )
    db.session.add(
        Message(
            conversation_id=current.id,
            inbox_id=support.id,
            direction="incoming",
            contact_id=current.contact_id,
            from_address="Jane Doe <jane@customer.example>",
            to_addresses="support@example.com",
            cc_addresses='"Mark Manager" <mark@customer.example>, finance@customer.example',
            text_body="Adding my manager and our finance team.",
            delivery_status="received",
        )
    )
    db.session.commit()
    return current


def nav(page):
    return page.get_by_role("navigation", name="Main")


def test_top_bar_collapses_into_a_menu_on_a_phone(page, sign_in, admin, support, tmp_path):
    sign_in(admin.email, admin.plain_password)
    page.set_viewport_size({"width": PHONE[0], "height": PHONE[1]})
    page.goto("/conversations")
    toggle = page.get_by_role("button", name="Menu")
    expect(toggle).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(nav(page)).to_be_hidden()
    assert sideways_overflow(page) <= 0

    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(nav(page).get_by_role("link", name="Agents")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    page.screenshot(path=str(artifacts(tmp_path) / "topbar-menu-open-390.png"))
    assert serious_violations(page) == []
    page.keyboard.press("Escape")
    expect(nav(page)).to_be_hidden()
    expect(toggle).to_be_focused()

    # The keyboard alone: open it, tab to a section, follow it.
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("Tab")
    expect(nav(page).get_by_role("link", name="Conversations")).to_be_focused()
    for _ in ("Inboxes", "Saved replies", "Agents"):
        page.keyboard.press("Tab")
    expect(nav(page).get_by_role("link", name="Agents")).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_url("**/admin/agents")
    toggle.click()
    expect(nav(page).get_by_role("link", name="Agents")).to_have_attribute("aria-current", "page")

    # A click outside closes it.
    page.mouse.click(200, 700)
    expect(nav(page)).to_be_hidden()

    # A tablet gets the menu too; on a laptop the sections are simply there, no Menu button.
    page.set_viewport_size({"width": 800, "height": 1000})
    expect(toggle).to_be_visible()
    assert sideways_overflow(page) <= 0
    page.set_viewport_size({"width": 1280, "height": 800})
    expect(toggle).to_be_hidden()
    expect(nav(page).get_by_role("link", name="Agents")).to_be_visible()


def test_navigation_marks_the_current_section(page, sign_in, admin, support):
    sign_in(admin.email, admin.plain_password)
    for path, current in (
        ("/conversations", "Conversations"),
        ("/admin/inboxes", "Inboxes"),
        ("/admin/agents", "Agents"),
        ("/admin/system", "System"),
        ("/saved-replies", "Saved replies"),
    ):
        page.goto(path)
        marked = nav(page).locator("a[aria-current='page']")
        expect(marked).to_have_count(1)
        expect(marked).to_have_text(current)
        background = marked.evaluate("a => getComputedStyle(a).backgroundColor")
        other = nav(page).locator("a:not([aria-current])").first
        assert background != other.evaluate("a => getComputedStyle(a).backgroundColor")
    page.goto("/profile")
    expect(nav(page).locator("a[aria-current='page']")).to_have_count(0)
    expect(page.locator(".who")).to_have_attribute("aria-current", "page")


def test_favicon_is_linked_and_served(page, sign_in, admin):
    page.goto("/login")
    href = page.locator("link[rel=icon]").get_attribute("href")
    assert href.endswith("favicon.svg")
    response = page.request.get(href)
    assert response.status == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in response.body()


def test_error_page_is_laid_out_like_the_rest(page, sign_in, agent, tmp_path):
    sign_in(agent.email, agent.plain_password)
    response = page.goto("/conversations/999999")
    assert response.status == 404
    expect(page.locator("header.topbar")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Not Found")
    expect(page.locator(".error-page")).to_contain_text("No such conversation.")
    check_both_widths(page, tmp_path, "error-404")
    page.get_by_role("link", name="Back to Threadline").click()
    page.wait_for_load_state()
    assert "/conversations/999999" not in page.url


def test_contact_panel_beside_the_thread(page, sign_in, agent, jane, tmp_path):
    sign_in(agent.email, agent.plain_password)
    page.goto(f"/conversations/{jane.id}")
    panel = page.get_by_role("complementary", name="Contact")
    expect(panel).to_contain_text("Jane Doe")
    expect(panel.get_by_role("link", name="jane@customer.example")).to_be_visible()
    expect(panel).to_contain_text("Mark Manager")
    expect(panel).to_contain_text("finance@customer.example")
    expect(panel.get_by_role("link", name="Order #1042 arrived damaged")).to_be_visible()
    expect(panel.get_by_label("Notes about this contact")).to_be_visible()
    check_both_widths(page, tmp_path, "contact-panel")
    # A wide screen has room for the panel beside the messages (a container query).
    page.set_viewport_size({"width": 1600, "height": 900})
    composer_box = page.locator(".composer").first.bounding_box()
    panel_box = panel.bounding_box()
    assert panel_box["x"] > composer_box["x"] + composer_box["width"], "not beside"
    page.screenshot(path=str(artifacts(tmp_path) / "contact-panel-1600.png"), full_page=True)
    assert sideways_overflow(page) <= 0
    page.set_viewport_size({"width": 1280, "height": 800})

    # The name, edited in place.
    panel.get_by_text("Edit name").click()
    panel.get_by_label("Name", exact=True).fill("Jane Q. Doe")
    panel.get_by_role("button", name="Save name").click()
    expect(panel.get_by_role("status")).to_have_text("Name saved.")
    expect(panel.locator(".contact-name")).to_have_text("Jane Q. Doe")
    expect(page.locator(".thread-head").get_by_role("link", name="Jane Q. Doe")).to_be_visible()

    # Notes, with the keyboard alone.
    notes = panel.get_by_label("Notes about this contact")
    notes.fill("Prefers email. VIP since 2021.")
    page.keyboard.press("Tab")
    expect(panel.get_by_role("button", name="Save notes")).to_be_focused()
    page.keyboard.press("Enter")
    expect(panel.get_by_text("Notes saved.")).to_be_visible()
    page.reload()
    expect(panel.get_by_label("Notes about this contact")).to_have_value(
        "Prefers email. VIP since 2021."
    )
    assert db.session.get(Contact, jane.contact_id).name == "Jane Q. Doe"

    # One click to the contact page.
    panel.get_by_role("link", name="Open contact page").click()
    page.wait_for_url(f"**/contacts/{jane.contact_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Jane Q. Doe")
    expect(page.get_by_role("link", name="Where is my refund?")).to_be_visible()
    check_both_widths(page, tmp_path, "contact-page")


def test_contact_panel_folds_on_a_phone(page, sign_in, agent, jane):
    sign_in(agent.email, agent.plain_password)
    page.set_viewport_size({"width": PHONE[0], "height": PHONE[1]})
    page.goto(f"/conversations/{jane.id}")
    panel = page.get_by_role("complementary", name="Contact")
    expect(panel.get_by_text("Mark Manager")).to_be_visible()
    panel.locator("summary").first.click()
    expect(panel.get_by_text("Mark Manager")).to_be_hidden()
    assert sideways_overflow(page) <= 0


def test_no_sideways_scroll_on_a_phone(page, sign_in, agent, jane):
    sign_in(agent.email, agent.plain_password)
    page.set_viewport_size({"width": PHONE[0], "height": PHONE[1]})
    for path in (
        "/conversations",
        f"/conversations/{jane.id}",
        "/profile",
        f"/contacts/{jane.contact_id}",
        "/",
    ):
        page.goto(path)
        page.wait_for_timeout(50)
        assert sideways_overflow(page) <= 0, f"{path} scrolls sideways at 390 px"
        assert serious_violations(page) == [], path
