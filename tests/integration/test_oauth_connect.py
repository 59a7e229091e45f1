"""Connect with Microsoft 365 / Google through the real pages: the Connect POST, the stand-in
identity provider's sign-in (tests/support/oauth_provider.py) and the callback, from an
inbox's settings and from the wizard; what the pages show once signed in, the reconnect
banner, Disconnect, and who may do any of it. The connection tests sign in with the token
on a Dovecot that takes XOAUTH2."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qsl, urlsplit

import pytest
from flask import url_for
from sqlalchemy import event, select, text

from extensions import db
from models import Inbox, OAuthConnection
from models.inboxes import ImapSettings, SmtpSettings
from services import oauth
from tests.conftest import csrf_token_from
from tests.support.oauth_provider import REVOKED_WORDS
from tests.support.smtp_server import running_smtp_server

HTMX = {"HX-Request": "true"}
MS_SCOPE = (
    "https://outlook.office.com/IMAP.AccessAsUser.All "
    "https://outlook.office.com/SMTP.Send offline_access"
)
REFUSED = f"Microsoft 365 refused the sign-in: {REVOKED_WORDS}"


@pytest.fixture
def providers_on() -> bool:
    return True


@pytest.fixture
def app_config(app_config, oauth_provider, providers_on):
    if not providers_on:
        return app_config
    return {**app_config, **oauth_provider.app_settings(tenant="common")}


@pytest.fixture
def admin(app, make_user, auth):
    user = make_user(email="root@example.com", name="Rita Admin", role="admin")
    auth.login(user.email, user.plain_password)
    return user


@pytest.fixture
def csrf(client, admin) -> str:
    return csrf_token_from(client.get("/admin/inboxes").get_data(as_text=True))


def page_text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def location(response) -> str:
    assert response.status_code == 303, page_text(response)
    return response.headers["Location"]


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def imap_inbox(**fields) -> Inbox:
    """An IMAP/SMTP inbox signed in with a password, as before OAuth."""
    inbox = Inbox(name="Support", support_address="support@example.com", mode="imap", **fields)
    inbox.imap = ImapSettings(
        host="imap.example.com", port=993, username="support@example.com", password="old-secret"
    )
    inbox.smtp = SmtpSettings(
        host="smtp.example.com", port=587, username="support@example.com", password="old-secret"
    )
    db.session.add(inbox)
    db.session.commit()
    return inbox


def connected(inbox: Inbox, provider="microsoft", **fields) -> OAuthConnection:
    conn = OAuthConnection(
        provider=provider, mailbox=inbox.support_address, refresh_token="refresh-1", **fields
    )
    inbox.oauth = conn
    db.session.commit()
    return conn


def connect(client, csrf, inbox, provider="microsoft", mailbox="support@example.com", **extra):
    return client.post(
        f"/admin/inboxes/{inbox.id}/oauth/{provider}/connect",
        data={"csrf_token": csrf, "mailbox": mailbox},
        **extra,
    )


def callback(client, url: str):
    """The provider's redirect back, as the browser follows it."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == oauth.redirect_uri()
    return client.get(f"{parts.path}?{parts.query}")


def settings_url(inbox) -> str:
    return f"/admin/inboxes/{inbox.id}/settings?section=connection"


# --- from an inbox's settings ------------------------------------------------------------------


def test_the_callback_is_where_the_redirect_uri_points(app):
    with app.test_request_context():
        path = url_for("inboxes.oauth_callback")
    assert (
        oauth.redirect_uri() == "http://localhost" + path == "http://localhost/admin/oauth/callback"
    )


def test_connection_tab_offers_both_providers_and_explains_the_registration(
    client, admin, oauth_provider
):
    inbox = imap_inbox()
    response = client.get(settings_url(inbox))
    page = page_text(response)
    assert "Connect with Microsoft 365" in page and "Connect with Google" in page
    assert 'name="mailbox"' in page and 'value="support@example.com"' in page
    assert "sign in as a user with Full Access and enter the shared mailbox's address" in page
    assert 'value="http://localhost/admin/oauth/callback"' in page
    for scope in (*MS_SCOPE.split(), "https://mail.google.com/"):
        assert f"<code>{scope}</code>" in page
    assert f'formaction="/admin/inboxes/{inbox.id}/oauth/microsoft/connect"' in page
    # Chromium checks form-action against the redirect after the Connect POST too.
    policy = response.headers["Content-Security-Policy"]
    assert f"form-action 'self' {oauth_provider.base_url};" in policy
    elsewhere = client.get("/admin/inboxes").headers["Content-Security-Policy"]
    assert "form-action 'self';" in elsewhere


def test_connect_from_settings_signs_in_and_fills_in_the_servers(
    client, csrf, admin, oauth_provider
):
    inbox = imap_inbox()
    answer = connect(client, csrf, inbox, mailbox="Support@Example.com")
    authorize = location(answer)
    assert authorize.startswith(f"{oauth_provider.base_url}/ms/common/oauth2/v2.0/authorize?")
    sent = query_of(authorize)
    assert set(sent) == {
        "client_id",
        "response_type",
        "redirect_uri",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
        "login_hint",
        "response_mode",
    }
    assert sent["client_id"] == oauth_provider.client_id
    assert sent["response_type"] == "code"
    assert sent["redirect_uri"] == "http://localhost/admin/oauth/callback"
    assert sent["scope"] == MS_SCOPE
    assert sent["code_challenge_method"] == "S256"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", sent["code_challenge"])
    assert sent["login_hint"] == "support@example.com"
    assert sent["response_mode"] == "query"
    assert len(sent["state"]) >= 32

    back = callback(client, oauth_provider.approve(authorize, login="agent@example.com"))
    (request,) = oauth_provider.authorize_requests
    assert {k: v for k, v in request.items() if k != "path"} == sent
    assert location(back) == settings_url(inbox)
    (exchange,) = oauth_provider.token_requests
    assert exchange["grant_type"] == "authorization_code"
    assert exchange["redirect_uri"] == sent["redirect_uri"]
    assert exchange["client_secret"] == oauth_provider.client_secret

    db.session.expire_all()
    conn = inbox.oauth
    assert (conn.provider, conn.mailbox) == ("microsoft", "support@example.com")
    assert oauth_provider.token_user(conn.access_token) == "agent@example.com"
    raw = db.session.execute(
        text("SELECT refresh_token, access_token FROM inbox_oauth WHERE id = :id"),
        {"id": conn.id},
    ).one()
    assert raw.refresh_token != conn.refresh_token and conn.refresh_token not in raw.refresh_token
    assert raw.access_token != conn.access_token and conn.access_token not in raw.access_token
    imap, smtp = inbox.imap, inbox.smtp
    assert (imap.host, imap.port, imap.security, imap.username) == (
        "outlook.office365.com",
        993,
        "ssl",
        "support@example.com",
    )
    assert (smtp.host, smtp.port, smtp.security, smtp.username) == (
        "smtp.office365.com",
        587,
        "starttls",
        "support@example.com",
    )

    page = page_text(client.get(location(back)))
    assert "Connected to Microsoft 365 as support@example.com." in page
    assert "Signed in with Microsoft 365 as <strong>support@example.com</strong>" in page
    assert "Reconnect" in page and "Disconnect" in page
    assert 'name="imap_password"' not in page and 'name="smtp_password"' not in page
    assert 'value="outlook.office365.com"' in page


def test_google_asks_for_offline_access_and_consent(client, csrf, admin, oauth_provider):
    inbox = imap_inbox()
    inbox.smtp = None  # sending through the deployment's server until now
    db.session.commit()
    authorize = location(connect(client, csrf, inbox, provider="google"))
    assert authorize.startswith(f"{oauth_provider.base_url}/google/authorize?")
    sent = query_of(authorize)
    assert sent["scope"] == "https://mail.google.com/"
    assert (sent["access_type"], sent["prompt"]) == ("offline", "consent")
    assert sent["login_hint"] == "support@example.com"
    assert set(sent) == {
        "client_id",
        "response_type",
        "redirect_uri",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
        "login_hint",
        "access_type",
        "prompt",
    }
    location(callback(client, oauth_provider.approve(authorize)))
    db.session.expire_all()
    assert inbox.oauth.provider == "google"
    assert (inbox.imap.host, inbox.smtp.host, inbox.smtp.port) == (
        "imap.gmail.com",
        "smtp.gmail.com",
        465,
    )


def test_htmx_connect_leaves_the_page_for_the_sign_in(client, csrf, admin, oauth_provider):
    inbox = imap_inbox()
    answer = connect(client, csrf, inbox, headers=HTMX)
    assert answer.status_code == 204
    assert answer.headers["HX-Redirect"].startswith(oauth_provider.base_url + "/ms/")


def test_a_refused_sign_in_shows_the_providers_words(client, csrf, admin, oauth_provider):
    inbox = imap_inbox()
    authorize = location(connect(client, csrf, inbox))
    refusal = oauth_provider.deny(authorize)
    denied = callback(client, refusal)
    assert denied.status_code == 400
    page = page_text(denied)
    said = query_of(refusal)["error_description"].splitlines()[0]
    assert f"Microsoft 365 did not connect the mailbox: {said}" in page
    assert f'href="{settings_url(inbox)}"' in page
    db.session.expire_all()
    assert inbox.oauth is None and inbox.imap.host == "imap.example.com"


def test_an_unknown_state_is_refused(client, admin):
    response = client.get("/admin/oauth/callback?state=forged&code=abc")
    assert response.status_code == 400
    page = page_text(response)
    assert "unknown or expired" in page and 'href="/admin/inboxes"' in page
    assert client.get("/admin/oauth/callback").status_code == 400
    assert db.session.scalar(select(OAuthConnection)) is None


def test_connect_needs_a_mailbox_address(client, csrf, admin):
    inbox = imap_inbox()
    response = connect(client, csrf, inbox, mailbox="not an address", headers=HTMX)
    assert response.status_code == 422
    page = page_text(response)
    assert "Enter the address of the mailbox to open" in page
    assert 'id="settings-connection"' in page and "<html" not in page


def test_connect_needs_the_csrf_token(client, admin, oauth_provider):
    inbox = imap_inbox()
    response = client.post(
        f"/admin/inboxes/{inbox.id}/oauth/microsoft/connect", data={"mailbox": "a@example.com"}
    )
    assert response.status_code == 400 and "Form expired" in page_text(response)
    assert oauth_provider.authorize_requests == []


def test_agents_can_neither_connect_nor_come_back(client, make_user, auth):
    inbox = imap_inbox()
    agent = make_user(email="ana@example.com")
    auth.login(agent.email, agent.plain_password)
    token = csrf_token_from(client.get("/").get_data(as_text=True))
    assert connect(client, token, inbox).status_code == 403
    disconnect = client.post(
        f"/admin/inboxes/{inbox.id}/oauth/disconnect", data={"csrf_token": token}
    )
    assert disconnect.status_code == 403
    assert client.get("/admin/oauth/callback?state=x&code=y").status_code == 403


@pytest.mark.parametrize("providers_on", [False])
def test_unconfigured_providers_are_explained_not_offered(client, csrf, admin):
    inbox = imap_inbox()
    page = page_text(client.get(settings_url(inbox)))
    assert "Connect with" not in page
    assert "set <code>MICROSOFT_CLIENT_ID</code> and <code>MICROSOFT_CLIENT_SECRET</code>" in page
    assert 'value="http://localhost/admin/oauth/callback"' in page
    assert connect(client, csrf, inbox).status_code == 404


def test_disconnect_goes_back_to_passwords(client, csrf, admin):
    inbox = imap_inbox()
    connected(inbox)
    answer = client.post(f"/admin/inboxes/{inbox.id}/oauth/disconnect", data={"csrf_token": csrf})
    assert location(answer) == settings_url(inbox)
    db.session.expire_all()
    assert inbox.oauth is None
    assert db.session.scalar(select(OAuthConnection)) is None
    page = page_text(client.get(settings_url(inbox)))
    assert "Disconnected from Microsoft 365: support@example.com now needs its password" in page
    assert 'name="imap_password"' in page and "Connect with Microsoft 365" in page


# --- signed in: tests, saving, the banner, the health page -------------------------------------


def test_connection_tests_and_saving_sign_in_with_the_token(
    client, csrf, admin, oauth_provider, dovecot_oauth, oauth_imap_account
):
    username, _password = oauth_imap_account
    inbox = imap_inbox()
    inbox.support_address = username
    authorize = location(connect(client, csrf, inbox, mailbox=username))
    location(callback(client, oauth_provider.approve(authorize, login=username)))
    fields = {
        "csrf_token": csrf,
        "section": "connection",
        "mode": "imap",
        "imap_host": "127.0.0.1",
        "imap_port": str(dovecot_oauth.port),
        "imap_security": "none",
        "imap_username": "someone-else@example.com",  # the mailbox signed in to wins
        "imap_folders": "INBOX",
        "imap_poll_interval": "60",
        "imap_after_import": "leave",
    }
    with running_smtp_server(xoauth2=oauth_provider) as smtp:
        fields.update(smtp_host=smtp.host, smtp_port=str(smtp.port), smtp_security="none")
        tested = client.post(
            f"/admin/inboxes/{inbox.id}/settings/test/imap", data=fields, headers=HTMX
        )
        assert f"as {username}; " in page_text(tested), page_text(tested)
        smtp_tested = client.post(
            f"/admin/inboxes/{inbox.id}/settings/test/smtp", data=fields, headers=HTMX
        )
        assert f"signed in as {username}." in page_text(smtp_tested), page_text(smtp_tested)
        saved = client.post(f"/admin/inboxes/{inbox.id}/settings", data=fields)
        assert saved.status_code == 200 and "Saved." in page_text(saved), page_text(saved)
        assert smtp.xoauth2_blobs and f"user={username}".encode() in smtp.xoauth2_blobs[-1]
    db.session.expire_all()
    assert (inbox.imap.host, inbox.imap.username) == ("127.0.0.1", username)
    assert inbox.imap.password == "old-secret"  # untouched, unused while signed in


def test_saving_keeps_needs_attention_while_the_sign_in_is_refused(client, csrf, admin):
    inbox = imap_inbox(needs_attention=f"Reconnect Microsoft 365: {REFUSED}")
    connected(inbox, last_error=REFUSED)
    fields = {
        "csrf_token": csrf,
        "section": "connection",
        "mode": "imap",
        "imap_host": "outlook.office365.com",
        "imap_port": "993",
        "imap_security": "ssl",
        "imap_folders": "INBOX",
        "imap_poll_interval": "120",
        "imap_after_import": "leave",
        "smtp_host": "smtp.office365.com",
        "smtp_port": "587",
        "smtp_security": "starttls",
    }
    refused = client.post(f"/admin/inboxes/{inbox.id}/settings", data=fields)
    assert refused.status_code == 422
    page = page_text(refused)
    assert f"{REFUSED} Reconnect with Microsoft 365 to sign in again." in page
    assert "Enter the password" not in page
    saved = client.post(
        f"/admin/inboxes/{inbox.id}/settings",
        data={**fields, "imap_override": "1", "smtp_override": "1"},
    )
    assert saved.status_code == 200 and "Saved." in page_text(saved)
    db.session.expire_all()
    assert inbox.imap.poll_interval_seconds == 120
    assert inbox.needs_attention == f"Reconnect Microsoft 365: {REFUSED}"
    assert "Reconnect under" in page_text(saved)


def test_reconnecting_clears_the_attention_and_the_banner(
    client, csrf, admin, make_user, auth, oauth_provider
):
    inbox = imap_inbox(needs_attention=f"Reconnect Microsoft 365: {REFUSED}")
    connected(inbox, last_error=REFUSED)
    archived = Inbox(name="Old", support_address="old@example.com", mode="imap")
    archived.archived_at = inbox.created_at
    db.session.add(archived)
    db.session.commit()
    connected(archived, last_error="refused too")

    banner = (
        f"Microsoft 365 sign-in for <strong>Support</strong> needs reconnecting: {REFUSED} — "
        f'<a href="{settings_url(inbox)}">Reconnect</a>'
    )
    for url in ("/admin/inboxes", "/conversations", "/admin/agents"):
        assert banner in page_text(client.get(url)), url
    assert "Old</strong> needs reconnecting" not in page_text(client.get("/admin/inboxes"))

    authorize = location(connect(client, csrf, inbox))
    location(callback(client, oauth_provider.approve(authorize)))
    db.session.expire_all()
    assert inbox.needs_attention is None and inbox.oauth.last_error is None
    assert "needs reconnecting" not in page_text(client.get("/admin/inboxes"))


def test_agents_see_no_banner_and_cost_no_query(client, make_user, auth):
    inbox = imap_inbox(needs_attention="Reconnect Microsoft 365: x")
    connected(inbox, last_error="x")
    agent = make_user(email="ana@example.com")
    auth.login(agent.email, agent.plain_password)
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        page = page_text(client.get("/conversations"))
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert "needs reconnecting" not in page
    assert not [s for s in statements if "inbox_oauth" in s]


def test_health_page_shows_the_tokens_state(client, admin):
    inbox = imap_inbox()
    conn = connected(inbox)
    page = page_text(client.get(f"/admin/inboxes/{inbox.id}/health"))
    assert oauth.token_state(conn) in page
    assert "Signed in with Microsoft 365 as support@example.com" in page
    conn.last_error = REFUSED
    inbox.needs_attention = f"Reconnect Microsoft 365: {REFUSED}"
    db.session.commit()
    page = page_text(client.get(f"/admin/inboxes/{inbox.id}/health"))
    assert f"Needs reconnecting (Microsoft 365, support@example.com): {REFUSED}" in page
    assert "Polling and replies are paused until an admin signs in again" in page


# --- from the wizard ---------------------------------------------------------------------------


class Wizard:
    def __init__(self, client, csrf):
        self.client, self.csrf, self.base = client, csrf, None

    def start(self, address: str) -> None:
        answer = self.client.post(
            "/admin/inboxes/new",
            data={"csrf_token": self.csrf, "name": "Help", "support_address": address},
        )
        self.base = location(answer).rsplit("/", 1)[0]
        assert location(self.post("mode", {"mode": "imap"})).endswith("/connection")

    @property
    def draft_id(self) -> str:
        return self.base.rsplit("/", 1)[1]

    def post(self, step: str, data: dict | None = None, go="next"):
        form = {"csrf_token": self.csrf, "go": go, **(data or {})}
        return self.client.post(f"{self.base}/{step}", data=form)


def test_wizard_connect_comes_back_to_the_step_and_creates_a_signed_in_inbox(
    client, csrf, admin, oauth_provider, dovecot_oauth, oauth_imap_account
):
    username, _password = oauth_imap_account
    wizard = Wizard(client, csrf)
    wizard.start(username)
    step = page_text(client.get(f"{wizard.base}/connection"))
    assert "Connect with Microsoft 365" in step and f'value="{username}"' in step
    connect_url = f"{wizard.base}/oauth/microsoft/connect"
    assert f'formaction="{connect_url}"' in step
    typed = {"csrf_token": csrf, "mailbox": username, "imap_poll_interval": "300"}
    authorize = location(client.post(connect_url, data=typed))
    assert query_of(authorize)["login_hint"] == username

    back = callback(client, oauth_provider.approve(authorize, login=username))
    assert location(back) == f"{wizard.base}/connection"
    conn = oauth.connection_for_draft(wizard.draft_id)
    assert conn.inbox_id is None and conn.mailbox == username
    step = page_text(client.get(location(back)))
    assert f"Connected to Microsoft 365 as {username}." in step
    assert f"Signed in with Microsoft 365 as <strong>{username}</strong>" in step
    assert 'value="outlook.office365.com"' in step and 'value="smtp.office365.com"' in step
    assert 'value="300"' in step  # what was typed before Connect was kept
    assert 'name="imap_password"' not in step

    # Next tests IMAP with the token (the host pointed at a Dovecot taking XOAUTH2).
    servers = {
        "imap_host": "127.0.0.1",
        "imap_port": str(dovecot_oauth.port),
        "imap_security": "none",
        "imap_folders": "INBOX",
        "imap_poll_interval": "300",
        "imap_after_import": "leave",
        "smtp_host": "smtp.office365.com",
        "smtp_port": "587",
        "smtp_security": "starttls",
        "smtp_override": "1",
    }
    assert location(wizard.post("connection", servers)).endswith("/identity")
    identity = {"sender_name_style": "inbox", "reply_to_style": "inbox", "signature": ""}
    assert location(wizard.post("identity", identity)).endswith("/agents")
    created = location(wizard.post("agents", {"member_ids": [str(admin.id)]}))
    inbox = db.session.scalar(select(Inbox).where(Inbox.support_address == username))
    assert created.endswith(f"/admin/inboxes/{inbox.id}/test")
    db.session.expire_all()
    assert inbox.oauth.id == conn.id and inbox.oauth.draft_id is None
    assert inbox.oauth.mailbox == username
    assert (inbox.imap.host, inbox.imap.username, inbox.imap.password) == (
        "127.0.0.1",
        username,
        "",
    )
    assert (inbox.smtp.host, inbox.smtp.username) == ("smtp.office365.com", username)


def test_wizard_disconnect_and_a_refused_sign_in(client, csrf, admin, oauth_provider):
    wizard = Wizard(client, csrf)
    wizard.start("help@example.com")
    connect_url = f"{wizard.base}/oauth/microsoft/connect"
    authorize = location(client.post(connect_url, data={"csrf_token": csrf, "mailbox": "x@y.z"}))
    denied = callback(client, oauth_provider.deny(authorize))
    assert denied.status_code == 400
    assert f'href="{wizard.base}/connection"' in page_text(denied)

    authorize = location(
        client.post(connect_url, data={"csrf_token": csrf, "mailbox": "help@example.com"})
    )
    location(callback(client, oauth_provider.approve(authorize)))
    assert oauth.connection_for_draft(wizard.draft_id) is not None
    answer = client.post(f"{wizard.base}/oauth/disconnect", data={"csrf_token": csrf})
    assert location(answer) == f"{wizard.base}/connection"
    assert oauth.connection_for_draft(wizard.draft_id) is None
    step = page_text(client.get(f"{wizard.base}/connection"))
    assert "Disconnected from Microsoft 365" in step and 'name="imap_password"' in step
    # Without a sign-in, the password is required again.
    response = wizard.post("connection", {"imap_host": "imap.example.com"})
    assert response.status_code == 422
    assert "Enter the password or app password of the mailbox." in page_text(response)
