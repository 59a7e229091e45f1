"""Spam in a real headless Chromium: the Spam view, a spam thread's banner and "Not spam"
pressed from the keyboard, "Block sender" from the thread's Spam menu by keyboard, and the
inbox settings' Blocked senders tab (an entry added from the keyboard, a refused one);
every screen at 1280 and 390 px without a serious axe-core finding.

Screenshots go to $TEST_ARTIFACTS (the test's tmp_path when unset), named spam-*.png.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from extensions import db
from models import InboxMember, Message
from tests.support.inbound import post_relay, work_inbound
from tests.support.screens import check_both_widths

pytestmark = pytest.mark.e2e

SPAM = (
    b"From: Offers <offers@bulk.example>\r\nTo: support@example.com\r\n"
    b"Subject: Cheap pills\r\nMessage-ID: <pills@bulk.example>\r\n"
    b"X-Spam-Flag: YES\r\nX-Spam-Status: Yes, score=9.3 required=5.0\r\n\r\nBuy now.\r\n"
)


@pytest.fixture
def caught(app, client, support, make_user):
    """An admin, an agent of Support, and one email the upstream filter flagged."""
    admin = make_user(email="rita@example.com", name="Rita Admin", role="admin")
    agent = make_user(email="ana@example.com", name="Ana Agent")
    db.session.add(InboxMember(inbox_id=support.id, user_id=agent.id))
    db.session.commit()
    post_relay(client, SPAM)
    work_inbound(app)
    message = db.session.scalar(select(Message).where(Message.message_id == "pills@bulk.example"))
    return type("Caught", (), {"admin": admin, "conversation": message.conversation})


def test_spam_view_banner_not_spam_and_block_sender_by_keyboard(
    page, sign_in, caught, support, tmp_path
):
    sign_in(caught.admin.email, caught.admin.plain_password)
    conversation = caught.conversation
    page.goto("/conversations")
    views = page.locator("#ws-sidebar")
    expect(views.locator("#count-spam")).to_have_text("1")
    expect(page.locator("#conversation-list")).not_to_contain_text("Cheap pills")
    views.get_by_role("link", name=re.compile("^Spam")).click()
    expect(views.get_by_role("link", name=re.compile("^Spam"))).to_have_attribute(
        "aria-current", "page"
    )
    expect(page.locator("#conversation-list")).to_contain_text("Cheap pills")

    page.goto(f"/conversations/{conversation.id}?status=spam")
    banner = page.locator(".spam-banner")
    expect(banner).to_contain_text("Spam: X-Spam-Flag: YES")
    check_both_widths(page, tmp_path, "spam-thread")

    not_spam = page.get_by_role("button", name="Not spam")
    not_spam.focus()
    page.keyboard.press("Enter")
    expect(page.locator(".spam-banner")).to_have_count(0)
    expect(page.locator("#thread-meta")).to_contain_text("open")
    expect(page.locator("#thread")).to_contain_text("marked this as not spam")

    # The header's More menu from the keyboard, as every header menu: Enter opens it on its
    # first item (the merge field, static/thread.js), the arrows walk down to Mark as spam
    # and Block sender, Enter presses it.
    page.locator("#menu-merge > summary").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Merge this conversation into")).to_be_focused()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("button", name="Mark as spam")).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("button", name="Block sender offers@bulk.example")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(".spam-banner")).to_contain_text("Spam: blocked sender offers@bulk.example")
    check_both_widths(page, tmp_path, "spam-thread-blocked")

    page.goto(f"/admin/inboxes/{support.id}/settings?section=blocked")
    section = page.locator("#settings-blocked")
    expect(section).to_contain_text("offers@bulk.example")
    check_both_widths(page, tmp_path, "spam-settings-blocked")

    field = page.get_by_label("Block an address or a domain")
    field.fill("not a domain")
    page.keyboard.press("Enter")
    expect(page.locator("#settings-blocked")).to_contain_text("is not a domain such as")
    check_both_widths(page, tmp_path, "spam-settings-blocked-error")
    page.get_by_label("Block an address or a domain").fill("@Junk.example")
    page.keyboard.press("Enter")
    expect(page.locator("#settings-blocked .alias-list")).to_contain_text("junk.example")
    remove = page.get_by_role("button", name="Remove junk.example")
    remove.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#settings-blocked .alias-list")).not_to_contain_text("junk.example")
