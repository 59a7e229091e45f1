"""mail/imap.py against a real Dovecot: sign-in, folder list, and each failure in the
server's own words, sorted into the kind an admin can act on."""

import pytest

from mail.imap import ImapFailure, ImapTarget, list_folders


def test_lists_folders_with_inbox_first(dovecot, imap_account):
    username, password = imap_account
    dovecot.append(username, password, b"Subject: x\r\n\r\nhi\r\n", folder="Support")
    target = ImapTarget("127.0.0.1", dovecot.port, "none", username, password)
    assert list_folders(target) == ["INBOX", "Support"]


def test_tls_server_with_its_own_certificate(dovecot_tls):
    target = ImapTarget("127.0.0.1", dovecot_tls.port, "ssl", "probe@example.com", "probe-password")
    with pytest.raises(ImapFailure) as failure:
        list_folders(target)
    assert failure.value.kind == "tls"
    assert "CERTIFICATE_VERIFY_FAILED" in str(failure.value)
    unverified = ImapTarget(
        "127.0.0.1", dovecot_tls.port, "ssl", "probe@example.com", "probe-password", False
    )
    assert list_folders(unverified)[0] == "INBOX"


def test_wrong_password_is_an_auth_failure_in_the_servers_words(dovecot, imap_account):
    username, _ = imap_account
    with pytest.raises(ImapFailure) as failure:
        list_folders(ImapTarget("127.0.0.1", dovecot.port, "none", username, "wrong"))
    assert failure.value.kind == "auth" and failure.value.permanent
    assert "[AUTHENTICATIONFAILED] Authentication failed." in str(failure.value)


def test_starttls_on_a_server_without_it(dovecot, imap_account):
    username, password = imap_account
    with pytest.raises(ImapFailure) as failure:
        list_folders(ImapTarget("127.0.0.1", dovecot.port, "starttls", username, password))
    assert failure.value.kind == "protocol" and "STARTTLS" in str(failure.value)
    assert not failure.value.permanent


def test_closed_port_and_unknown_host_are_unreachable(dovecot):
    from tests.support.dovecot import free_port

    closed = ImapTarget("127.0.0.1", free_port(), "none", "a", "b")
    with pytest.raises(ImapFailure) as failure:
        list_folders(closed, timeout=3)
    assert failure.value.kind == "unreachable" and "Connection refused" in str(failure.value)
    with pytest.raises(ImapFailure) as failure:
        list_folders(ImapTarget("no-such-host.invalid", 993, "ssl", "a", "b"), timeout=3)
    assert failure.value.kind == "unreachable" and "no-such-host.invalid" in str(failure.value)


def test_plain_client_on_an_implicit_tls_port_times_out(dovecot_tls):
    target = ImapTarget("127.0.0.1", dovecot_tls.port, "none", "a", "b")
    with pytest.raises(ImapFailure) as failure:
        list_folders(target, timeout=1.5)
    assert failure.value.kind == "timeout" and "did not answer in time" in str(failure.value)
