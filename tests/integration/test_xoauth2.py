"""XOAUTH2 end to end: polling a real Dovecot that checks bearer tokens against the stand-in
identity provider (tests/support/oauth_provider.py), sending through a real aiosmtpd that
takes AUTH XOAUTH2, refreshing ahead of expiry, a revoked sign-in, and the connection tests.
Only the identity provider stands in; the requests it sees are asserted exactly."""

from __future__ import annotations

import secrets
import threading
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import select

from extensions import db
from jobs.imap_idle import IdleSupervisor, inboxes_to_watch
from jobs.imap_poll import enqueue_due_imap_polls, poll_inbox
from models import Conversation, ImapSettings, Inbox, Message, OAuthConnection, SmtpSettings, utcnow
from services.inbox_connections import test_imap as imap_check
from services.inbox_connections import test_smtp as smtp_check
from services.replies import create_reply
from tests.conftest import global_smtp
from tests.support.inbound import post_relay, work_inbound
from tests.support.smtp_server import running_smtp_server
from tests.support.tls import self_signed_context
from tests.support.waiting import wait_for
from worker import build_worker

MS_SCOPE = (
    "https://outlook.office.com/IMAP.AccessAsUser.All "
    "https://outlook.office.com/SMTP.Send offline_access"
)
TOKEN_PATH = "/ms/contoso.test/oauth2/v2.0/token"


@pytest.fixture
def app_config(app_config, oauth_provider, smtp):
    """Microsoft 365 pointed at the stand-in; the deployment's SMTP is the module's server."""
    return {
        **app_config,
        **oauth_provider.app_settings(),
        **global_smtp(smtp),
    }


def email(n: int) -> bytes:
    return (
        f"From: Customer {n} <c{n}@customer.example>\r\nTo: support@example.com\r\n"
        f"Subject: Question {n}\r\nMessage-ID: <x{n}-{secrets.token_hex(4)}@customer.example>\r\n"
        f"\r\nBody {n}\r\n"
    ).encode()


def connected_inbox(
    provider, server, mailbox: str, login: str, expires_in: int = 3600, name: str = "Support"
) -> tuple[Inbox, str, str]:
    """An IMAP inbox on `server` signed in with OAuth as `mailbox`, with tokens the provider
    issued to `login`; (inbox, access token, refresh token)."""
    access, refresh = provider.issue(login, expires_in=expires_in)
    inbox = Inbox(name=name, support_address=f"{name.lower()}@example.com", mode="imap")
    inbox.imap = ImapSettings(
        host="127.0.0.1", port=server.port, security="none", username=mailbox, password=""
    )
    inbox.oauth = OAuthConnection(
        provider="microsoft",
        mailbox=mailbox,
        refresh_token=refresh,
        access_token=access,
        access_expires_at=utcnow() + timedelta(seconds=expires_in),
    )
    db.session.add(inbox)
    db.session.commit()
    return inbox, access, refresh


def introspected(*tokens: str) -> list[dict]:
    """What Dovecot's oauth2 passdb posts for each sign-in (RFC 7662, no client credentials)."""
    return [
        {"path": "/introspect", "token": t, "client_id": "", "client_secret": ""} for t in tokens
    ]


def xoauth2_logins(server, mailbox: str) -> list[str]:
    """Dovecot's log lines for XOAUTH2 sign-ins to the mailbox (tests APPEND with PLAIN)."""
    return [
        line
        for line in server.log().splitlines()
        if f"Login: user=<{mailbox}>" in line and "method=XOAUTH2" in line
    ]


def fresh(model, pk):
    db.session.expire_all()
    return db.session.get(model, pk)


def test_poll_signs_in_with_xoauth2_and_imports(
    app, dovecot_oauth, oauth_imap_account, oauth_provider
):
    mailbox, password = oauth_imap_account
    dovecot_oauth.append(mailbox, password, email(1))
    inbox, access, _ = connected_inbox(oauth_provider, dovecot_oauth, mailbox, mailbox)

    assert poll_inbox(inbox.id) == "imported 1 message"
    work_inbound(app)

    message = db.session.scalars(select(Message)).one()
    assert db.session.get(Conversation, message.conversation_id).inbox_id == inbox.id
    assert oauth_provider.introspect_requests == introspected(access)
    assert oauth_provider.token_requests == []  # the token had an hour left: no refresh
    assert len(xoauth2_logins(dovecot_oauth, mailbox)) == 1


def test_a_shared_mailbox_opens_with_the_grant_of_the_login(
    app, dovecot_oauth, oauth_imap_account, oauth_provider
):
    shared, password = oauth_imap_account
    agent = f"agent-{secrets.token_hex(4)}@contoso.test"
    oauth_provider.grant_mailbox(agent, shared)
    dovecot_oauth.append(shared, password, email(2))
    inbox, access, _ = connected_inbox(oauth_provider, dovecot_oauth, shared, agent)

    assert poll_inbox(inbox.id) == "imported 1 message"

    assert oauth_provider.introspect_requests == introspected(access)
    assert len(xoauth2_logins(dovecot_oauth, shared)) == 1
    assert not fresh(Inbox, inbox.id).needs_attention


def test_a_login_without_the_grant_is_refused_and_the_inbox_needs_attention(
    app, dovecot_oauth, oauth_imap_account, oauth_provider
):
    shared, password = oauth_imap_account
    dovecot_oauth.append(shared, password, email(3))
    outsider = f"outsider-{secrets.token_hex(4)}@contoso.test"
    inbox, access, _ = connected_inbox(oauth_provider, dovecot_oauth, shared, outsider)

    result = poll_inbox(inbox.id)

    assert "[AUTHENTICATIONFAILED]" in result
    assert oauth_provider.introspect_requests == introspected(access)
    inbox = fresh(Inbox, inbox.id)
    assert inbox.needs_attention.startswith(
        f"Reconnect Microsoft 365: the IMAP server refused the token for {shared}: "
    )
    assert "[AUTHENTICATIONFAILED]" in inbox.needs_attention
    assert "Full Access" in inbox.needs_attention
    assert inbox.imap.next_poll_at is None
    assert enqueue_due_imap_polls() == 0
    assert xoauth2_logins(dovecot_oauth, shared) == []


def test_the_poll_refreshes_a_token_about_to_expire_and_signs_in_with_the_new_one(
    app, dovecot_oauth, oauth_imap_account, oauth_provider
):
    mailbox, password = oauth_imap_account
    dovecot_oauth.append(mailbox, password, email(4))
    inbox, old, refresh = connected_inbox(
        oauth_provider, dovecot_oauth, mailbox, mailbox, expires_in=60
    )

    assert poll_inbox(inbox.id) == "imported 1 message"

    assert oauth_provider.token_requests == [
        {
            "path": TOKEN_PATH,
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "client_id": "threadline-test-client",
            "client_secret": "threadline-test-secret",
            "scope": MS_SCOPE,
        }
    ]
    connection = fresh(Inbox, inbox.id).oauth
    assert connection.access_token not in (old, None)
    assert connection.access_expires_at > utcnow() + timedelta(minutes=55)
    assert oauth_provider.introspect_requests == introspected(connection.access_token)


def test_a_revoked_sign_in_pauses_the_inbox_and_tells_the_admins_once(
    app, dovecot_oauth, oauth_imap_account, oauth_provider, smtp, make_user
):
    make_user(email="admin@example.com", name="Ada Admin", role="admin")
    mailbox, password = oauth_imap_account
    dovecot_oauth.append(mailbox, password, email(5))
    inbox, _, refresh = connected_inbox(
        oauth_provider, dovecot_oauth, mailbox, mailbox, expires_in=60
    )
    oauth_provider.revoke(mailbox)
    before = len(smtp.envelopes)

    result = poll_inbox(inbox.id)

    assert "AADSTS70008" in result
    inbox = fresh(Inbox, inbox.id)
    assert inbox.needs_attention.startswith("Reconnect Microsoft 365: ")
    assert "AADSTS70008: The refresh token has expired or been revoked" in inbox.needs_attention
    assert [r["grant_type"] for r in oauth_provider.token_requests] == ["refresh_token"]
    assert oauth_provider.token_requests[0]["refresh_token"] == refresh
    build_worker(app, ["default"], simple=True).work(burst=True)  # the admins' notice
    [notice] = smtp.wait_for_messages(before + 1)[before:]
    assert notice.rcpt_tos == ["admin@example.com"]
    assert mailbox in notice.content.decode()

    # Later: the scheduler passes the inbox over, and a poll already queued does nothing.
    inbox.imap.next_poll_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    assert enqueue_due_imap_polls() == 0
    assert poll_inbox(inbox.id) == "skipped"
    build_worker(app, ["default"], simple=True).work(burst=True)
    assert len(oauth_provider.token_requests) == 1
    assert oauth_provider.introspect_requests == []
    assert xoauth2_logins(dovecot_oauth, mailbox) == []
    assert len(smtp.envelopes) == before + 1


# --- IDLE ----------------------------------------------------------------------------------


@contextmanager
def idle_supervisor(app):
    supervisor = IdleSupervisor(app, rescan_seconds=0.5)
    thread = threading.Thread(target=supervisor.run, daemon=True)
    thread.start()
    try:
        yield supervisor
    finally:
        supervisor.stop()
        thread.join(15)
        assert not thread.is_alive()


def test_idle_watches_with_a_token_fetched_at_each_connection(
    app, dovecot_oauth, oauth_imap_account, oauth_provider
):
    mailbox, _ = oauth_imap_account
    inbox, access, _ = connected_inbox(oauth_provider, dovecot_oauth, mailbox, mailbox)
    [watch] = inboxes_to_watch().values()
    # No token in what the supervisor compares: a refreshed token restarts no watcher.
    assert watch.oauth and watch.target.oauth_token == "" and watch.target.username == mailbox

    with idle_supervisor(app) as supervisor:
        watcher = wait_for(
            lambda: (w := supervisor.watchers.get(inbox.id)) and w.connections >= 1 and w, 20
        )
        assert watcher, dovecot_oauth.log()[-2000:]
    assert oauth_provider.introspect_requests == introspected(access)
    assert len(xoauth2_logins(dovecot_oauth, mailbox)) == 1


def test_idle_stops_watching_an_inbox_whose_sign_in_was_revoked(
    app, dovecot_oauth, oauth_imap_account, oauth_provider
):
    mailbox, _ = oauth_imap_account
    inbox, _, _ = connected_inbox(oauth_provider, dovecot_oauth, mailbox, mailbox, expires_in=60)
    oauth_provider.revoke(mailbox)

    with idle_supervisor(app) as supervisor:
        paused = wait_for(lambda: fresh(Inbox, inbox.id).needs_attention, 20)
        assert paused and paused.startswith("Reconnect Microsoft 365: ")
        assert wait_for(lambda: inbox.id not in supervisor.watchers, 10)
    assert [r["grant_type"] for r in oauth_provider.token_requests] == ["refresh_token"]
    assert oauth_provider.introspect_requests == []
    assert xoauth2_logins(dovecot_oauth, mailbox) == []


# --- sending -------------------------------------------------------------------------------


@pytest.fixture
def xoauth2_smtp(oauth_provider, tmp_path, monkeypatch):
    """A submission server like smtp.office365.com: STARTTLS, then AUTH XOAUTH2, tokens
    checked with the identity provider. Its certificate (for "localhost") is trusted
    through SSL_CERT_FILE, as a private CA would be."""
    context = self_signed_context(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "cert.pem"))
    with running_smtp_server(tls_context=context, xoauth2=oauth_provider) as server:
        yield server


def send_queued(app) -> None:
    build_worker(app, ["outbound"], simple=True).work(burst=True)


def connected_sender(app, client, inbox, provider, server, login, expires_in=3600):
    """The default inbox sending through its own SMTP with XOAUTH2; a conversation to reply
    in and the access token."""
    access, refresh = provider.issue(login, expires_in=expires_in)
    inbox.smtp = SmtpSettings(
        host="localhost", port=server.port, security="starttls", auth_method="login"
    )
    inbox.oauth = OAuthConnection(
        provider="microsoft",
        mailbox=login,
        refresh_token=refresh,
        access_token=access,
        access_expires_at=utcnow() + timedelta(seconds=expires_in),
    )
    db.session.commit()
    post_relay(client, email(6))
    work_inbound(app)
    return db.session.scalars(select(Conversation)).one(), access


def test_a_reply_goes_out_with_auth_xoauth2_as_the_mailbox(
    app, client, inbox, agent, oauth_provider, xoauth2_smtp
):
    mailbox = "support@contoso.test"
    conversation, access = connected_sender(
        app, client, inbox, oauth_provider, xoauth2_smtp, mailbox
    )
    reply = create_reply(conversation, agent, "On its way")

    send_queued(app)

    reply = fresh(Message, reply.id)
    assert reply.delivery_status == "sent", reply.delivery_error
    assert xoauth2_smtp.xoauth2_blobs == [
        f"user={mailbox}\x01auth=Bearer {access}\x01\x01".encode()
    ]
    assert xoauth2_smtp.logins == [mailbox] and xoauth2_smtp.login_mechanisms == ["XOAUTH2"]
    assert xoauth2_smtp.tls_sessions == [True]
    assert xoauth2_smtp.envelopes[0].mail_from == "support@example.com"
    assert oauth_provider.token_requests == []


def test_a_refused_token_fails_the_reply_with_the_servers_words(
    app, client, inbox, agent, oauth_provider, xoauth2_smtp
):
    mailbox = "support@contoso.test"
    conversation, access = connected_sender(
        app, client, inbox, oauth_provider, xoauth2_smtp, mailbox
    )
    oauth_provider.revoke(mailbox)  # the access token stops working; no refresh is due yet
    reply = create_reply(conversation, agent, "On its way")

    send_queued(app)

    reply = fresh(Message, reply.id)
    assert reply.delivery_status == "failed"
    assert reply.delivery_error.startswith(
        "SMTP login refused: 535 5.7.8 Username and Password not accepted."
    )
    assert f"(XOAUTH2 as {mailbox}). Reconnect Microsoft 365" in reply.delivery_error
    assert xoauth2_smtp.xoauth2_blobs == [
        f"user={mailbox}\x01auth=Bearer {access}\x01\x01".encode()
    ]
    assert xoauth2_smtp.failed_logins == [("XOAUTH2", mailbox)] and xoauth2_smtp.envelopes == []


def test_a_revoked_refresh_token_fails_the_reply_without_reaching_the_server(
    app, client, inbox, agent, oauth_provider, xoauth2_smtp
):
    mailbox = "support@contoso.test"
    conversation, _ = connected_sender(
        app, client, inbox, oauth_provider, xoauth2_smtp, mailbox, expires_in=60
    )
    oauth_provider.revoke(mailbox)
    reply = create_reply(conversation, agent, "On its way")

    send_queued(app)

    reply = fresh(Message, reply.id)
    assert reply.delivery_status == "failed"
    assert reply.delivery_error.startswith(
        "Not sent: Microsoft 365 refused the sign-in: AADSTS70008: The refresh token has expired"
    )
    assert reply.delivery_error.endswith(
        "Reconnect Microsoft 365 in the inbox settings, then retry."
    )
    assert [r["grant_type"] for r in oauth_provider.token_requests] == ["refresh_token"]
    assert xoauth2_smtp.xoauth2_blobs == [] and xoauth2_smtp.envelopes == []
    assert fresh(Inbox, inbox.id).needs_attention.startswith("Reconnect Microsoft 365: ")


def test_an_unreachable_identity_provider_keeps_the_reply_queued_for_a_retry(
    app, client, inbox, agent, oauth_provider, xoauth2_smtp
):
    mailbox = "support@contoso.test"
    conversation, _ = connected_sender(
        app, client, inbox, oauth_provider, xoauth2_smtp, mailbox, expires_in=60
    )
    oauth_provider.unavailable = True
    reply = create_reply(conversation, agent, "On its way")

    send_queued(app)

    reply = fresh(Message, reply.id)
    assert reply.delivery_status == "queued"
    assert reply.delivery_error.startswith("will retry: no access token for the SMTP sign-in: ")
    assert "503" in reply.delivery_error
    assert not fresh(Inbox, inbox.id).needs_attention
    assert xoauth2_smtp.xoauth2_blobs == []


def test_an_unreachable_identity_provider_backs_the_poll_off(
    app, dovecot_oauth, oauth_imap_account, oauth_provider
):
    mailbox, _ = oauth_imap_account
    inbox, _, _ = connected_inbox(oauth_provider, dovecot_oauth, mailbox, mailbox, expires_in=60)
    oauth_provider.unavailable = True

    result = poll_inbox(inbox.id)

    assert result.startswith(
        "no access token from the identity provider: Microsoft 365 answered 503"
    )
    assert result.endswith("(failure 1 in a row; next try in 1 min)")
    inbox = fresh(Inbox, inbox.id)
    assert not inbox.needs_attention and inbox.imap.next_poll_at is not None
    assert oauth_provider.introspect_requests == []


# --- the "test connection" buttons ---------------------------------------------------------


def imap_values(server, username: str) -> dict:
    return {
        "imap_host": "127.0.0.1",
        "imap_port": str(server.port),
        "imap_security": "none",
        "imap_username": username,
    }


def smtp_values(server, username: str) -> dict:
    return {
        "smtp_host": "localhost",
        "smtp_port": str(server.port),
        "smtp_security": "starttls",
        "smtp_auth_method": "login",
        "smtp_username": username,
    }


def test_imap_connection_test_with_a_token(dovecot_oauth, oauth_imap_account, oauth_provider):
    mailbox, _ = oauth_imap_account
    access, _ = oauth_provider.issue(mailbox)

    result = imap_check(imap_values(dovecot_oauth, mailbox), "", oauth_token=access)
    assert result.ok, result.message
    assert result.message.startswith(f"Signed in to 127.0.0.1:{dovecot_oauth.port} (none) as ")
    assert "INBOX" in result.folders

    refused = imap_check(imap_values(dovecot_oauth, mailbox), "", oauth_token="at-not-issued")
    assert not refused.ok and refused.kind == "auth"
    assert (
        "refused the sign-in: [AUTHENTICATIONFAILED] Authentication failed. Fix: "
        in refused.message
    )
    assert refused.message.endswith(
        "Fix: reconnect the account (sign in again); the account signed in needs access to "
        "this mailbox (Full Access for a shared mailbox), and IMAP must be allowed for it."
    )
    assert oauth_provider.introspect_requests == introspected(access, "at-not-issued")


def test_smtp_connection_test_with_a_token(oauth_provider, xoauth2_smtp):
    mailbox = "support@contoso.test"
    access, _ = oauth_provider.issue(mailbox)

    result = smtp_check(smtp_values(xoauth2_smtp, mailbox), "", oauth_token=access)
    assert result.ok, result.message
    assert result.message == (
        f"Connected to localhost:{xoauth2_smtp.port} (TLS), signed in as {mailbox}."
    )

    refused = smtp_check(smtp_values(xoauth2_smtp, mailbox), "", oauth_token="at-not-issued")
    assert not refused.ok and refused.kind == "auth"
    assert refused.message.startswith(
        f"SMTP test failed: localhost:{xoauth2_smtp.port} refused the XOAUTH2 sign-in as "
        f"{mailbox}: 535 5.7.8 Username and Password not accepted."
    )
    assert "Fix: reconnect the account (sign in again)" in refused.message
    assert xoauth2_smtp.xoauth2_blobs == [
        f"user={mailbox}\x01auth=Bearer {access}\x01\x01".encode(),
        f"user={mailbox}\x01auth=Bearer at-not-issued\x01\x01".encode(),
    ]


def test_smtp_connection_test_with_a_token_on_a_server_without_xoauth2(tmp_path, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "cert.pem"))
    context = self_signed_context(tmp_path)
    with running_smtp_server("agent", "app-password", tls_context=context) as server:
        result = smtp_check(smtp_values(server, "agent"), "", oauth_token="at-token")
    assert not result.ok and result.kind == "protocol"
    assert "the server does not offer AUTH XOAUTH2" in result.message
    assert server.logins == [] and server.failed_logins == []
