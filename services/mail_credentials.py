"""The one place the targets for an inbox's mail servers are built, so polling, IDLE, the
refetch, sending and the checks sign in the same way: with the saved password, or, for an
inbox connected to Microsoft 365 or Google (Inbox.oauth), with XOAUTH2 as the connection's
mailbox and an access token from services/oauth.py (refreshed there when close to expiry).

Getting a token can fail two ways, and callers treat them like the IMAP/SMTP failures they
resemble: OAuthRevoked is a refused sign-in (a person must reconnect; the inbox already
needs attention), OAuthUnavailable a temporary one (try again later).
"""

from __future__ import annotations

from dataclasses import replace

from config import Settings
from extensions import db, get_settings
from mail.imap import ImapFailure, ImapTarget
from mail.smtp import SmtpTarget
from models import Inbox
from services import oauth
from services.oauth import OAuthError, OAuthRevoked


class NoTransport(Exception):
    """Neither the inbox nor the deployment has an SMTP server configured."""


def inbox_smtp_target(
    host: str,
    port: int,
    security: str,
    auth_method: str,
    username: str | None,
    password: str | None,
    oauth_token: str = "",
) -> SmtpTarget:
    """An inbox's SMTP server (security ssl|starttls|none, auth plain|login|none): the one
    builder for its saved settings and for the wizard's fields being tested. With an OAuth
    token, AUTH is XOAUTH2 as `username` (unless auth is "none")."""
    use_auth = auth_method != "none"
    token = oauth_token if use_auth else ""
    return SmtpTarget(
        host=host,
        port=port,
        implicit_tls=security == "ssl",
        starttls=security == "starttls",
        username=(username or "") if use_auth else "",
        password=(password or "") if use_auth and not token else "",
        auth_method=auth_method if use_auth and not token else "",
        oauth_token=token,
    )


def global_smtp_target(settings: Settings) -> SmtpTarget:
    """The deployment's SMTP server, from the SMTP_* settings."""
    return SmtpTarget(
        host=settings.smtp_address,
        port=settings.smtp_port,
        implicit_tls=settings.smtp_ssl,
        starttls=settings.smtp_starttls_auto,
        verify_certificate=settings.smtp_verify_mode != "none",
        helo=settings.smtp_domain or None,
        username=settings.smtp_username,
        password=settings.smtp_password,
        auth_method=settings.smtp_authentication,
    )


def imap_target_for(settings, verify_tls: bool = True, *, with_token: bool = True) -> ImapTarget:
    """The inbox's IMAP server as its ImapSettings row describes it; for a connected inbox,
    XOAUTH2 as the connection's mailbox with a valid access token (raises OAuthRevoked or
    OAuthUnavailable). `with_token=False` leaves the token out (IDLE fetches it at each
    connection, so a refreshed token does not look like changed settings)."""
    target = ImapTarget.from_settings(settings, verify_tls)
    connection = settings.inbox.oauth
    if connection is None:
        return target
    token = oauth.access_token(connection) if with_token else ""
    return replace(target, username=connection.mailbox, password="", oauth_token=token)


def inbox_oauth_token(inbox_id: int) -> str:
    """A valid access token for the inbox's OAuth connection (raises OAuthRevoked or
    OAuthUnavailable; ImapFailure when the inbox was disconnected meanwhile)."""
    inbox = db.session.get(Inbox, inbox_id)
    if inbox is None or inbox.oauth is None:
        raise ImapFailure("protocol", "the inbox is no longer connected with OAuth")
    return oauth.access_token(inbox.oauth)


def smtp_target_for(inbox: Inbox) -> SmtpTarget:
    """The inbox's own SMTP when configured (XOAUTH2 when the inbox is connected and its
    SMTP uses authentication), else the global SMTP_* settings (which never use the
    inbox's token). Raises NoTransport, OAuthRevoked, OAuthUnavailable."""
    own = inbox.smtp
    if own is not None and own.enabled and own.host:
        connection = inbox.oauth
        if connection is not None and own.auth_method != "none":
            token = oauth.access_token(connection)
            return inbox_smtp_target(
                own.host, own.port, own.security, own.auth_method, connection.mailbox, "", token
            )
        return inbox_smtp_target(
            own.host, own.port, own.security, own.auth_method, own.username, own.password
        )
    settings = get_settings()
    if not settings.smtp_address:
        raise NoTransport(
            f"no SMTP server: configure SMTP for inbox {inbox.name} or set SMTP_ADDRESS"
        )
    return global_smtp_target(settings)


def provider_label(inbox: Inbox) -> str:
    """ "Microsoft 365" or "Google" for a connected inbox ("" otherwise)."""
    connection = inbox.oauth
    if connection is None:
        return ""
    provider = oauth.PROVIDERS.get(connection.provider)
    return provider.label if provider is not None else connection.provider


def token_failure(exc: OAuthError) -> ImapFailure:
    """A token that could not be had, as the IMAP failure it amounts to: a refused refresh
    token is a refused sign-in (permanent), an unreachable provider a temporary problem."""
    if isinstance(exc, OAuthRevoked):
        return ImapFailure("auth", f"the sign-in was revoked: {exc.words}")
    return ImapFailure("unreachable", f"no access token from the identity provider: {exc.words}")


def sign_in_attention(inbox: Inbox, failure: ImapFailure) -> str:
    """What Inbox.needs_attention says when the IMAP server refused the sign-in."""
    connection = inbox.oauth
    if connection is None:
        return (
            f"IMAP sign-in failed: {failure} Check the username and password "
            "(or use an app password) in the inbox settings."
        )
    # Starts with "Reconnect": reconnecting clears it (services/oauth.complete).
    if connection.last_error:  # the refresh token was refused
        return f"Reconnect {provider_label(inbox)}: {connection.last_error}"
    return (
        f"Reconnect {provider_label(inbox)}: the IMAP server refused the token for "
        f"{connection.mailbox}: {failure} The account signed in needs access to that mailbox "
        "(Full Access for a shared mailbox) and IMAP must be allowed for it."
    )
