"""The composer's Forward tab in a real Chromium: the third tab swaps the reply's fields for
the forward form, and forwarding sends the email to the third party only (the real SMTP
server), the thread showing "Forwarded to …".

Screenshots (composer-forward-*.png at 1280 and 390 px) go to $TEST_ARTIFACTS, else the
test's tmp_path.
"""

from __future__ import annotations

from email import policy
from email.parser import BytesParser

import pytest
from playwright.sync_api import expect

from tests.e2e import test_composer_browser as composer_tests
from tests.e2e.test_composer_browser import receive, screens, send_outbound

pytestmark = pytest.mark.e2e
# The composer tests' Support inbox (with Ana and Bob), SMTP server and settings.
app_config, people, smtp = composer_tests.app_config, composer_tests.people, composer_tests.smtp


def test_the_forward_tab_forwards_to_the_third_party_alone(
    app, page, sign_in, people, smtp, live_server, tmp_path
):
    ana, _bob = people
    conversation = receive(app)
    sign_in(ana.email, ana.plain_password)
    page.goto(f"/conversations/{conversation.id}")
    composer = page.locator("#composer")
    forward = page.locator(f"#forward-{conversation.id}")
    expect(forward).to_be_hidden()

    composer.locator("label.composer-tab-forward").click()
    expect(forward).to_be_visible()
    expect(composer.get_by_label("Reply to Carla Customer")).to_be_hidden()
    expect(forward.get_by_label("What to forward")).to_have_value("")
    forward.get_by_label("To", exact=True).fill("not-an-address")
    forward.get_by_role("button", name="Forward").click()
    # Refused beside To, the tab still open.
    expect(page.locator(f"#forward-to-{conversation.id}-error")).to_contain_text(
        "not an email address"
    )
    forward = page.locator(f"#forward-{conversation.id}")
    expect(forward).to_be_visible()

    forward.get_by_label("To", exact=True).fill("sam@supplier.example")
    forward.get_by_label("Note on top").fill("Sam, is this covered?")
    screens(page, tmp_path, "composer-forward")
    forward.get_by_role("button", name="Forward").click()
    expect(page.locator(".msg-forwarded")).to_have_text("Forwarded to sam@supplier.example")

    send_outbound(app)
    envelope = smtp.wait_for_messages(1)[-1]
    assert envelope.rcpt_tos == ["sam@supplier.example"]
    sent = BytesParser(policy=policy.default).parsebytes(envelope.content)
    assert sent.get_body(("plain",)).get_content().startswith("Sam, is this covered?")
