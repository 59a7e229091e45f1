"""The "test connection" buttons: sign in to an inbox's IMAP or SMTP server as its settings
describe, and answer in the server's own words with what to check next."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field

from mail.imap import ImapFailure, ImapTarget, list_folders
from mail.smtp import SmtpTarget, describe_refusal, smtp_session
from services.mail_credentials import inbox_smtp_target

# Generous: servers delay sign-ins after failed ones (Dovecot up to 15 s per attempt).
TIMEOUT = 20.0

IMAP_FIXES = {
    "auth": "check the user name and password; providers with two-step sign-in need an app "
    "password, and some need IMAP switched on in the mailbox's settings.",
    "tls": "check the security setting and port (SSL/TLS is usually 993, STARTTLS 143).",
    "unreachable": "check the host name and port, and that this server may reach it (firewall).",
    "timeout": "check the port and security setting: a TLS port answers nothing to a plain "
    "connection.",
    "protocol": "check the security setting and port.",
}
# With an OAuth token (Microsoft 365, Google) a refused sign-in is about the token.
OAUTH_IMAP_FIX = (
    "reconnect the account (sign in again); the account signed in needs access to this "
    "mailbox (Full Access for a shared mailbox), and IMAP must be allowed for it."
)
OAUTH_SMTP_FIX = (
    "reconnect the account (sign in again); the mailbox must be allowed to send with "
    "authenticated SMTP (Microsoft 365: “Authenticated SMTP” in the mailbox's settings)."
)


@dataclass
class ConnectionResult:
    ok: bool
    message: str
    kind: str = ""  # auth, tls, unreachable, timeout, protocol when not ok
    folders: list[str] = field(default_factory=list)


def imap_target(values: dict, password: str, oauth_token: str = "") -> ImapTarget:
    """The wizard's IMAP fields; with an OAuth token, XOAUTH2 as the username field."""
    return ImapTarget(
        host=values["imap_host"],
        port=int(values["imap_port"]),
        security=values["imap_security"],
        username=values["imap_username"],
        password="" if oauth_token else password,
        oauth_token=oauth_token,
    )


def test_imap(
    values: dict, password: str, timeout: float = TIMEOUT, oauth_token: str = ""
) -> ConnectionResult:
    target = imap_target(values, password, oauth_token)
    try:
        folders = list_folders(target, timeout=timeout)
    except ImapFailure as failure:
        fix = OAUTH_IMAP_FIX if oauth_token and failure.kind == "auth" else None
        said = str(failure).rstrip(".")
        message = f"IMAP test failed: {said}. Fix: {fix or IMAP_FIXES[failure.kind]}"
        return ConnectionResult(False, message, failure.kind)
    found = f"{len(folders)} folder{'s' if len(folders) != 1 else ''}"
    message = f"Signed in to {target.address} as {target.username}; {found} found."
    return ConnectionResult(True, message, folders=folders)


def smtp_target(values: dict, password: str, oauth_token: str = "") -> SmtpTarget:
    """The wizard's SMTP fields as the target they describe (the same builder as sending);
    with an OAuth token, XOAUTH2 as the username field."""
    return inbox_smtp_target(
        values["smtp_host"],
        int(values["smtp_port"]),
        values["smtp_security"],
        values["smtp_auth_method"],
        values["smtp_username"],
        password,
        oauth_token,
    )


def test_smtp(
    values: dict, password: str, timeout: float = TIMEOUT, oauth_token: str = ""
) -> ConnectionResult:
    target = smtp_target(values, password, oauth_token)
    where = target.address
    try:
        with smtp_session(target, timeout=timeout) as session:
            if values["smtp_security"] == "starttls" and not session.tls:
                return ConnectionResult(
                    False,
                    f"SMTP test failed: {where} does not offer STARTTLS, so the password "
                    "would travel unencrypted. Fix: choose SSL/TLS (usually port 465), or "
                    "security “none” if this is a trusted local relay.",
                    "tls",
                )
            signed_in = session.authenticated_as
            tls = session.tls
    except smtplib.SMTPAuthenticationError as exc:
        if target.oauth_token:
            return ConnectionResult(
                False,
                f"SMTP test failed: {where} refused the XOAUTH2 sign-in as {target.username}: "
                f"{describe_refusal(exc)}. Fix: {OAUTH_SMTP_FIX}",
                "auth",
            )
        return ConnectionResult(
            False,
            f"SMTP test failed: {where} refused the login: {describe_refusal(exc)}. "
            "Fix: check the user name and password (an app password if the provider uses "
            "two-step sign-in).",
            "auth",
        )
    except smtplib.SMTPNotSupportedError as exc:
        if target.oauth_token:
            return ConnectionResult(
                False,
                f"SMTP test failed: {where}: {exc}. Fix: check the host, port and security "
                "(Microsoft 365: smtp.office365.com, 587, STARTTLS; Google: smtp.gmail.com, "
                "465, SSL/TLS).",
                "protocol",
            )
        return ConnectionResult(
            False,
            f"SMTP test failed: {where}: {exc}. Fix: choose no authentication, or the "
            "security setting the server expects (many offer AUTH only after STARTTLS).",
            "protocol",
        )
    except smtplib.SMTPResponseException as exc:
        return ConnectionResult(
            False, f"SMTP test failed: {where} answered {describe_refusal(exc)}.", "protocol"
        )
    except ssl.SSLError as exc:
        return ConnectionResult(
            False,
            f"SMTP test failed: TLS with {where} failed: {exc}. Fix: check the security "
            "setting and port (SSL/TLS is usually 465, STARTTLS 587).",
            "tls",
        )
    except TimeoutError:
        return ConnectionResult(
            False,
            f"SMTP test failed: {where} did not answer in time. Fix: check the port and "
            "security setting, and that this server may reach it.",
            "timeout",
        )
    except (smtplib.SMTPException, OSError) as exc:
        return ConnectionResult(
            False,
            f"SMTP test failed: cannot talk to {where}: {exc}. Fix: check the host name and "
            "port, and that this server may reach it (firewall).",
            "unreachable",
        )
    how = "TLS" if tls else "no TLS"
    who = f"signed in as {signed_in}" if signed_in else "no sign-in needed"
    return ConnectionResult(True, f"Connected to {where} ({how}), {who}.")
