"""Signing an inbox in with Microsoft 365 or Google (blueprints/inboxes/oauth.py): the
provider is in the URL, so Connect asks only which mailbox to open; Disconnect is a button.
Both sit inside the Connection card's (or the wizard step's) form and post its CSRF token;
`sign_in_panel` is what those pages show around them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email
from flask import g
from flask_wtf import FlaskForm
from wtforms import EmailField
from wtforms.validators import ValidationError

from blueprints.form_fields import strip
from services import oauth_providers
from services.oauth_status import sign_in_origins

SHARED_MAILBOX_HELP = (
    "For a shared mailbox, sign in as a user with Full Access and enter the shared "
    "mailbox's address."
)


class ConnectForm(FlaskForm):
    mailbox = EmailField("Mailbox to open", description=SHARED_MAILBOX_HELP, filters=[strip])

    def validate_mailbox(self, field) -> None:
        try:
            field.data = validate_email(
                field.data or "", check_deliverability=False
            ).normalized.lower()
        except EmailNotValidError as exc:
            raise ValidationError(f"Enter the address of the mailbox to open: {exc}") from None


class DisconnectForm(FlaskForm):
    """Only the CSRF token: Disconnect is a button."""


@dataclass
class SignIn:
    """What the IMAP/SMTP fields show about signing in with a provider (_sign_in.html)."""

    connection: object | None  # the inbox's or the draft's OAuthConnection
    providers: list  # those configured (client id and secret set)
    form: ConnectForm
    connect_urls: dict[str, str]
    disconnect_url: str
    redirect_uri: str

    @property
    def label(self) -> str:
        return oauth_providers.PROVIDERS[self.connection.provider].label if self.connection else ""

    @property
    def can_reconnect(self) -> bool:
        return self.connection is not None and self.connection.provider in self.connect_urls

    @property
    def scopes(self) -> dict[str, tuple[str, ...]]:
        """What each provider's app registration must allow (the page explains it)."""
        return {name: provider.scopes for name, provider in oauth_providers.PROVIDERS.items()}


def sign_in_panel(
    connection, mailbox: str, connect_url: Callable[[str], str], disconnect_url: str, form=None
) -> SignIn:
    """The panel for a settings page or wizard step."""
    providers = oauth_providers.enabled_providers()
    if form is None:
        form = ConnectForm(formdata=None, data={"mailbox": mailbox})
    return SignIn(
        connection,
        providers,
        form,
        {provider.name: connect_url(provider.name) for provider in providers},
        disconnect_url,
        oauth_providers.redirect_uri(),
    )


def allow_sign_in_redirects() -> None:
    """This page's CSP lets its forms go on to the providers' sign-in pages, where Connect's
    answer redirects (blueprints/security_headers.py). Every wizard step gets it: htmx swaps
    the steps into the document of the first one, whose CSP is the one that counts."""
    g.form_action_origins = sign_in_origins()
