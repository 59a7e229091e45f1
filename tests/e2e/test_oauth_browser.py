"""Connect with Microsoft 365 in a real headless Chromium: from the wizard's IMAP/SMTP step
to the stand-in identity provider's sign-in page (tests/support/oauth_provider.py) and back
through the callback, connected; and the same from an inbox's settings with JavaScript off,
where the Connect form's redirect to the provider must pass the page's CSP form-action.

Screenshots (1280 and 390 px): admin-oauth-connect (the servers step, before) and
admin-oauth-connected (after), in $TEST_ARTIFACTS (the test's tmp_path when unset).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from extensions import db
from models import Inbox
from models.inboxes import ImapSettings
from services import oauth
from tests.e2e.conftest import PageGuard
from tests.support.screens import check_both_widths

pytestmark = pytest.mark.e2e

MAILBOX = "support@contoso.com"


@pytest.fixture
def app_config(app_config, _live_server, oauth_provider):
    """The callback must come back to the live server: APP_URL is its address."""
    return {**app_config, "APP_URL": _live_server.url, **oauth_provider.app_settings()}


def test_wizard_connects_a_microsoft_365_mailbox(
    page, sign_in, make_user, live_server, oauth_provider, tmp_path
):
    admin = make_user(email="rita@example.com", name="Rita Admin", role="admin")
    sign_in(admin.email, admin.plain_password)
    page.goto("/admin/inboxes/new")
    page.get_by_label("Inbox name").fill("Support")
    page.get_by_label("Support address").fill(MAILBOX)
    page.get_by_label("Support address").press("Enter")
    expect(page.get_by_text("Step 2 of 6")).to_be_visible()
    page.get_by_role("radio", name=re.compile(r"^IMAP\/SMTP")).check()
    page.get_by_role("button", name="Next").click()

    expect(page.get_by_role("heading", name="IMAP and SMTP servers")).to_be_visible()
    mailbox = page.get_by_label("Mailbox to open")
    expect(mailbox).to_have_value(MAILBOX)  # the support address, to change for another
    expect(page.get_by_text("sign in as a user with Full Access")).to_be_visible()
    page.get_by_text("Registering Threadline with Microsoft or Google").click()
    expect(page.get_by_label("Redirect URI")).to_have_value(
        f"{live_server.url}/admin/oauth/callback"
    )
    page.get_by_label("IMAP host").fill("typed.example.com")  # replaced once signed in
    check_both_widths(page, tmp_path, "admin-oauth-connect")

    # Enter in a field is Next (which asks for the password), never a trip to the provider.
    page.get_by_label("IMAP host").press("Enter")
    expect(page.get_by_text("Enter the password or app password of the mailbox.")).to_be_visible()
    assert oauth_provider.authorize_requests == []

    # From the keyboard: the mailbox, then Tab to the first Connect button.
    mailbox.focus()
    page.keyboard.press("Tab")
    connect = page.get_by_role("button", name="Connect with Microsoft 365")
    expect(connect).to_be_focused()
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile(re.escape(oauth_provider.base_url) + "/ms/contoso.test/"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_label("Email")).to_have_value(MAILBOX)  # login_hint
    page.get_by_role("button", name="Sign in").click()

    expect(page).to_have_url(re.compile(r"/admin/inboxes/new/[^/]+/connection$"))
    expect(page.get_by_text(f"Connected to Microsoft 365 as {MAILBOX}.")).to_be_visible()
    expect(page.get_by_text(f"Signed in with Microsoft 365 as {MAILBOX}")).to_be_visible()
    expect(page.get_by_label("IMAP host")).to_have_value("outlook.office365.com")
    expect(page.get_by_label("SMTP host")).to_have_value("smtp.office365.com")
    expect(page.get_by_role("button", name="Reconnect")).to_be_visible()
    expect(page.get_by_label("Password or app password")).to_have_count(0)
    check_both_widths(page, tmp_path, "admin-oauth-connected")

    draft_id = page.url.rsplit("/", 2)[-2]
    conn = oauth.connection_for_draft(draft_id)
    assert conn is not None and conn.mailbox == MAILBOX
    assert oauth_provider.token_user(conn.access_token) == MAILBOX


def test_connect_without_javascript_passes_the_csp(browser, make_user, live_server, oauth_provider):
    inbox = Inbox(name="Support", support_address=MAILBOX, mode="imap")
    inbox.imap = ImapSettings(host="imap.example.com", username=MAILBOX, password="old")
    db.session.add(inbox)
    db.session.commit()
    admin = make_user(email="rita@example.com", name="Rita Admin", role="admin")
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    context.set_default_timeout(10_000)
    page = context.new_page()
    guard = PageGuard(page, live_server.url)
    try:
        page.goto("/login")
        page.get_by_label("Email", exact=True).fill(admin.email)
        page.get_by_label("Password", exact=True).fill(admin.plain_password)
        page.get_by_role("button", name="Sign in").click()
        page.goto(f"/admin/inboxes/{inbox.id}/settings?section=connection")
        page.get_by_role("button", name="Connect with Google").click()
        expect(page).to_have_url(re.compile(re.escape(oauth_provider.base_url) + "/google/"))
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(re.compile(rf"/admin/inboxes/{inbox.id}/settings"))
        expect(page.get_by_text(f"Connected to Google as {MAILBOX}.")).to_be_visible()
        expect(page.get_by_label("IMAP host")).to_have_value("imap.gmail.com")
        guard.check()
    finally:
        context.close()
