"""What an admin sets up at the mail provider for a forwarding inbox: the forwarding address
and, for each enabled ingress, the exact endpoint URL and the boxes to tick."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from config import Settings
from ingress.paths import PATHS

LOCAL_HOSTS = ("localhost", "127.0.0.1", "0.0.0.0", "::1")


@dataclass
class Provider:
    name: str
    title: str
    url: str  # exactly what to paste, credentials included where the provider wants them
    has_password_in_url: bool = False
    steps: list[str] = field(default_factory=list)
    ticks: list[str] = field(default_factory=list)  # options that must be switched on


@dataclass
class Forwarding:
    domain: str
    address: str  # "" without MAILER_INBOUND_EMAIL_DOMAIN
    app_url: str
    app_url_unreachable: bool
    providers: list[Provider]


def _with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    userinfo = f"actionmailbox:{quote(password, safe='')}@"
    return f"{parts.scheme}://{userinfo}{parts.netloc}{parts.path}"


def _provider(name: str, settings: Settings, domain: str) -> Provider:
    url = settings.app_url + PATHS[name]
    where = domain or "your inbound domain"
    password = settings.inbound_email_password
    if name == "relay":
        return Provider(
            name,
            "Your own mail server (Postfix, Exim, qmail), getmail or curl",
            url,
            steps=[
                f"Point the MX records of {where} at your mail server.",
                "Have it pipe each message to `flask ingress postfix` (or exim, qmail), which "
                "posts it to this URL with Basic auth: user actionmailbox, password "
                "INBOUND_EMAIL_PASSWORD. The README's “Receiving email” section has the "
                "exact lines for each MTA, curl and getmail.",
            ],
        )
    if name == "postmark":
        return Provider(
            name,
            "Postmark",
            _with_password(url, password),
            True,
            steps=[
                f"Servers → your server → Default Inbound Stream → Settings: set the inbound "
                f"domain to {where} (MX record: inbound.postmarkapp.com).",
                "Paste this URL as the inbound webhook URL.",
            ],
            ticks=["Include raw email content in JSON payload"],
        )
    if name == "sendgrid":
        return Provider(
            name,
            "SendGrid",
            _with_password(url, password),
            True,
            steps=[
                f"Settings → Inbound Parse → Add Host & URL: receiving domain {where} "
                "(MX record: mx.sendgrid.net).",
                "Paste this URL as the destination URL.",
            ],
            ticks=["Post the raw, full MIME message"],
        )
    if name == "mailgun":
        return Provider(
            name,
            "Mailgun",
            url,
            steps=[
                f'Receiving → Create route: expression match_recipient(".*@{where}"), '
                f'action forward("{url}") — the URL ends in /mime, so Mailgun posts the '
                "raw message.",
                "MAILGUN_INGRESS_SIGNING_KEY must be the HTTP webhook signing key from "
                "Mailgun's API security page.",
            ],
        )
    return Provider(
        name,
        "Mandrill (Mailchimp Transactional)",
        url,
        steps=[
            f"Inbound → add the domain {where}, then a route *@{where} posting to this URL.",
            "MANDRILL_INGRESS_API_KEY must be that webhook's key (Mandrill signs each post "
            "with it).",
        ],
    )


def forwarding_instructions(settings: Settings, forward_token: str) -> Forwarding:
    domain = settings.inbound_domain
    host = (urlsplit(settings.app_url).hostname or "").lower()
    return Forwarding(
        domain=domain,
        address=f"{forward_token}@{domain}" if domain else "",
        app_url=settings.app_url,
        app_url_unreachable=host in LOCAL_HOSTS,
        providers=[_provider(name, settings, domain) for name in settings.inbound_services],
    )
