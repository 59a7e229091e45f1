"""Sessions end on the server: sign-out, password and role changes, deactivation and "sign
out everywhere" make every copied cookie useless, and reactivation revives nothing.

Each request runs in a fresh app context, as real requests do: Flask-Login and Flask-WTF
cache the user and the CSRF token in `g`, which would otherwise hide what the server
decides on the next request.
"""

from __future__ import annotations

from http.cookies import SimpleCookie

import pytest

from extensions import db
from tests.conftest import csrf_token_from

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"  # a real UA


def days_left(set_cookie: str) -> float:
    """Days until a Set-Cookie header's Expires."""
    import re
    from datetime import UTC, datetime
    from email.utils import parsedate_to_datetime

    expires = parsedate_to_datetime(re.search(r"Expires=([^;]+)", set_cookie).group(1))
    return (expires - datetime.now(UTC)).total_seconds() / 86400


class Browser:
    """A test client that behaves like one browser: its own cookie jar and address."""

    def __init__(self, app, address="192.0.2.1", agent=BROWSER):
        self.app, self.client = app, app.test_client()
        self.environ = {"REMOTE_ADDR": address, "HTTP_USER_AGENT": agent}

    def get(self, path, **kwargs):
        with self.app.app_context():
            return self.client.get(path, environ_base=self.environ, **kwargs)

    def post(self, path, data=None, **kwargs):
        with self.app.app_context():
            return self.client.post(path, data=data or {}, environ_base=self.environ, **kwargs)

    def form_post(self, page: str, path: str, data=None):
        token = csrf_token_from(self.get(page).get_data(as_text=True))
        return self.post(path, {**(data or {}), "csrf_token": token})

    def sign_in(self, user, remember=False):
        data = {"email": user.email, "password": user.plain_password}
        if remember:
            data["remember"] = "y"
        response = self.form_post("/login", "/login", data)
        assert response.status_code == 302, response.get_data(as_text=True)
        return response

    def signed_in(self) -> bool:
        response = self.get("/profile")
        if response.status_code == 302:
            assert "/login" in response.headers["Location"]
            return False
        assert response.status_code == 200
        return True

    def cookies(self) -> dict[str, str]:
        return {c.key: c.value for c in self.client._cookies.values()}

    def copy(self, only: tuple[str, ...] | None = None) -> Browser:
        """Another browser holding a copy of this one's cookies (a stolen cookie jar)."""
        other = Browser(self.app, address="203.0.113.66")
        for key, value in self.cookies().items():
            if only is None or key in only:
                other.client.set_cookie(key, value)
        return other


@pytest.fixture
def admin(app, make_user):
    user = make_user(email="boss@example.com", name="Bea Boss", role="admin")
    browser = Browser(app, address="192.0.2.200")
    browser.sign_in(user)
    return browser


def test_a_cookie_copied_before_sign_out_is_refused_after_it(app, make_user):
    user = make_user()
    browser = Browser(app)
    browser.sign_in(user, remember=True)
    stolen = browser.copy()
    remember_only = browser.copy(only=("remember_token",))
    assert stolen.signed_in() and remember_only.signed_in()

    assert browser.form_post("/profile", "/logout").status_code == 302
    assert not browser.signed_in()
    assert not stolen.signed_in()
    assert not remember_only.signed_in()
    # The replayed cookie gets a page that says what happened.
    response = stolen.get("/conversations", follow_redirects=True)
    assert "Your session has ended" in response.get_data(as_text=True)


def test_htmx_requests_of_an_ended_session_navigate_to_sign_in(app, make_user):
    user = make_user()
    browser = Browser(app)
    browser.sign_in(user)
    stolen = browser.copy()
    browser.form_post("/profile", "/logout")
    response = stolen.get("/conversations", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response.headers["HX-Redirect"].startswith("/login?next=")


def test_cookie_attributes(app, make_user):
    user = make_user()
    response = Browser(app).sign_in(user, remember=True)
    cookies = {}
    for header in response.headers.getlist("Set-Cookie"):
        parsed = SimpleCookie()
        parsed.load(header)
        for key, morsel in parsed.items():
            cookies[key] = (morsel, header)
    for name in ("session", "remember_token"):
        morsel, header = cookies[name]
        assert "HttpOnly" in header and "SameSite=Lax" in header, header
        assert "Secure" not in header  # APP_URL is http:// in tests
    assert days_left(cookies["remember_token"][1]) == pytest.approx(30, abs=0.01)


@pytest.mark.parametrize(
    "extra_settings",
    [{"APP_URL": "https://help.example.com", "REMEMBER_ME_DAYS": "7"}],
    indirect=True,
)
def test_cookies_are_secure_under_https_and_remember_me_follows_the_setting(
    app_config, extra_settings, make_user
):
    from app import create_app

    app = create_app({**app_config, **extra_settings})
    user = make_user()
    browser = Browser(app)
    response = browser.sign_in(user, remember=True)
    headers = response.headers.getlist("Set-Cookie")
    for name in ("session=", "remember_token=", "threadline_device="):
        [header] = [h for h in headers if h.startswith(name)]
        assert "Secure" in header and "HttpOnly" in header and "SameSite=Lax" in header
    [remember] = [h for h in headers if h.startswith("remember_token=")]
    assert days_left(remember) == pytest.approx(7, abs=0.01)


def test_admin_password_reset_ends_every_session_and_the_api_token(app, admin, make_user):
    agent = make_user(email="ana@example.com")
    laptop, phone = Browser(app), Browser(app, address="198.51.100.3")
    laptop.sign_in(agent, remember=True)
    phone.sign_in(agent)
    remember_only = laptop.copy(only=("remember_token",))
    token = agent.issue_api_token()
    db.session.commit()
    api = app.test_client()
    assert (
        api.get("/api/v1/inboxes", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    )

    response = admin.form_post(
        f"/admin/agents/{agent.id}",
        f"/admin/agents/{agent.id}/password",
        {"password": "a brand new password", "revoke_api_token": "1"},
    )
    assert response.status_code in (200, 303)
    assert not laptop.signed_in() and not phone.signed_in() and not remember_only.signed_in()
    assert (
        api.get("/api/v1/inboxes", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    )
    assert admin.signed_in()  # the admin's own session is untouched


def test_admin_password_reset_can_keep_the_api_token(app, admin, make_user):
    agent = make_user()
    token = agent.issue_api_token()
    db.session.commit()
    admin.form_post(
        f"/admin/agents/{agent.id}",
        f"/admin/agents/{agent.id}/password",
        {"password": "a brand new password"},  # the box unticked
    )
    api = app.test_client()
    assert (
        api.get("/api/v1/inboxes", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    )


def test_reactivation_revives_no_cookie_and_no_token(app, admin, make_user):
    agent = make_user()
    browser = Browser(app)
    browser.sign_in(agent, remember=True)
    stolen = browser.copy()
    token = agent.issue_api_token()
    db.session.commit()
    page = f"/admin/agents/{agent.id}"
    admin.form_post(page, f"/admin/agents/{agent.id}/active", {"active": "0"})
    assert not browser.signed_in()
    admin.form_post(page, f"/admin/agents/{agent.id}/active", {"active": "1"})
    db.session.refresh(agent)
    assert agent.active
    assert not browser.signed_in() and not stolen.signed_in()
    api = app.test_client()
    assert (
        api.get("/api/v1/inboxes", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    )
    Browser(app).sign_in(agent)  # the account itself works again


def test_a_role_change_ends_the_sessions(app, admin, make_user):
    agent = make_user()
    browser = Browser(app)
    browser.sign_in(agent)
    admin.form_post(
        f"/admin/agents/{agent.id}", f"/admin/agents/{agent.id}/role", {"role": "admin"}
    )
    assert not browser.signed_in()


def test_changing_ones_password_keeps_this_browser_and_ends_the_others(app, make_user):
    user = make_user()
    here, there = Browser(app), Browser(app, address="198.51.100.9")
    here.sign_in(user)
    there.sign_in(user, remember=True)
    response = here.form_post(
        "/profile",
        "/profile/password",
        {
            "current": user.plain_password,
            "password": "plum orchard 1999",
            "confirm": "plum orchard 1999",
        },
    )
    assert response.status_code == 302
    assert "1 other session(s) signed out" in here.get("/profile").get_data(as_text=True)
    assert here.signed_in() and not there.signed_in()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"current": "wrong", "password": "plum orchard 1999", "confirm": "plum orchard 1999"},
            "This is not your current password.",
        ),
        ({"password": "short one", "confirm": "short one"}, "at least 12 characters"),
        ({"password": "password1234", "confirm": "password1234"}, "passwords attackers try first"),
        (
            {"password": "plum orchard 1999", "confirm": "plum orchard 2000"},
            "The two passwords differ.",
        ),
    ],
)
def test_a_bad_new_password_says_what_to_fix(app, make_user, fields, message):
    user = make_user()
    browser = Browser(app)
    browser.sign_in(user)
    response = browser.form_post(
        "/profile", "/profile/password", {"current": user.plain_password, **fields}
    )
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    db.session.refresh(user)
    assert user.check_password(user.plain_password)


def test_the_profile_lists_sessions_and_signs_out_one(app, make_user):
    user = make_user()
    here = Browser(app, address="192.0.2.10")
    phone = Browser(
        app,
        address="198.51.100.77",
        agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
    )
    here.sign_in(user)
    phone.sign_in(user, remember=True)
    page = here.get("/profile").get_data(as_text=True)
    assert "Firefox on Linux" in page and "this browser" in page and "192.0.2.10" in page
    assert "Mobile Safari on iOS" in page and "198.51.100.77" in page

    from models import UserSession

    phone_row = db.session.query(UserSession).filter_by(ip_address="198.51.100.77").one()
    response = here.form_post("/profile", f"/profile/sessions/{phone_row.id}/end")
    assert response.status_code == 302
    assert not phone.signed_in() and here.signed_in()
    assert "198.51.100.77" not in here.get("/profile").get_data(as_text=True)


def test_nobody_ends_someone_elses_session(app, make_user):
    ana, bob = make_user(), make_user()
    ana_browser, bob_browser = Browser(app), Browser(app)
    ana_browser.sign_in(ana)
    bob_browser.sign_in(bob)
    from models import UserSession

    bob_row = db.session.query(UserSession).filter_by(user_id=bob.id).one()
    ana_browser.form_post("/profile", f"/profile/sessions/{bob_row.id}/end")
    assert bob_browser.signed_in()


def test_sign_out_everywhere(app, make_user):
    user = make_user()
    browsers = [Browser(app, address=f"192.0.2.{n}") for n in range(1, 4)]
    for n, browser in enumerate(browsers):
        browser.sign_in(user, remember=n == 0)
    stolen = browsers[0].copy(only=("remember_token",))
    response = browsers[1].form_post("/profile", "/profile/sessions/end-all")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert not any(b.signed_in() for b in [*browsers, stolen])


def test_an_expired_session_is_signed_out(app, make_user):
    from datetime import timedelta

    from models import UserSession, utcnow

    user = make_user()
    browser = Browser(app)
    browser.sign_in(user)
    row = db.session.query(UserSession).filter_by(user_id=user.id).one()
    row.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert not browser.signed_in()


def test_only_a_hash_of_the_session_id_is_stored(app, make_user):
    from models import UserSession

    user = make_user()
    browser = Browser(app)
    browser.sign_in(user, remember=True)
    row = db.session.query(UserSession).filter_by(user_id=user.id).one()
    cookies = " ".join(browser.cookies().values())
    assert row.token_hash not in cookies
    assert len(row.token_hash) == 64


def test_the_hourly_sweep_deletes_expired_sessions_only(app, make_user):
    from datetime import timedelta

    from models import UserSession, utcnow
    from services.sessions import purge_expired_sessions

    user = make_user()
    old, live = Browser(app), Browser(app)
    old.sign_in(user)
    live.sign_in(user)
    first = db.session.query(UserSession).order_by(UserSession.id).first()
    first.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    assert purge_expired_sessions() == 1
    assert db.session.query(UserSession).count() == 1 and live.signed_in()
