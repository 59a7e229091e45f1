"""A likely spoofed email in Chromium: the "failed DMARC — may be spoofed" badge beside the
sender and the warning above the email, at 1280 and 390 px, axe-core clean; a verified
sender's badge beside it (issue 21)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from extensions import db
from models import Conversation, Inbox, InboxMember
from tests.support.inbound import post_relay, work_inbound
from tests.support.screens import check_both_widths

pytestmark = pytest.mark.e2e

SPOOFED = (
    b"Authentication-Results: mx.ours.test; spf=fail smtp.mailfrom=bank.example; dkim=none; "
    b"dmarc=fail header.from=bank.example\r\n"
    b"From: Accounts Team <accounts@bank.example>\r\n"
    b"To: support@example.com\r\n"
    b"Subject: Urgent: new bank details for refunds\r\n"
    b"Message-ID: <spoof-1@bank.example>\r\n"
    b"\r\n"
    b"Please send all refunds to our new account from today.\r\n"
)
VERIFIED = (
    b"Authentication-Results: mx.ours.test; spf=pass smtp.mailfrom=bank.example; "
    b"dmarc=pass header.from=bank.example\r\n"
    b"From: Accounts Team <accounts@bank.example>\r\n"
    b"To: support@example.com\r\n"
    b"Subject: Re: Urgent: new bank details for refunds\r\n"
    b"In-Reply-To: <spoof-1@bank.example>\r\n"
    b"Message-ID: <real-1@bank.example>\r\n"
    b"\r\n"
    b"That was not us: our bank details have not changed.\r\n"
)


@pytest.fixture
def app_config(app_config):
    return {**app_config, "TRUSTED_AUTHSERV_IDS": "mx.ours.test"}


def test_a_likely_spoofed_email_is_flagged_in_the_thread(
    app, page, sign_in, make_user, live_server, dns_records, tmp_path
):
    dns_records["_dmarc.bank.example"] = ["v=DMARC1; p=reject"]
    inbox = Inbox(name="Support", support_address="support@example.com")
    db.session.add(inbox)
    db.session.commit()
    agent = make_user(email="ana@example.com", name="Ana Agent")
    db.session.add(InboxMember(inbox_id=inbox.id, user_id=agent.id))
    db.session.commit()
    for raw in (SPOOFED, VERIFIED):
        post_relay(app.test_client(), raw)
    work_inbound(app)
    conversation = db.session.scalar(select(Conversation))
    sign_in(agent.email, agent.plain_password)
    page.goto(f"/conversations/{conversation.id}")
    warning = page.get_by_role("alert").filter(has_text="may not be from")
    expect(warning).to_have_count(1)
    expect(warning).to_contain_text("This email may not be from accounts@bank.example.")
    expect(page.locator(".msg-verdict.verdict-failed_dmarc")).to_have_text(
        "failed DMARC — may be spoofed"
    )
    expect(page.locator(".msg-verdict.verdict-verified")).to_have_text("verified sender")
    check_both_widths(page, tmp_path, "thread-spoofed-sender")
