"""The account pages in a real headless Chromium: the profile's session list signs another
browser out, that browser is told its session ended, a forgotten password is reset through
the emailed link, and every one of these pages passes axe-core (no serious or critical
violation) at laptop and phone width.

Screenshots go to $TEST_ARTIFACTS (the test's tmp_path when unset): profile-1280.png,
profile-390.png, reset-390.png.
"""

from __future__ import annotations

import os
import re
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import global_smtp
from tests.e2e.conftest import serious_violations
from worker import build_worker

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def artifacts(tmp_path: Path) -> Path:
    path = Path(os.environ.get("TEST_ARTIFACTS") or tmp_path)
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def app_config(app_config, smtp):
    return {**app_config, **global_smtp(smtp)}


def test_sign_another_browser_out_from_the_profile(
    page, browser, sign_in, make_user, live_server, tmp_path
):
    user = make_user(email="sam@example.com", name="Sam Session")
    other = browser.new_context(base_url=live_server.url)
    try:
        phone = other.new_page()
        phone.goto("/login")
        phone.get_by_label("Email", exact=True).fill(user.email)
        phone.get_by_label("Password", exact=True).fill(user.plain_password)
        phone.get_by_role("button", name="Sign in").click()
        expect(phone.locator("header.topbar .who")).to_have_text("Sam Session")

        sign_in(user.email, user.plain_password)
        page.goto("/profile")
        sessions = page.locator("#sessions .session-list li")
        expect(sessions).to_have_count(2)
        expect(sessions.first).to_contain_text("this browser")
        assert serious_violations(page) == []
        shots = artifacts(tmp_path)
        page.screenshot(path=str(shots / "profile-1280.png"), full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path=str(shots / "profile-390.png"), full_page=True)
        page.set_viewport_size({"width": 1280, "height": 800})

        sessions.nth(1).get_by_role("button", name=re.compile("^Sign out")).click()
        expect(page.get_by_text("That session is signed out.")).to_be_visible()
        expect(page.locator("#sessions .session-list li")).to_have_count(1)

        phone.reload()
        expect(phone).to_have_url(re.compile(r"/login\?next="))
        expect(phone.get_by_text("Your session has ended")).to_be_visible()
    finally:
        other.close()


def test_forgot_password_through_the_emailed_link(page, app, smtp, make_user, tmp_path):
    user = make_user(email="fay@example.com", name="Fay Forgetful")
    page.goto("/login")
    page.get_by_role("link", name="Forgot password?").click()
    assert serious_violations(page) == []
    page.get_by_label("Email", exact=True).fill(user.email)
    before = len(smtp.envelopes)
    page.get_by_role("button", name="Send me a link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()

    build_worker(app, ["default"], simple=True).work(burst=True)
    [envelope] = smtp.envelopes[before:]
    body = BytesParser(policy=policy.default).parsebytes(envelope.content)
    link = re.search(r"http://localhost(/reset-password/\S+)", body.get_content()).group(1)

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(link)
    assert serious_violations(page) == []
    page.get_by_label("New password", exact=True).fill("short")
    page.get_by_label("New password again").fill("short")
    page.get_by_role("button", name="Save the new password").click()
    expect(page.get_by_role("alert").first).to_contain_text("at least 12 characters")
    page.screenshot(path=str(artifacts(tmp_path) / "reset-390.png"), full_page=True)

    page.get_by_label("New password", exact=True).fill("lantern harbour 77")
    page.get_by_label("New password again").fill("lantern harbour 77")
    page.get_by_role("button", name="Save the new password").click()
    expect(page.get_by_text("Your password is changed")).to_be_visible()
    page.get_by_label("Email", exact=True).fill(user.email)
    page.get_by_label("Password", exact=True).fill("lantern harbour 77")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("header.topbar .who")).to_have_text("Fay Forgetful")

    page.goto(link)  # used once
    expect(page.get_by_text("This link was already used")).to_be_visible()
