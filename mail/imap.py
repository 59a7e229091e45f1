"""Talking to an IMAP server (IMAPClient): connect, sign in, and say what went wrong in the
server's own words, sorted into the kinds an admin can act on.

Used by the poller (jobs/imap_poll.py) and the setup wizard's "test connection" button.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from mail.smtp import client_tls_context


@dataclass(frozen=True)
class ImapTarget:
    host: str
    port: int
    security: str  # "ssl" (implicit TLS), "starttls" or "none"
    username: str
    password: str
    verify_tls: bool = True
    # An OAuth 2.0 access token (Microsoft 365, Google): signs in with XOAUTH2 as `username`
    # instead of the password.
    oauth_token: str = field(default="", repr=False)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port} ({self.security})"

    @classmethod
    def from_settings(cls, settings, verify_tls: bool = True) -> ImapTarget:
        """From an ImapSettings row (the password is decrypted by the column type)."""
        return cls(
            host=settings.host,
            port=settings.port,
            security=settings.security,
            username=settings.username,
            password=settings.password or "",
            verify_tls=verify_tls,
        )


class ImapFailure(Exception):
    """`kind` says what went wrong, for the admin, each with its own fix: auth, tls,
    unreachable, timeout or protocol; the message carries the server's words."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind

    @property
    def permanent(self) -> bool:
        """Authentication failures need a person; everything else may fix itself."""
        return self.kind == "auth"


def _words(exc: BaseException) -> str:
    text = str(exc)
    if text.startswith(("b'", 'b"')):  # imaplib hands over the server's bytes repr
        text = text[2:-1]
    return " ".join(text.split()) or exc.__class__.__name__


def classify(exc: BaseException, target: ImapTarget) -> ImapFailure:
    """Turn any connection-time exception into an ImapFailure that names the host tried."""
    where = target.address
    if isinstance(exc, ImapFailure):
        return exc
    if isinstance(exc, LoginError):
        return ImapFailure("auth", f"{where} refused the sign-in: {_words(exc)}")
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return ImapFailure("tls", f"TLS with {where} failed: {_words(exc)}")
    if isinstance(exc, TimeoutError | socket.timeout):
        return ImapFailure("timeout", f"{where} did not answer in time")
    if isinstance(exc, socket.gaierror):
        return ImapFailure("unreachable", f"cannot resolve {target.host}: {_words(exc)}")
    if isinstance(exc, OSError):
        return ImapFailure("unreachable", f"cannot connect to {where}: {_words(exc)}")
    if isinstance(exc, IMAPClientError):
        return ImapFailure("protocol", f"{where} answered: {_words(exc)}")
    return ImapFailure("protocol", f"{where}: {_words(exc)}")


def connect(target: ImapTarget, timeout: float = 30.0) -> IMAPClient:
    """A signed-in IMAPClient, or ImapFailure. The caller logs out (use it in `with`)."""
    client = None
    try:
        context = client_tls_context(target.verify_tls)
        client = IMAPClient(
            target.host,
            port=target.port,
            ssl=target.security == "ssl",
            ssl_context=context if target.security == "ssl" else None,
            timeout=timeout,
        )
        if target.security == "starttls":
            client.starttls(context)
        if target.oauth_token:
            client.oauth2_login(target.username, target.oauth_token)
        else:
            client.login(target.username, target.password)
        return client
    except Exception as exc:  # noqa: BLE001 - every failure becomes an admin-readable one
        if client is not None:
            try:
                client.shutdown()
            except Exception:  # noqa: BLE001, S110 - already failing; the first error matters
                pass
        raise classify(exc, target) from exc


def list_folders(target: ImapTarget, timeout: float = 15.0) -> list[str]:
    """Sign in and list the selectable folders (the wizard's "test connection")."""
    with connect(target, timeout) as client:
        try:
            folders = client.list_folders()
        except Exception as exc:  # noqa: BLE001
            raise classify(exc, target) from exc
    names = [name for flags, _, name in folders if b"\\Noselect" not in flags]
    return sorted(names, key=lambda n: (n.upper() != "INBOX", n.lower()))
