"""The admin System page in a real headless Chromium at phone width: workers, queue depths and
waiting mail fit in 390 px without sideways scrolling, under the strict CSP (the `page`
fixture fails on any violation). Screenshot: $TEST_ARTIFACTS/system-390.png."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.integration.test_backlog import inbound, register_worker

pytestmark = pytest.mark.e2e


def test_system_page_fits_a_phone(page, sign_in, make_user, tmp_path):
    register_worker("a-worker-with-a-rather-long-name-0123456789abcdef")
    inbound(minutes_ago=4)
    admin = make_user(email="admin@example.com", name="Ada Admin", role="admin")
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(admin.email, admin.plain_password)
    page.goto("/admin/system")

    expect(page.locator("#workers")).to_contain_text("a-worker-with-a-rather-long-name")
    expect(page.locator("#workers")).to_contain_text("idle, heartbeat")
    expect(page.locator("#queues")).to_contain_text("inbound")
    expect(page.get_by_text("1 pending, oldest 4 min old")).to_be_visible()
    shots = Path(os.environ.get("TEST_ARTIFACTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "system-390.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scroll
