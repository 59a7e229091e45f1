"""Microsoft 365 / Google sign-ins as the admin pages show them (services/oauth.py does the
signing in): the banner's one query, the servers a sign-in fills in, and the origins the
pages' CSP must let a Connect form go to."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select

from extensions import db
from models import Inbox, OAuthConnection
from services.oauth_providers import PROVIDERS, enabled_providers


@dataclass(frozen=True)
class Reconnect:
    inbox_id: int
    inbox_name: str
    label: str  # "Microsoft 365" | "Google"
    words: str  # the provider's, as stored when it refused the refresh token


# Built once: every admin's full page runs it (building the select cost more than running it).
_REFUSED = (
    select(Inbox.id, Inbox.name, OAuthConnection.provider, OAuthConnection.last_error)
    .join(OAuthConnection, OAuthConnection.inbox_id == Inbox.id)
    .where(Inbox.archived_at.is_(None), OAuthConnection.last_error.is_not(None))
    .order_by(Inbox.name, Inbox.id)
)


def reconnects_needed() -> list[Reconnect]:
    """Every inbox still in use whose sign-in the provider refused: one SELECT, run for
    admins only (base.html's banner)."""
    rows = db.session.execute(_REFUSED)
    return [
        Reconnect(inbox_id, name, PROVIDERS[provider].label, words)
        for inbox_id, name, provider, words in rows
    ]


def server_values(provider_name: str, mailbox: str) -> dict:
    """The inbox form's values for a mailbox signed in with this provider: its servers, and
    the mailbox as the user name on both (XOAUTH2 names the mailbox it opens)."""
    provider = PROVIDERS[provider_name]
    return {
        "imap_host": provider.imap_host,
        "imap_port": str(provider.imap_port),
        "imap_security": provider.imap_security,
        "imap_username": mailbox,
        "smtp_host": provider.smtp_host,
        "smtp_port": str(provider.smtp_port),
        "smtp_security": provider.smtp_security,
        "smtp_auth_method": "login",
        "smtp_username": mailbox,
    }


def sign_in_origins() -> list[str]:
    """Where a Connect form's redirect goes: the enabled providers' sign-in origins (Chromium
    checks CSP form-action against the redirect after the POST, not only the POST)."""
    origins = []
    for provider in enabled_providers():
        url = urlsplit(provider.authorize_url)
        origin = f"{url.scheme}://{url.netloc}"
        if origin not in origins:
            origins.append(origin)
    return origins
