"""The inbox setup wizard in a real headless Chromium, end to end: an admin creates a
forwarding inbox step by step (htmx swaps each screen), injects a sample email, a worker
processes it while the page polls, and the page links to the first conversation.

The screenshot goes to $TEST_ARTIFACTS/wizard.png (the test's tmp_path when unset).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from extensions import db
from models import Inbox
from tests.support.inbound import work_inbound

pytestmark = pytest.mark.e2e

DOMAIN = "in.example.com"


@pytest.fixture
def app_config(app_config):
    return {**app_config, "MAILER_INBOUND_EMAIL_DOMAIN": DOMAIN}


def test_admin_walks_the_wizard_to_the_first_conversation(
    app, page, sign_in, make_user, live_server, tmp_path
):
    admin = make_user(email="rita@example.com", name="Rita Admin", role="admin")
    sign_in(admin.email, admin.plain_password)
    page.goto("/admin/inboxes")
    page.get_by_role("link", name="New inbox").click()

    expect(page.get_by_text("Step 1 of 6")).to_be_visible()
    page.get_by_label("Inbox name").fill("Support")
    page.get_by_label("Support address").fill("not an address")
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text("Enter the address customers write to")).to_be_visible()
    page.get_by_label("Support address").fill("support@example.com")
    page.get_by_role("button", name="Next").click()

    expect(page.get_by_text("Step 2 of 6")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/admin/inboxes/new/[^/]+/mode$"))
    forwarding = page.get_by_role("radio", name=re.compile(r"^Forwarding"))
    forwarding.check()
    page.get_by_role("button", name="Next").click()

    expect(page.get_by_role("heading", name="Forward your support address")).to_be_visible()
    address = page.locator("#forwarding-address").input_value()
    assert re.fullmatch(rf"[0-9a-f]{{32}}@{re.escape(DOMAIN)}", address)
    # Back keeps what was chosen, next returns here.
    page.get_by_role("button", name="Back").click()
    expect(page.get_by_text("Step 2 of 6")).to_be_visible()
    expect(forwarding).to_be_checked()
    page.get_by_role("button", name="Next").click()
    expect(page.locator("#forwarding-address")).to_have_value(address)
    page.get_by_role("button", name="Next").click()

    expect(page.get_by_text("Step 4 of 6")).to_be_visible()
    page.get_by_label("Signature").fill("The Support team")
    page.get_by_role("button", name="Next").click()

    expect(page.get_by_text("Step 5 of 6")).to_be_visible()
    page.get_by_label("Rita Admin").check()
    page.get_by_role("button", name="Create inbox").click()

    expect(page.get_by_text("The inbox is saved.")).to_be_visible()
    inbox = db.session.query(Inbox).one()
    assert inbox.forwarding_address(DOMAIN) == address
    page.get_by_role("button", name="Inject a sample email").click()
    expect(page.get_by_text("waiting for a background worker")).to_be_visible()

    work_inbound(app)  # the worker, while the page polls every 2 s
    link = page.get_by_role("link", name=re.compile(r"Open conversation #\d+"))
    expect(link).to_be_visible(timeout=15_000)
    path = Path(os.environ.get("TEST_ARTIFACTS") or tmp_path)
    path.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path / "wizard.png"), full_page=True)

    link.click()
    expect(page).to_have_url(re.compile(r"/conversations/\d+$"))
    expect(page.get_by_text("Threadline setup test").first).to_be_visible()
