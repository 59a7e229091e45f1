"""The identity providers Threadline signs mailboxes in with (Microsoft 365, Google): their
endpoints (settings, so tests can point them at a stand-in), scopes and mail servers, the
errors a sign-in can end in, and the one call to a token endpoint. The flow and the tokens'
life are services/oauth.py's."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from extensions import get_settings

HTTP_TIMEOUT = 20.0
# Token endpoint errors no retry can fix: a person must reconnect (or fix the app secret).
PERMANENT_ERRORS = {"invalid_grant", "invalid_client", "unauthorized_client", "invalid_scope"}


@dataclass(frozen=True)
class Provider:
    name: str
    label: str
    scopes: tuple[str, ...]
    imap_host: str
    imap_port: int
    imap_security: str
    smtp_host: str
    smtp_port: int
    smtp_security: str

    def client(self) -> tuple[str, str]:
        s = get_settings()
        if self.name == "microsoft":
            return s.microsoft_client_id, s.microsoft_client_secret
        return s.google_client_id, s.google_client_secret

    @property
    def enabled(self) -> bool:
        return all(self.client())

    @property
    def authorize_url(self) -> str:
        s = get_settings()
        if self.name == "microsoft":
            return f"{s.microsoft_login_url}/{s.microsoft_tenant}/oauth2/v2.0/authorize"
        return s.google_authorize_url

    @property
    def token_url(self) -> str:
        s = get_settings()
        if self.name == "microsoft":
            return f"{s.microsoft_login_url}/{s.microsoft_tenant}/oauth2/v2.0/token"
        return s.google_token_url

    @property
    def scope(self) -> str:
        return " ".join(self.scopes)

    def authorize_extras(self, mailbox: str) -> dict[str, str]:
        """Microsoft: suggest the account. Google: ask for a refresh token every time
        (without prompt=consent a second connect gets none)."""
        if self.name == "microsoft":
            return {"login_hint": mailbox, "response_mode": "query"}
        return {"login_hint": mailbox, "access_type": "offline", "prompt": "consent"}


PROVIDERS = {
    "microsoft": Provider(
        "microsoft",
        "Microsoft 365",
        (
            "https://outlook.office.com/IMAP.AccessAsUser.All",
            "https://outlook.office.com/SMTP.Send",
            "offline_access",
        ),
        "outlook.office365.com",
        993,
        "ssl",
        "smtp.office365.com",
        587,
        "starttls",
    ),
    "google": Provider(
        "google",
        "Google",
        ("https://mail.google.com/",),
        "imap.gmail.com",
        993,
        "ssl",
        "smtp.gmail.com",
        465,
        "ssl",
    ),
}


class OAuthError(Exception):
    """What went wrong, in words an admin can act on (`words`)."""

    def __init__(self, words: str):
        super().__init__(words)
        self.words = words


class OAuthRevoked(OAuthError):
    """The provider refused the refresh token: only reconnecting helps."""


class OAuthUnavailable(OAuthError):
    """The provider could not be asked (network, 5xx, busy lock): try again later."""


def enabled_providers() -> list[Provider]:
    return [p for p in PROVIDERS.values() if p.enabled]


def redirect_uri() -> str:
    return f"{get_settings().app_url}/admin/oauth/callback"


def token_request(provider: Provider, body: dict) -> dict:
    """POST the token endpoint; OAuthRevoked for a refusal no retry fixes."""
    data = urllib.parse.urlencode(body).encode()
    request = urllib.request.Request(
        provider.token_url,
        data=data,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:  # noqa: S310
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            said = json.loads(exc.read() or b"{}")
        except ValueError:
            said = {}
        error = said.get("error", "")
        words = first_line(said.get("error_description")) or error or f"HTTP {exc.code}"
        if error in PERMANENT_ERRORS:
            raise OAuthRevoked(f"{provider.label} refused the sign-in: {words}") from exc
        raise OAuthUnavailable(f"{provider.label} answered {exc.code}: {words}") from exc
    except (OSError, ValueError) as exc:
        raise OAuthUnavailable(f"cannot reach {provider.label}'s sign-in service: {exc}") from exc


def first_line(text: str | None) -> str:
    """Microsoft appends trace and correlation ids on further lines."""
    return (text or "").strip().splitlines()[0].strip() if (text or "").strip() else ""
