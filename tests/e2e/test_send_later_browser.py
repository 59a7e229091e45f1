"""Undo send and Send later in a real Chromium: the undo window counts down and Undo (from the
keyboard) puts the words back in the composer; Enter in "Send later"'s time schedules the
reply (it never sends at once), and Cancel brings it back too.

Screenshots (send-later-*.png at 1280 and 390 px) go to $TEST_ARTIFACTS, else tmp_path.
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from extensions import db
from models import Message, utcnow
from tests.e2e import test_composer_browser
from tests.e2e.test_composer_browser import open_thread, receive, screens

pytestmark = pytest.mark.e2e
people = test_composer_browser.people  # Ana and Bob in the Support inbox, with its signature

ZONE = "Europe/Lisbon"


@pytest.fixture
def app_config(app_config):
    return {**app_config, "SEND_UNDO_SECONDS": 30}


def outgoing() -> list[Message]:
    db.session.expire_all()
    return list(db.session.scalars(select(Message).where(Message.direction == "outgoing")))


def test_undo_from_the_keyboard_and_enter_in_send_later_schedules(
    app, page, sign_in, people, live_server, tmp_path
):
    ana, _bob = people
    ana.timezone = ZONE
    db.session.commit()
    conversation = receive(app)
    composer = open_thread(page, sign_in, ana, conversation)
    text = composer.locator(f"#reply-text-{conversation.id}")

    text.fill("Unplug it, then wait a minute.")
    composer.get_by_role("button", name="Send", exact=True).click()
    countdown = page.locator("[data-send-countdown]")
    expect(countdown).to_have_text("Sending in 30 s")
    expect(countdown).to_have_text("Sending in 28 s", timeout=4_000)  # it counts down
    screens(page, tmp_path, "send-later-undo")
    undo = page.get_by_role("button", name="Undo")
    undo.focus()
    page.keyboard.press("Enter")
    expect(page.locator(".composer-taken-back")).to_contain_text("back in the composer")
    expect(text).to_have_value("Unplug it, then wait a minute.")
    assert outgoing() == []

    when = (
        (utcnow() + timedelta(days=1))
        .astimezone(ZoneInfo(ZONE))
        .replace(hour=9, minute=0, second=0, microsecond=0)
    )
    page.get_by_text("Send later", exact=True).click()
    moment = composer.get_by_label(f"Send at ({ZONE})")
    moment.fill(when.strftime("%Y-%m-%dT%H:%M"))
    screens(page, tmp_path, "send-later-open")
    moment.press("Enter")
    expect(page.locator(".msg-waiting-scheduled")).to_contain_text(f"Scheduled for {when:%a} 09:00")
    screens(page, tmp_path, "send-later-scheduled")
    [message] = outgoing()
    assert message.scheduled and message.send_after == when
    page.get_by_role("button", name="Cancel").click()
    expect(text).to_have_value("Unplug it, then wait a minute.")
    assert outgoing() == []
