"""The XOAUTH2 initial response and the targets that carry a token (no servers needed; the
real exchanges are in tests/integration/test_xoauth2.py)."""

from mail.imap import ImapTarget
from mail.smtp import SmtpTarget, xoauth2_blob
from services.mail_credentials import inbox_smtp_target


def test_blob_is_user_and_bearer_separated_by_ctrl_a():
    assert xoauth2_blob("support@contoso.com", "EwB0A") == (
        "user=support@contoso.com\x01auth=Bearer EwB0A\x01\x01"
    )


def test_an_inbox_smtp_target_with_a_token_signs_in_with_it_instead_of_a_password():
    target = inbox_smtp_target("smtp.office365.com", 587, "starttls", "login", "s@c.com", "", "tok")
    assert (target.username, target.password, target.auth_method, target.oauth_token) == (
        "s@c.com",
        "",
        "",
        "tok",
    )
    assert target.starttls and not target.implicit_tls


def test_no_authentication_means_no_token_either():
    target = inbox_smtp_target("relay.local", 25, "none", "none", "s@c.com", "pw", "tok")
    assert (target.username, target.password, target.oauth_token) == ("", "", "")


def test_tokens_stay_out_of_reprs_that_reach_logs():
    imap = ImapTarget("h", 993, "ssl", "u", "", oauth_token="secret-token")
    smtp = SmtpTarget("h", 587, username="u", oauth_token="secret-token")
    assert "secret-token" not in repr(imap) and "secret-token" not in repr(smtp)
