"""Two-factor sign-in through the real forms (CSRF included): setting it up, signing in
with a code or a recovery code, wrong, replayed and throttled codes, an expired second
step, turning it off, and REQUIRE_2FA_FOR_ADMINS."""

from __future__ import annotations

import re
import time

import pyotp
import pytest

from extensions import db
from tests.conftest import csrf_token_from

WRONG_CODE = (
    "That code is not right. Codes change every 30 seconds; check the time on your phone, "
    "or use a recovery code."
)
SECRET = re.compile(r'id="totp-secret"[^>]*value="([^"]+)"')
RECOVERY = re.compile(r"<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>")


@pytest.fixture
def app_config(app_config, extra_settings):
    return {**app_config, **extra_settings}


class Browser:
    """One test client is one browser. Every request runs in its own app context, as real
    requests do (Flask-Login and Flask-WTF cache the user and token in `g`)."""

    def __init__(self, app):
        self.app = app
        self.client = app.test_client()

    def get(self, path: str, **kwargs):
        with self.app.app_context():
            return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict, **kwargs):
        with self.app.app_context():
            return self.client.post(path, data=data, **kwargs)

    def token(self, path: str = "/login") -> str:
        return csrf_token_from(self.get(path).get_data(as_text=True))

    def password_step(self, user, next_url: str = "", remember: bool = False):
        data = {"email": user.email, "password": user.plain_password}
        data["csrf_token"] = self.token()
        if remember:
            data["remember"] = "y"
        return self.post(f"/login{next_url}", data)

    def code_step(self, code: str):
        page = self.get("/login/two-factor")
        return self.post(
            "/login/two-factor",
            {"code": code, "csrf_token": csrf_token_from(page.get_data(as_text=True))},
        )

    def signed_in(self) -> bool:
        return self.get("/").status_code == 200


def code_at(secret: str, offset_steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * offset_steps)


def wrong_codes(secret: str, count: int = 1) -> list[str]:
    """Six digits that no step near now accepts (a random guess could, once in 300 000)."""
    near = {code_at(secret, offset) for offset in range(-3, 4)}
    return [c for c in (f"{n:06d}" for n in range(100, 200)) if c not in near][:count]


def enrol(browser: Browser) -> tuple[str, list[str]]:
    """Set up two-factor sign-in as a user does; returns (secret, recovery codes).
    The confirming code is the previous step's, so that "now" is still unused."""
    token = browser.token("/profile/two-factor")
    assert browser.post("/profile/two-factor/setup", {"csrf_token": token}).status_code == 303
    page = browser.get("/profile/two-factor").get_data(as_text=True)
    secret = SECRET.search(page).group(1).replace(" ", "")
    response = browser.post(
        "/profile/two-factor/confirm", {"csrf_token": token, "code": code_at(secret, -1)}
    )
    assert response.status_code == 200
    codes = RECOVERY.findall(response.get_data(as_text=True))
    return secret, codes


@pytest.fixture
def enrolled(app, make_user):
    """A user with two-factor sign-in on, signed out again: (user, secret, codes)."""
    user = make_user(email="tess@example.com", name="Tess Two")
    browser = Browser(app)
    assert browser.password_step(user).status_code == 302
    secret, codes = enrol(browser)
    browser.post("/logout", {"csrf_token": browser.token("/")})
    return user, secret, codes


def test_setting_up_shows_a_qr_code_and_the_key_then_recovery_codes_once(app, make_user):
    user = make_user()
    browser = Browser(app)
    browser.password_step(user)
    start = browser.get("/profile/two-factor")
    assert "Set up two-factor sign-in" in start.get_data(as_text=True)
    token = csrf_token_from(start.get_data(as_text=True))
    assert browser.get("/profile/two-factor/setup").status_code == 405  # GET changes nothing
    browser.post("/profile/two-factor/setup", {"csrf_token": token})

    setup = browser.get("/profile/two-factor")
    html = setup.get_data(as_text=True)
    assert setup.headers["Cache-Control"] == "no-store"
    assert re.search(r'<svg [^>]*class="totp-qr"', html)  # inline, no <img data:>
    assert "style=" not in html and "<style" not in html  # the CSP allows no inline style
    secret = SECRET.search(html).group(1).replace(" ", "")
    assert len(secret) == 32

    code = wrong_codes(secret)[0]
    wrong = browser.post("/profile/two-factor/confirm", {"csrf_token": token, "code": code})
    assert wrong.status_code == 422
    assert "That code does not match." in wrong.get_data(as_text=True)
    db.session.refresh(user)
    assert not user.has_two_factor

    done = browser.post(
        "/profile/two-factor/confirm", {"csrf_token": token, "code": code_at(secret)}
    )
    assert done.status_code == 200
    assert done.headers["Cache-Control"] == "no-store"
    codes = RECOVERY.findall(done.get_data(as_text=True))
    assert len(codes) == 10 and len(set(codes)) == 10
    db.session.refresh(user)
    assert user.has_two_factor
    assert all(code not in (user.recovery_code_hashes or "") for code in codes)  # only hashes

    again = browser.get("/profile/two-factor").get_data(as_text=True)
    assert "10 unused recovery code(s)" in again
    assert not RECOVERY.search(again)


def test_the_secret_appears_on_no_page_after_setup(app, enrolled):
    user, secret, _ = enrolled
    browser = Browser(app)
    browser.password_step(user)
    browser.code_step(code_at(secret))
    grouped = " ".join(re.findall(".{4}", secret))
    for path in ("/", "/profile", "/profile/two-factor", "/conversations"):
        page = browser.get(path)
        assert page.status_code == 200, path
        html = page.get_data(as_text=True)
        assert secret not in html and grouped not in html, path
        assert "totp-qr" not in html and "otpauth" not in html, path


def test_sign_in_asks_for_the_code_after_the_password(app, enrolled):
    user, secret, _ = enrolled
    browser = Browser(app)
    response = browser.password_step(user, next_url="?next=/profile", remember=True)
    assert response.status_code == 302
    assert response.headers["Location"] == "/login/two-factor"
    assert not browser.signed_in()  # the password alone signs nobody in

    step = browser.get("/login/two-factor")
    assert step.status_code == 200
    assert 'autocomplete="one-time-code"' in step.get_data(as_text=True)
    done = browser.code_step(code_at(secret))
    assert done.status_code == 302
    assert done.headers["Location"] == "/profile"
    assert "remember_token=" in " ".join(done.headers.getlist("Set-Cookie"))
    assert browser.signed_in()


def test_a_wrong_code_is_refused_with_what_to_do(app, enrolled):
    user, secret, _ = enrolled
    browser = Browser(app)
    browser.password_step(user)
    response = browser.code_step(wrong_codes(secret)[0])
    assert response.status_code == 401
    assert WRONG_CODE in response.get_data(as_text=True)
    assert not browser.signed_in()
    empty = browser.code_step("")
    assert empty.status_code == 422
    assert "Type the 6-digit code" in empty.get_data(as_text=True)


def test_a_code_is_accepted_only_once(app, enrolled):
    user, secret, _ = enrolled
    code = code_at(secret)
    first = Browser(app)
    first.password_step(user)
    assert first.code_step(code).status_code == 302

    second = Browser(app)  # someone who saw the code over the owner's shoulder
    second.password_step(user)
    replay = second.code_step(code)
    assert replay.status_code == 401
    assert "That code was already used." in replay.get_data(as_text=True)
    assert not second.signed_in()
    # An older code of the window is refused too once a newer one was used.
    assert second.code_step(code_at(secret, -1)).status_code == 401


def test_a_recovery_code_signs_in_once_and_says_how_many_are_left(app, enrolled):
    user, _, codes = enrolled
    browser = Browser(app)
    browser.password_step(user)
    response = browser.code_step(codes[3].upper().replace("-", " "))  # as typed from paper
    assert response.status_code == 302
    home = browser.get("/").get_data(as_text=True)
    assert "You signed in with a recovery code; 9 left, each works once." in home

    again = Browser(app)
    again.password_step(user)
    reused = again.code_step(codes[3])
    assert reused.status_code == 401
    assert WRONG_CODE in reused.get_data(as_text=True)
    assert not again.signed_in()
    assert again.code_step(codes[4]).status_code == 302


def test_wrong_codes_are_throttled_with_retry_after(app, enrolled):
    user, secret, _ = enrolled
    attacker = Browser(app)
    attacker.password_step(user)
    *guesses, last = wrong_codes(secret, 5)
    assert [attacker.code_step(code).status_code for code in guesses] == [401] * 4
    locked = attacker.code_step(last)
    assert locked.status_code == 429
    assert 14 * 60 < int(locked.headers["Retry-After"]) <= 15 * 60
    text = locked.get_data(as_text=True)
    assert "Too many wrong codes for this account. Sign in again in 15 minute(s)" in text
    assert 'href="/login"' in text

    # The pending sign-in is over; starting again, even the right code waits.
    gone = attacker.get("/login/two-factor")
    assert gone.status_code == 401
    assert "Sign in with your email and password." in gone.get_data(as_text=True)
    attacker.password_step(user)
    token = attacker.token("/login")
    right = attacker.post("/login/two-factor", {"csrf_token": token, "code": code_at(secret)})
    assert right.status_code == 429
    assert int(right.headers["Retry-After"]) > 0
    assert not attacker.signed_in()
    attacker.password_step(user)
    assert attacker.get("/login/two-factor").status_code == 429  # told before typing a code


def test_the_second_step_expires_after_five_minutes(app, enrolled):
    user, secret, _ = enrolled
    browser = Browser(app)
    browser.password_step(user)
    token = browser.token("/login/two-factor")
    with app.app_context(), browser.client.session_transaction() as session:
        pending = session["two_factor_pending"]
        pending["started_at"] -= 5 * 60 + 1  # as if the code came 5 minutes and 1 s later
        session["two_factor_pending"] = pending
    response = browser.post("/login/two-factor", {"csrf_token": token, "code": code_at(secret)})
    assert response.status_code == 401
    text = response.get_data(as_text=True)
    assert "waited more than 5 minutes" in text and "Sign in again" in text
    assert not browser.signed_in()

    fresh = Browser(app).get("/login/two-factor")  # never started here
    assert fresh.status_code == 401
    assert "No sign-in is waiting for a code on this browser" in fresh.get_data(as_text=True)


def test_turning_it_on_and_off_signs_out_the_other_browsers(app, make_user):
    user = make_user()
    laptop, phone = Browser(app), Browser(app)
    laptop.password_step(user)
    phone.password_step(user)
    secret, _ = enrol(laptop)
    assert laptop.signed_in()
    assert not phone.signed_in()

    phone.password_step(user)
    phone.code_step(code_at(secret))
    assert phone.signed_in()

    token = laptop.token("/profile/two-factor")
    wrong = laptop.post(
        "/profile/two-factor/disable", {"disable-csrf_token": token, "disable-password": "nope"}
    )
    assert wrong.status_code == 422
    assert "That password is not right." in wrong.get_data(as_text=True)
    db.session.refresh(user)
    assert user.has_two_factor

    off = laptop.post(
        "/profile/two-factor/disable",
        {"disable-csrf_token": token, "disable-password": user.plain_password},
    )
    assert off.status_code == 303
    assert "Two-factor sign-in is off" in laptop.get("/profile/two-factor").get_data(as_text=True)
    db.session.refresh(user)
    assert not user.has_two_factor and user.totp_secret is None
    assert laptop.signed_in() and not phone.signed_in()
    assert phone.password_step(user).headers["Location"] == "/"  # the password is enough again


def test_new_recovery_codes_need_the_password_and_replace_the_old_ones(app, enrolled):
    user, secret, old_codes = enrolled
    browser = Browser(app)
    browser.password_step(user)
    browser.code_step(code_at(secret))
    token = browser.token("/profile/two-factor")
    wrong = browser.post(
        "/profile/two-factor/recovery-codes", {"codes-csrf_token": token, "codes-password": "x"}
    )
    assert wrong.status_code == 422
    response = browser.post(
        "/profile/two-factor/recovery-codes",
        {"codes-csrf_token": token, "codes-password": user.plain_password},
    )
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    new_codes = RECOVERY.findall(response.get_data(as_text=True))
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)

    other = Browser(app)
    other.password_step(user)
    assert other.code_step(old_codes[0]).status_code == 401
    assert other.code_step(new_codes[0]).status_code == 302


@pytest.mark.parametrize("extra_settings", [{"REQUIRE_2FA_FOR_ADMINS": "true"}], indirect=True)
def test_admins_must_set_it_up_when_required_and_agents_need_not(app, make_user):
    admin = make_user(email="boss@example.com", role="admin")
    token = admin.issue_api_token()
    db.session.commit()
    browser = Browser(app)
    assert browser.password_step(admin).status_code == 302

    for path in ("/", "/admin/agents", "/profile", "/conversations"):
        response = browser.get(path)
        assert response.status_code == 303, path
        assert response.headers["Location"] == "/profile/two-factor"
    htmx = browser.get("/conversations", headers={"HX-Request": "true"})
    assert htmx.headers["HX-Redirect"] == "/profile/two-factor"
    page = browser.get("/profile/two-factor").get_data(as_text=True)
    assert "Admins must use two-factor sign-in on this server." in page
    api = Browser(app).get("/api/v1/inboxes", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 200  # the API is not a browser session

    enrol(browser)
    assert browser.get("/admin/agents").status_code == 200

    agent = make_user(role="agent")
    other = Browser(app)
    other.password_step(agent)
    assert other.get("/").status_code == 200
    assert other.get("/profile/two-factor").status_code == 200

    admin_two = make_user(email="second@example.com", role="admin")
    third = Browser(app)
    third.password_step(admin_two)
    logout = third.post("/logout", {"csrf_token": third.token("/profile/two-factor")})
    assert logout.status_code == 302  # signing out always works
    assert logout.headers["Location"] == "/login"


def test_admins_are_not_redirected_when_it_is_not_required(app, make_user):
    admin = make_user(role="admin")
    browser = Browser(app)
    browser.password_step(admin)
    assert browser.get("/admin/agents").status_code == 200
    assert browser.get("/profile/two-factor").status_code == 200


def test_the_profile_card_needs_nothing_but_the_signed_in_user(app, make_user):
    """templates/two_factor/_profile_card.html, as the profile page includes it."""
    from flask import render_template_string

    from services import two_factor
    from services.sessions import start_session

    include = '{% include "two_factor/_profile_card.html" %}'
    user = make_user()
    with app.test_request_context("/profile"):
        start_session(user)
        card = render_template_string(include)
        assert "Off" in card and 'action="/profile/two-factor/setup"' in card
        two_factor.start_enrolment(user)
        assert "Finish setting up" in render_template_string(include)
        two_factor.confirm_enrolment(user, pyotp.TOTP(user.totp_secret).now())
        card = render_template_string(include)
        assert "On</span> since" in card and "10" in card
        assert user.totp_secret not in card
