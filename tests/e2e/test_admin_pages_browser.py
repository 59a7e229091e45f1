"""The admin pages in a real headless Chromium: every one at 1280 and 390 px (screenshots, no
sideways scrolling, no serious axe-core finding), archiving an inbox (mail to it is bounced
with a reason, then it is unarchived), deleting an empty one, the Inbound log's search and
the profile's time-zone picker preselected from the browser's zone.

Screenshots go to $TEST_ARTIFACTS (the test's tmp_path when unset), named admin-*.png.
"""

from __future__ import annotations

import re
from email.message import EmailMessage

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from extensions import db
from models import ImapSettings, InboundEmail, Inbox, InboxMember
from tests.support.inbound import post_relay, work_inbound
from tests.support.screens import check_both_widths

pytestmark = pytest.mark.e2e

DOMAIN = "in.example.com"


@pytest.fixture
def app_config(app_config):
    return {**app_config, "MAILER_INBOUND_EMAIL_DOMAIN": DOMAIN}


def raw_email(message_id: str, to="support@example.com", subject="Printer on fire") -> bytes:
    message = EmailMessage()
    message["From"] = "Carla Customer <carla@customer.example>"
    message["To"], message["Subject"] = to, subject
    message["Message-ID"] = f"<{message_id}>"
    message.set_content("It is still burning.\n")
    return message.as_bytes()


@pytest.fixture
def office(app, client, make_user):
    """An admin, an agent, a forwarding inbox with mail, an IMAP inbox needing attention and
    an empty one."""
    admin = make_user(email="rita@example.com", name="Rita Admin", role="admin")
    agent = make_user(email="ana@example.com", name="Ana Agent")
    support = Inbox(name="Support", support_address="support@example.com")
    mailbox = Inbox(name="Sales mailbox", support_address="sales@example.com", mode="imap")
    mailbox.imap = ImapSettings(host="imap.example.com", username="sales", password="secret")
    mailbox.needs_attention = "IMAP sign-in failed: [AUTHENTICATIONFAILED] Invalid credentials"
    empty = Inbox(name="Empty", support_address="empty@example.com")
    db.session.add_all([support, mailbox, empty])
    db.session.flush()
    db.session.add(InboxMember(inbox_id=support.id, user_id=agent.id))
    db.session.commit()
    post_relay(client, raw_email("one@customer.example"))
    post_relay(client, raw_email("two@customer.example", "nobody@example.com", "Lost invoice"))
    work_inbound(app)
    return type(
        "Office",
        (),
        {"admin": admin, "agent": agent, "support": support, "mailbox": mailbox, "empty": empty},
    )


def test_every_admin_page_fits_a_phone_and_passes_axe(page, sign_in, office, tmp_path):
    sign_in(office.admin.email, office.admin.plain_password)
    support, mailbox = office.support, office.mailbox

    page.goto("/admin/inboxes")
    expect(page.locator(f"#inbox-{support.id}")).to_contain_text("OK")
    expect(page.locator(f"#inbox-{mailbox.id}")).to_contain_text("needs attention")
    expect(page.locator(f"#inbox-{office.empty.id}")).to_contain_text("never received")
    check_both_widths(page, tmp_path, "admin-inboxes")

    page.get_by_role("link", name="Support", exact=True).click()
    expect(page.get_by_role("heading", name="Name and address")).to_be_visible()
    check_both_widths(page, tmp_path, "admin-settings-basics")
    nav = page.get_by_role("navigation", name="Settings sections")
    for tab, name in (
        ("Connection", "connection"),
        ("Identity", "identity"),
        ("Agents", "agents"),
        ("Archive or delete", "archive"),
    ):
        nav.get_by_role("link", name=tab).click()
        expect(nav.get_by_role("link", name=tab)).to_have_attribute("aria-current", "page")
        expect(page.get_by_role("button", name=re.compile("^Save|^Archive"))).to_have_count(1)
        if name == "connection":  # a forwarding inbox: no IMAP fields, the optional SMTP
            expect(page.get_by_label("IMAP host")).to_be_hidden()
            expect(page.get_by_label("SMTP host")).to_be_visible()
            # Choosing IMAP/SMTP shows its fields at once.
            page.get_by_role("radio", name=re.compile("^IMAP")).check()
            expect(page.get_by_label("IMAP host")).to_be_visible()
            page.get_by_role("radio", name=re.compile("^Forwarding")).check()
            expect(page.get_by_label("IMAP host")).to_be_hidden()
        check_both_widths(page, tmp_path, f"admin-settings-{name}")

    # Addresses: an alias added from the keyboard, listed as not verified yet.
    nav.get_by_role("link", name="Addresses").click()
    page.get_by_label("Another address of this inbox").fill("orders@example.org")
    page.keyboard.press("Enter")
    aliases = page.locator(".alias-list")
    expect(aliases).to_contain_text("orders@example.org")
    expect(aliases).to_contain_text("Not verified")
    expect(page.get_by_role("button", name="Send test email to orders@example.org")).to_be_visible()
    check_both_widths(page, tmp_path, "admin-settings-aliases")

    page.goto(f"/admin/inboxes/{mailbox.id}/settings?section=connection")
    expect(page.get_by_label("IMAP host")).to_have_value("imap.example.com")
    expect(page.get_by_text("Needs attention:")).to_be_visible()
    check_both_widths(page, tmp_path, "admin-settings-connection-imap")

    page.goto(f"/admin/inboxes/{support.id}/health")
    expect(page.locator("#health-status")).to_contain_text("OK")
    check_both_widths(page, tmp_path, "admin-health")
    page.goto(f"/admin/inboxes/{mailbox.id}/health")
    check_both_widths(page, tmp_path, "admin-health-imap")

    page.goto(f"/admin/inboxes/{support.id}/test")
    expect(page.get_by_role("button", name="Inject a sample email")).to_be_visible()
    check_both_widths(page, tmp_path, "admin-test-mail")

    page.goto("/admin/inbound")
    expect(page.locator(".inbound-table")).to_contain_text("Lost invoice")
    check_both_widths(page, tmp_path, "admin-inbound")

    page.goto("/admin/agents")
    check_both_widths(page, tmp_path, "admin-agents")
    page.goto(f"/admin/agents/{office.agent.id}")
    check_both_widths(page, tmp_path, "admin-agent")

    page.goto("/admin/system")
    check_both_widths(page, tmp_path, "admin-system")

    page.goto("/profile")
    check_both_widths(page, tmp_path, "admin-profile")


def test_every_wizard_step_fits_a_phone_and_passes_axe(page, sign_in, office, tmp_path):
    sign_in(office.admin.email, office.admin.plain_password)
    page.goto("/admin/inboxes/new")
    check_both_widths(page, tmp_path, "admin-wizard-name")
    page.get_by_label("Inbox name").fill("Billing")
    page.get_by_label("Support address").fill("billing@example.com")
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text("Step 2 of 6")).to_be_visible()
    check_both_widths(page, tmp_path, "admin-wizard-mode")
    page.get_by_role("radio", name=re.compile("^Forwarding")).check()
    page.get_by_role("button", name="Next").click()
    expect(page.locator("#forwarding-address")).to_be_visible()
    check_both_widths(page, tmp_path, "admin-wizard-forwarding")
    page.get_by_role("button", name="Back").click()
    page.get_by_role("radio", name=re.compile("^IMAP")).check()
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_label("IMAP host")).to_be_visible()
    check_both_widths(page, tmp_path, "admin-wizard-connection")
    page.get_by_role("button", name="Back").click()
    page.get_by_role("radio", name=re.compile("^Forwarding")).check()
    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text("Step 4 of 6")).to_be_visible()
    check_both_widths(page, tmp_path, "admin-wizard-identity")
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text("Step 5 of 6")).to_be_visible()
    check_both_widths(page, tmp_path, "admin-wizard-agents")


def test_archive_refuses_mail_with_a_reason_then_unarchive(app, client, page, sign_in, office):
    sign_in(office.admin.email, office.admin.plain_password)
    page.goto(f"/admin/inboxes/{office.support.id}/settings?section=archive")
    page.get_by_role("button", name="Archive this inbox").click()
    expect(page.get_by_text("is archived: it receives no new mail")).to_be_visible()
    expect(page.get_by_role("button", name="Unarchive: receive mail again")).to_be_visible()

    post_relay(client, raw_email("late@customer.example", subject="Sent after archiving"))
    work_inbound(app)
    page.goto("/admin/inbound?q=after+archiving")
    row = page.locator(".inbound-row", has_text="Sent after archiving")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("bounced")
    expect(row.locator(".reason")).to_contain_text("support@example.com")
    row_id = db.session.scalar(
        select(InboundEmail.id).where(InboundEmail.message_id == "late@customer.example")
    )

    page.goto("/admin/inboxes")
    expect(page.locator(f"#inbox-{office.support.id}")).to_contain_text("archived")
    page.get_by_role("link", name="Support", exact=True).click()
    page.get_by_role("link", name="Unarchive").click()
    page.get_by_role("button", name="Unarchive: receive mail again").click()
    expect(page.get_by_text("receives mail again")).to_be_visible()

    page.goto("/admin/inbound?q=after+archiving")
    page.locator(f"#inbound-{row_id}").get_by_role("button", name="Reprocess").click()
    expect(page.locator(f"#inbound-{row_id}")).to_contain_text("queued for processing")
    work_inbound(app)
    page.reload()
    expect(page.locator(f"#inbound-{row_id}")).to_contain_text("delivered")


def test_delete_an_empty_inbox_after_confirming(page, sign_in, office):
    sign_in(office.admin.email, office.admin.plain_password)
    page.goto(f"/admin/inboxes/{office.support.id}/settings?section=archive")
    expect(page.get_by_text("so it cannot be deleted: archive it instead")).to_be_visible()
    expect(page.get_by_role("button", name="Delete this inbox")).to_have_count(0)

    page.goto(f"/admin/inboxes/{office.empty.id}/settings?section=archive")
    page.get_by_role("button", name="Delete this inbox").click()
    expect(page.get_by_text("Tick the box to confirm")).to_be_visible()
    page.get_by_label("I understand that deleting this inbox cannot be undone").check()
    page.get_by_role("button", name="Delete this inbox").click()
    expect(page).to_have_url(re.compile(r"/admin/inboxes$"))
    expect(page.get_by_text("The inbox “Empty” is deleted.")).to_be_visible()
    expect(page.get_by_role("link", name="Empty", exact=True)).to_have_count(0)


def test_inbound_log_search(page, sign_in, office):
    sign_in(office.admin.email, office.admin.plain_password)
    page.goto("/admin/inbound")
    table = page.locator(".inbound-table")
    expect(table).to_contain_text("carla@customer.example")
    expect(table).to_contain_text("Printer on fire")
    expect(table).to_contain_text("Lost invoice")
    page.get_by_label("Search", exact=True).fill("invoice")
    page.get_by_label("Search", exact=True).press("Enter")
    expect(page).to_have_url(re.compile(r"q=invoice"))
    expect(table).to_contain_text("Lost invoice")
    expect(table).not_to_contain_text("Printer on fire")
    page.get_by_label("Search", exact=True).fill("no such mail")
    page.get_by_label("Search", exact=True).press("Enter")
    expect(page.get_by_text("matching “no such mail”")).to_be_visible()


@pytest.fixture
def berlin_page(browser, live_server):
    context = browser.new_context(
        base_url=live_server.url,
        timezone_id="Europe/Berlin",
        viewport={"width": 1280, "height": 800},
    )
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_time_zone_picker_is_preselected_from_the_browser(berlin_page, office, tmp_path):
    page = berlin_page
    page.goto("/login")
    page.get_by_label("Email", exact=True).fill(office.agent.email)
    page.get_by_label("Password", exact=True).fill(office.agent.plain_password)
    page.get_by_role("button", name="Sign in").click()
    page.goto("/profile")
    field = page.get_by_label("Snooze times are typed and shown in")
    expect(field).to_have_value("Europe/Berlin")
    expect(page.get_by_text("Filled in from your browser's time zone")).to_be_visible()
    assert page.locator("#timezone-zones option").count() > 300  # searchable: a datalist
    page.get_by_role("button", name="Save time zone").click()
    expect(page.get_by_text("Times are now shown in Europe/Berlin.")).to_be_visible()
    db.session.expire_all()
    db.session.refresh(office.agent)
    assert office.agent.timezone == "Europe/Berlin"
    # Another zone typed loosely is understood; the browser's stays one click away.
    field.fill("asia/tokyo")
    page.get_by_role("button", name="Save time zone").click()
    expect(page.get_by_text("Times are now shown in Asia/Tokyo.")).to_be_visible()
    expect(field).to_have_value("Asia/Tokyo")  # a chosen zone is never overwritten
    expect(page.get_by_text("Filled in from your browser's time zone")).to_be_hidden()
    page.get_by_role("button", name="Use it").click()
    expect(field).to_have_value("Europe/Berlin")
    expect(page.get_by_role("button", name="Use it")).to_be_hidden()
    check_both_widths(page, tmp_path, "admin-profile-timezone")


def test_refused_posts_are_reached_from_the_inbound_log(page, client, sign_in, office, tmp_path):
    from tests.support.ingress_requests import RELAY_URL, basic_auth

    refused = raw_email("refused@customer.example", subject="Refund for order 1234")
    client.post(RELAY_URL, data=refused, content_type="text/plain", headers=basic_auth())
    client.post(RELAY_URL, data=refused, content_type="message/rfc822", headers=basic_auth("no"))
    sign_in(office.admin.email, office.admin.plain_password)

    page.goto("/admin/inbound")
    expect(page.get_by_role("status")).to_contain_text("2 posts refused by an ingress")
    page.get_by_role("link", name="See refused posts").click()
    expect(page.get_by_role("heading", name="Refused posts")).to_be_visible()
    table = page.locator(".refused-table")
    expect(table).to_contain_text("invalid credentials")
    expect(table).to_contain_text("Refund for order 1234")  # the authenticated one's headers
    check_both_widths(page, tmp_path, "admin-refused-posts")
