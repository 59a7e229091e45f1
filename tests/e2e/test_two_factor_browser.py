"""Two-factor sign-in in a real headless Chromium: set it up reading the key off the page,
sign out, sign in with the password and then a code from "the phone" (pyotp).

Screenshots go to $TEST_ARTIFACTS (the test's tmp_path when unset): two-factor-setup.png,
and the second sign-in step at 1280 and 390 px wide, two-factor-step-1280.png and
two-factor-step-390.png.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


def artifact_dir(tmp_path: Path) -> Path:
    path = Path(os.environ.get("TEST_ARTIFACTS") or tmp_path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def screenshot(page, path: Path) -> None:
    page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_set_up_two_factor_then_sign_in_with_password_and_code(
    page, sign_in, make_user, live_server, tmp_path
):
    user = make_user(email="tara@example.com", name="Tara Totp")
    sign_in(user.email, user.plain_password)
    expect(page).to_have_url(f"{live_server.url}/")

    page.goto("/profile/two-factor")
    page.get_by_role("button", name="Set up two-factor sign-in").click()
    expect(page.locator("svg.totp-qr")).to_be_visible()
    shots = artifact_dir(tmp_path)
    screenshot(page, shots / "two-factor-setup.png")
    secret = page.get_by_label("Setup key").input_value().replace(" ", "")
    phone = pyotp.TOTP(secret)
    page.get_by_label("Code from the app").fill(phone.now())
    page.get_by_role("button", name="Turn on two-factor sign-in").click()

    expect(page.get_by_role("heading", name="Two-factor sign-in is on")).to_be_visible()
    codes = page.locator("#recovery-codes li")
    expect(codes).to_have_count(10)
    assert re.fullmatch(r"[a-z0-9]{5}-[a-z0-9]{5}", codes.first.inner_text().strip())
    page.get_by_role("link", name="back to my profile").click()
    expect(page).to_have_url(f"{live_server.url}/profile")
    assert secret not in page.content()

    page.locator("header.topbar").get_by_role("button", name="Sign out").click()
    sign_in(user.email, user.plain_password)
    expect(page).to_have_url(f"{live_server.url}/login/two-factor")
    expect(page.get_by_role("heading", name="Two-factor sign-in")).to_be_visible()
    expect(page.locator("header.topbar .who")).to_have_count(0)  # not signed in yet

    screenshot(page, shots / "two-factor-step-1280.png")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, shots / "two-factor-step-390.png")

    field = page.get_by_label("Code", exact=True)
    near = {phone.at(time.time() + 30 * offset) for offset in range(-3, 4)}
    field.fill(next(c for c in ("111111", "222222", "333333") if c not in near))
    page.get_by_role("button", name="Verify and sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("That code is not right.")
    expect(field).to_have_value("")  # never echoed back

    # The code that set it up is used up; the phone's next one is within the window.
    field.fill(phone.at(time.time() + 30))
    page.get_by_role("button", name="Verify and sign in").click()
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.locator("header.topbar .who")).to_have_text("Tara Totp")
