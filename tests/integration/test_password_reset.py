"""Password reset by email, through the sign-in page, a real SMTP server and the worker."""

from __future__ import annotations

import re
import time
from email import policy
from email.parser import BytesParser

import pytest

from extensions import db
from tests.conftest import global_smtp
from tests.integration.test_sessions import Browser
from worker import build_worker

SAME_ANSWER = "belongs to an account, a link to choose a new password is on its way"


@pytest.fixture
def app_config(app_config, smtp):
    return {
        **app_config,
        **global_smtp(smtp),
        "MAILER_SENDER_EMAIL": "Help <help@example.com>",
    }


def ask_for_link(browser: Browser, email: str):
    return browser.form_post("/forgot-password", "/forgot-password", {"email": email})


def deliver(app) -> None:
    build_worker(app, ["default"], simple=True).work(burst=True)


def received_link(smtp, count_before: int) -> tuple[str, object]:
    [envelope] = smtp.envelopes[count_before:]
    message = BytesParser(policy=policy.default).parsebytes(envelope.content)
    body = message.get_body(("plain",)).get_content()
    link = re.search(r"http://localhost(/reset-password/\S+)", body).group(1)
    return link, message


def test_the_whole_reset_through_email(app, smtp, make_user):
    user = make_user(email="ana@example.com", name="Ana Agent")
    laptop = Browser(app, address="198.51.100.5")
    laptop.sign_in(user, remember=True)
    token = user.issue_api_token()
    db.session.commit()

    browser = Browser(app)
    login_page = browser.get("/login").get_data(as_text=True)
    assert 'href="/forgot-password"' in login_page and "Forgot password?" in login_page
    before = len(smtp.envelopes)
    response = ask_for_link(browser, "ANA@example.com")
    assert response.status_code == 200 and SAME_ANSWER in response.get_data(as_text=True)
    deliver(app)
    link, message = received_link(smtp, before)
    assert message["To"] == "Ana Agent <ana@example.com>"
    assert message["From"] == "Help <help@example.com>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert "30 minutes" in message.get_body(("plain",)).get_content()

    form = browser.get(link)
    assert form.status_code == 200 and "ana@example.com" in form.get_data(as_text=True)
    response = browser.form_post(
        link,
        link,
        {"password": "new orchard 2026", "confirm": "new orchard 2026", "revoke_api_token": "y"},
    )
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert not laptop.signed_in()  # every other session ended
    api = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert api.get("/api/v1/inboxes", headers=headers).status_code == 401

    user.plain_password = "new orchard 2026"
    browser.sign_in(user)

    # Used once: the same link now explains itself.
    again = Browser(app).get(link)
    assert again.status_code == 410
    assert "This link was already used" in again.get_data(as_text=True)


def test_an_unknown_address_gets_the_same_answer_and_no_email(app, smtp, make_user):
    make_user(email="someone@example.com")
    before = len(smtp.envelopes)
    known = ask_for_link(Browser(app), "someone@example.com").get_data(as_text=True)
    unknown = ask_for_link(Browser(app), "nobody@example.com").get_data(as_text=True)
    strip = re.compile(r"<strong>[^<]*</strong>|\"X-CSRFToken\": \"[^\"]+\"")
    assert strip.sub("", known) == strip.sub("", unknown)
    deliver(app)
    assert len(smtp.envelopes) == before + 1
    assert smtp.envelopes[-1].rcpt_tos == ["someone@example.com"]


def test_a_deactivated_account_gets_no_email(app, smtp, make_user):
    user = make_user()
    user.active = False
    db.session.commit()
    before = len(smtp.envelopes)
    assert SAME_ANSWER in ask_for_link(Browser(app), user.email).get_data(as_text=True)
    deliver(app)
    assert len(smtp.envelopes) == before


def test_an_expired_link_says_so(app, make_user, monkeypatch):
    from services.password_reset import reset_token

    user = make_user()
    half_an_hour_ago = time.time() - 31 * 60
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: half_an_hour_ago)
    link = f"/reset-password/{reset_token(user)}"
    monkeypatch.undo()
    response = Browser(app).get(link)
    assert response.status_code == 410
    assert "This link has expired" in response.get_data(as_text=True)
    assert "Ask for a new link" in response.get_data(as_text=True)


def test_a_tampered_link_says_so(app, make_user):
    from services.password_reset import reset_token

    link = f"/reset-password/{reset_token(make_user())}x"
    response = Browser(app).get(link)
    assert response.status_code == 410
    assert "This link is not valid" in response.get_data(as_text=True)


def test_a_weak_new_password_is_refused_and_the_link_still_works(app, make_user):
    from services.password_reset import reset_token

    user = make_user()
    link = f"/reset-password/{reset_token(user)}"
    browser = Browser(app)
    response = browser.form_post(
        link, link, {"password": "password1234", "confirm": "password1234"}
    )
    assert response.status_code == 422
    assert "passwords attackers try first" in response.get_data(as_text=True)
    assert browser.get(link).status_code == 200
    db.session.refresh(user)
    assert user.check_password(user.plain_password)


def test_requests_are_throttled_with_retry_after(app, make_user):
    from blueprints.auth import RESET_REQUESTS_PER_HOUR

    browser = Browser(app)
    for _ in range(RESET_REQUESTS_PER_HOUR):
        assert ask_for_link(browser, "target@example.com").status_code == 200
    response = ask_for_link(browser, "target@example.com")
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= 3600
    assert "Too many reset requests" in response.get_data(as_text=True)


@pytest.mark.parametrize("extra_settings", [{"SMTP_ADDRESS": ""}], indirect=True)
def test_without_smtp_the_page_says_whom_to_ask(app_config, extra_settings):
    from app import create_app

    app = create_app({**app_config, **extra_settings})
    page = Browser(app).get("/forgot-password").get_data(as_text=True)
    assert "cannot send email yet" in page and "Ask an admin" in page
