"""SMTP sessions against a real aiosmtpd server: AUTH as configured, or none at all."""

import smtplib

import pytest

from mail.smtp import SmtpTarget, smtp_session
from tests.support.smtp_server import running_smtp_server


@pytest.fixture(scope="module")
def server():
    with running_smtp_server("agent", "app-password") as server:
        yield server


@pytest.mark.parametrize(("method", "mechanism"), [("plain", "PLAIN"), ("login", "LOGIN")])
def test_configured_auth_method_is_the_one_used(server, method, mechanism):
    target = SmtpTarget(server.host, server.port, username="agent", password="app-password")
    target = SmtpTarget(**{**target.__dict__, "auth_method": method})
    with smtp_session(target, timeout=5) as session:
        assert session.authenticated_as == "agent"
        session.client.sendmail("a@example.com", ["b@example.com"], b"Subject: hi\r\n\r\nhello\r\n")
    assert server.login_mechanisms[-1] == mechanism
    assert server.wait_for_messages(1)


def test_wrong_password_raises_with_the_servers_code(server):
    target = SmtpTarget(server.host, server.port, username="agent", password="wrong")
    with pytest.raises(smtplib.SMTPAuthenticationError) as caught:
        with smtp_session(target, timeout=5):
            pass
    assert caught.value.smtp_code == 535


def test_without_credentials_no_auth_is_attempted():
    with running_smtp_server() as relay:  # a local relay offering no AUTH, like Postfix
        with smtp_session(SmtpTarget(relay.host, relay.port), timeout=5) as session:
            assert session.authenticated_as is None and session.tls is False
            session.client.sendmail("a@example.com", ["b@example.com"], b"\r\nhi\r\n")
        assert relay.logins == [] and relay.failed_logins == []
        assert len(relay.wait_for_messages(1)) == 1
