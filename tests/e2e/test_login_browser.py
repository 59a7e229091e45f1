"""Signing in, signing out and the live worker check, in a real headless Chromium."""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


def test_sign_in_shows_the_name_and_sign_out_returns_to_sign_in(
    page, sign_in, make_user, live_server, tmp_path
):
    user = make_user(email="rita@example.com", name="Rita Reader")
    sign_in("rita@example.com", user.plain_password)

    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.locator("header.topbar .who")).to_have_text("Rita Reader")
    # No inbox yet: the home page is the fresh-install checklist (an agent is told to ask).
    expect(page.get_by_role("heading", name="Welcome to Threadline")).to_be_visible()
    expect(page.get_by_role("link", name="System")).to_have_count(0)  # agents see no admin link

    shot = tmp_path / "signed-in.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 1000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{live_server.url}/login")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    expect(page.locator("header.topbar .who")).to_have_count(0)

    page.goto("/")  # the session is really gone
    expect(page).to_have_url(re.compile(r"/login\?next=%2F$"))


def test_wrong_password_shows_a_clear_message(page, sign_in, make_user, live_server):
    user = make_user(email="wrong@example.com")
    sign_in(user.email, "not the password")

    expect(page.get_by_role("alert")).to_have_text("The email or password is wrong.")
    expect(page).to_have_url(f"{live_server.url}/login")
    expect(page.get_by_label("Email", exact=True)).to_have_value(user.email)
    expect(page.get_by_label("Password", exact=True)).to_have_value("")  # never echoed back
    expect(page.locator("header.topbar .who")).to_have_count(0)


def test_admin_worker_check_updates_by_itself_when_a_worker_runs_the_job(
    page, sign_in, make_user, run_worker_burst
):
    admin = make_user(email="admin@example.com", name="Ada Admin", role="admin")
    sign_in(admin.email, admin.plain_password)
    page.get_by_role("link", name="System").click()
    expect(page.get_by_role("heading", name="System")).to_be_visible()
    page.wait_for_load_state("load")  # htmx (a deferred script) listens before the click

    failed = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else 0)
    page.get_by_role("button", name="Test the background worker").click()
    check = page.locator("#worker-check")
    expect(check).to_contain_text("is queued… waiting for a worker.")
    assert not failed, failed  # the htmx POST carried the CSRF header from <body hx-headers>

    page.evaluate("window.__sameDocument = true")  # gone if the page reloads
    poll = re.compile(r"/admin/system/worker-check/[0-9a-f-]+$")
    with page.expect_request(poll):  # htmx polls the job by itself…
        pass
    expect(check).to_contain_text("waiting for a worker")  # …and it still waits for a worker

    run_worker_burst()

    expect(check).to_contain_text("Done: job", timeout=15_000)
    text = check.inner_text()
    assert "saw 1 user(s) in the database" in text
    pid = int(re.search(r"\(pid (\d+)\)", text).group(1))
    assert pid != os.getpid()  # a worker process ran it, not this one
    assert page.evaluate("window.__sameDocument") is True, "the page reloaded"
    assert not failed, failed
