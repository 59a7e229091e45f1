"""services/oauth.py against the stand-in identity provider (tests/support/oauth_provider.py):
the authorize parameters and token request bodies it sees, exactly; tokens encrypted at
rest; refresh ahead of expiry, once across workers; a refused refresh pauses the inbox and
emails the admins once."""

from __future__ import annotations

import threading
from datetime import timedelta
from email import message_from_bytes
from email.policy import default
from urllib.parse import parse_qsl, urlsplit

import pytest
from sqlalchemy import text

from extensions import db
from models import ImapSettings, Inbox, OAuthConnection, utcnow
from services import oauth, oauth_providers
from tests.conftest import global_smtp

MS_SCOPE = (
    "https://outlook.office.com/IMAP.AccessAsUser.All "
    "https://outlook.office.com/SMTP.Send offline_access"
)


@pytest.fixture
def app_config(app_config, oauth_provider, smtp):
    return {**app_config, **oauth_provider.app_settings(), **global_smtp(smtp)}


@pytest.fixture
def admin(make_user):
    return make_user(email="admin@example.com", name="Ada Admin", role="admin")


def query(url: str) -> dict:
    return dict(parse_qsl(urlsplit(url).query))


def connect(provider, inbox, admin, which="microsoft", mailbox="support@contoso.com"):
    url = oauth.start(which, mailbox, admin.id, inbox_id=inbox.id)
    callback = query(provider.approve(url, login=mailbox))
    return oauth.complete(callback["state"], callback.get("code"), None, None, admin.id)


def test_microsoft_authorize_and_code_exchange_send_exactly_what_the_platform_expects(
    app, oauth_provider, inbox, admin
):
    url = oauth.start("microsoft", "Support@Contoso.com", admin.id, inbox_id=inbox.id)
    assert url.startswith(oauth_provider.base_url + "/ms/contoso.test/oauth2/v2.0/authorize?")
    callback = oauth_provider.approve(url, login="support@contoso.com")
    assert callback.startswith("http://localhost/admin/oauth/callback?")
    [seen] = oauth_provider.authorize_requests
    state = seen["state"]
    assert seen == {
        "path": "/ms/contoso.test/oauth2/v2.0/authorize",
        "client_id": "threadline-test-client",
        "response_type": "code",
        "redirect_uri": "http://localhost/admin/oauth/callback",
        "scope": MS_SCOPE,
        "state": state,
        "code_challenge": seen["code_challenge"],
        "code_challenge_method": "S256",
        "login_hint": "support@contoso.com",
        "response_mode": "query",
    }
    assert len(seen["code_challenge"]) == 43 and len(state) >= 32

    back = query(callback)
    conn = oauth.complete(back["state"], back["code"], None, None, admin.id)

    [exchange] = oauth_provider.token_requests
    assert exchange == {
        "path": "/ms/contoso.test/oauth2/v2.0/token",
        "grant_type": "authorization_code",
        "code": back["code"],
        "redirect_uri": "http://localhost/admin/oauth/callback",
        "client_id": "threadline-test-client",
        "client_secret": "threadline-test-secret",
        "code_verifier": exchange["code_verifier"],  # the stand-in checked it against S256
    }
    assert conn.inbox_id == inbox.id and conn.provider == "microsoft"
    assert conn.mailbox == "support@contoso.com"
    assert oauth_provider.token_user(conn.access_token) == "support@contoso.com"
    assert conn.access_expires_at > utcnow() + timedelta(minutes=55)
    assert conn.last_refresh_at is not None and conn.last_error is None


def test_google_asks_for_offline_access_and_consent(app, oauth_provider, inbox, admin):
    conn = connect(oauth_provider, inbox, admin, which="google", mailbox="help@gmail.com")
    [seen] = oauth_provider.authorize_requests
    assert seen["path"] == "/google/authorize"
    assert seen["scope"] == "https://mail.google.com/"
    assert (seen["access_type"], seen["prompt"]) == ("offline", "consent")
    assert seen["login_hint"] == "help@gmail.com"
    assert "response_mode" not in seen
    assert oauth_provider.token_requests[0]["path"] == "/google/token"
    assert conn.provider == "google"


def test_tokens_are_encrypted_at_rest(app, oauth_provider, inbox, admin):
    conn = connect(oauth_provider, inbox, admin)
    row = db.session.execute(
        text("SELECT refresh_token, access_token FROM inbox_oauth WHERE id = :id"),
        {"id": conn.id},
    ).one()
    assert conn.refresh_token.startswith("rt-") and conn.access_token.startswith("at-")
    assert conn.refresh_token not in row.refresh_token
    assert conn.access_token not in row.access_token
    assert row.refresh_token.startswith("gAAAA")  # Fernet


def test_a_state_is_used_once_by_the_admin_who_started_it(app, oauth_provider, inbox, admin):
    url = oauth.start("microsoft", "support@contoso.com", admin.id, inbox_id=inbox.id)
    back = query(oauth_provider.approve(url))
    with pytest.raises(oauth.OAuthError, match="started by another admin"):
        oauth.complete(back["state"], back["code"], None, None, admin.id + 1000)
    # The state is used up by any callback: a replay is refused.
    with pytest.raises(oauth.OAuthError, match="unknown or expired"):
        oauth.complete(back["state"], back["code"], None, None, admin.id)
    with pytest.raises(oauth.OAuthError, match="unknown or expired"):
        oauth.complete("made-up", "code", None, None, admin.id)
    assert db.session.query(OAuthConnection).count() == 0
    assert oauth_provider.token_requests == []


def test_a_declined_consent_is_refused_in_the_providers_words(app, oauth_provider, inbox, admin):
    url = oauth.start("microsoft", "support@contoso.com", admin.id, inbox_id=inbox.id)
    back = query(oauth_provider.deny(url))
    with pytest.raises(oauth.OAuthError) as refused:
        oauth.complete(back["state"], None, back["error"], back["error_description"], admin.id)
    assert refused.value.words == (
        "Microsoft 365 did not connect the mailbox: "
        "AADSTS65004: User declined to consent to access the app."
    )
    assert oauth_provider.token_requests == []


def test_start_refuses_an_unconfigured_provider_and_a_bad_mailbox(app, admin, inbox):
    app.extensions["threadline.settings"].google_client_id = ""
    with pytest.raises(oauth.OAuthError, match="not configured"):
        oauth.start("google", "a@example.com", admin.id, inbox_id=inbox.id)
    with pytest.raises(oauth.OAuthError, match="not an email address"):
        oauth.start("microsoft", "not-an-address", admin.id, inbox_id=inbox.id)
    assert [p.name for p in oauth_providers.enabled_providers()] == ["microsoft"]


def test_a_fresh_token_is_handed_out_without_asking_the_provider(app, oauth_provider, inbox, admin):
    conn = connect(oauth_provider, inbox, admin)
    before = len(oauth_provider.token_requests)
    assert oauth.access_token(conn) == conn.access_token
    assert len(oauth_provider.token_requests) == before


def test_a_token_near_expiry_is_refreshed_first_with_the_exact_body(
    app, oauth_provider, inbox, admin
):
    conn = connect(oauth_provider, inbox, admin)
    old_access, old_refresh = conn.access_token, conn.refresh_token
    conn.access_expires_at = utcnow() + timedelta(minutes=4)  # inside the 5-minute margin
    db.session.commit()

    token = oauth.access_token(conn)

    refresh = oauth_provider.token_requests[-1]
    assert refresh == {
        "path": "/ms/contoso.test/oauth2/v2.0/token",
        "grant_type": "refresh_token",
        "refresh_token": old_refresh,
        "client_id": "threadline-test-client",
        "client_secret": "threadline-test-secret",
        "scope": MS_SCOPE,
    }
    assert token != old_access and oauth_provider.token_user(token) == "support@contoso.com"
    db.session.expire_all()
    stored = db.session.get(OAuthConnection, conn.id)
    assert stored.access_token == token
    assert stored.refresh_token != old_refresh  # Microsoft rotates refresh tokens: kept
    assert stored.access_expires_at > utcnow() + timedelta(minutes=55)


def test_two_workers_needing_a_refresh_at_once_refresh_once(app, oauth_provider, inbox, admin):
    conn = connect(oauth_provider, inbox, admin)
    conn.access_expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    conn_id, before = conn.id, len(oauth_provider.token_requests)
    tokens, errors, ready = [], [], threading.Barrier(2)

    def worker():
        # Each thread has its own app context, so its own database session and connection,
        # as two worker processes would.
        with app.app_context():
            try:
                mine = db.session.get(OAuthConnection, conn_id)
                ready.wait(timeout=10)
                tokens.append(oauth.access_token(mine))
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(tokens) == 2 and tokens[0] == tokens[1]
    refreshes = oauth_provider.token_requests[before:]
    assert [r["grant_type"] for r in refreshes] == ["refresh_token"]


def test_a_refused_refresh_pauses_the_inbox_and_emails_the_admins_once(
    app, oauth_provider, inbox, admin, make_user, smtp
):
    from worker import build_worker

    make_user(email="agent@example.com", role="agent")
    second_admin = make_user(email="boss@example.com", name="Bo Boss", role="admin")
    inbox.mode = "imap"
    inbox.imap = ImapSettings(host="127.0.0.1", username="support@contoso.com", password="")
    conn = connect(oauth_provider, inbox, admin)
    conn.access_expires_at = utcnow()
    db.session.commit()
    oauth_provider.revoke("support@contoso.com")

    with pytest.raises(oauth.OAuthRevoked) as refused:
        oauth.access_token(conn)
    words = (
        "Microsoft 365 refused the sign-in: AADSTS70008: The refresh token has expired or "
        "been revoked due to inactivity. The token was issued on 2026-01-01T00:00:00Z and was "
        "inactive for 90.00:00:00."
    )
    assert refused.value.words == words
    db.session.expire_all()
    inbox = db.session.get(Inbox, inbox.id)
    assert inbox.needs_attention == f"Reconnect Microsoft 365: {words}"
    assert inbox.oauth.last_error == words

    # Later calls refuse at once: the provider is not asked again, no second email.
    asked = len(oauth_provider.token_requests)
    with pytest.raises(oauth.OAuthRevoked):
        oauth.access_token(inbox.oauth)
    assert len(oauth_provider.token_requests) == asked

    before = len(smtp.envelopes)
    build_worker(app, ["default"], simple=True).work(burst=True)
    emails = smtp.wait_for_messages(before + 2)[before:]
    assert sorted(e.rcpt_tos[0] for e in emails) == ["admin@example.com", second_admin.email]
    sent = message_from_bytes(emails[0].content, policy=default)
    assert sent["Subject"] == "Reconnect the mailbox of Support"
    body = sent.get_content()
    assert words.split(":")[0] in body
    assert f"/admin/inboxes/{inbox.id}/settings?section=connection" in body
    build_worker(app, ["default"], simple=True).work(burst=True)
    assert len(smtp.envelopes) == before + 2


def test_a_provider_outage_is_temporary_and_pauses_nothing(app, oauth_provider, inbox, admin):
    conn = connect(oauth_provider, inbox, admin)
    conn.access_expires_at = utcnow()
    db.session.commit()
    oauth_provider.unavailable = True
    with pytest.raises(oauth.OAuthUnavailable, match="answered 503"):
        oauth.access_token(conn)
    db.session.expire_all()
    assert db.session.get(Inbox, inbox.id).needs_attention is None
    oauth_provider.unavailable = False
    assert oauth_provider.token_user(oauth.access_token(conn)) == "support@contoso.com"


def test_reconnecting_clears_the_refusal_and_resumes_polling(app, oauth_provider, inbox, admin):
    inbox.mode = "imap"
    inbox.imap = ImapSettings(host="127.0.0.1", username="support@contoso.com", password="")
    conn = connect(oauth_provider, inbox, admin)
    conn.last_error = "refused"
    inbox.needs_attention = "Reconnect Microsoft 365: refused"
    inbox.imap.next_poll_at = utcnow() + timedelta(hours=1)
    db.session.commit()

    again = connect(oauth_provider, inbox, admin)

    assert again.id == conn.id and again.last_error is None
    db.session.expire_all()
    inbox = db.session.get(Inbox, inbox.id)
    assert inbox.needs_attention is None and inbox.imap.next_poll_at is None
    assert db.session.query(OAuthConnection).count() == 1


def test_a_wizard_drafts_connection_becomes_the_new_inboxs(app, oauth_provider, admin):
    url = oauth.start("google", "help@gmail.com", admin.id, draft_id="draft-1")
    back = query(oauth_provider.approve(url, login="help@gmail.com"))
    conn = oauth.complete(back["state"], back["code"], None, None, admin.id)
    assert (conn.inbox_id, conn.draft_id) == (None, "draft-1")
    assert oauth.connection_for_draft("draft-1") is conn

    inbox = Inbox(name="Help", support_address="help@gmail.com")
    db.session.add(inbox)
    oauth.attach_draft("draft-1", inbox)
    db.session.commit()
    assert oauth.connection_for_inbox(inbox.id).id == conn.id
    assert oauth.connection_for_draft("draft-1") is None
    assert "Signed in with Google as help@gmail.com" in oauth.token_state(conn)

    oauth.disconnect(inbox)
    assert db.session.query(OAuthConnection).count() == 0


def test_the_tokens_of_an_abandoned_wizard_draft_are_forgotten_after_a_day(
    app, oauth_provider, admin, inbox
):
    url = oauth.start("microsoft", "support@contoso.com", admin.id, draft_id="old-draft")
    back = query(oauth_provider.approve(url))
    old = oauth.complete(back["state"], back["code"], None, None, admin.id)
    kept = connect(oauth_provider, inbox, admin)
    old.created_at = kept.created_at = utcnow() - timedelta(days=2)
    db.session.commit()
    assert oauth.purge_abandoned_drafts() == 1
    assert [c.id for c in db.session.query(OAuthConnection)] == [kept.id]
