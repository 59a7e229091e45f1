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
    if name == "mandrill":
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
    return _newer_provider(name, url, _with_password(url, password), where)


def _newer_provider(name: str, url: str, url_with_password: str, where: str) -> Provider:
    """Issue 22's ingresses: what to set at each provider, as its documentation words it."""
    if name == "ses":
        return Provider(
            name,
            "Amazon SES (through an SNS topic)",
            url,
            steps=[
                f"SES → Email receiving → a receipt rule for {where} (MX record: "
                "inbound-smtp.<region>.amazonaws.com) with the action “Publish to Amazon SNS "
                "topic”, encoding Base64; for mail over 150 KB use “Deliver to Amazon S3 "
                "bucket” with an SNS topic instead, and set SES_S3_ACCESS_KEY and "
                "SES_S3_SECRET_KEY of a user that may read that bucket.",
                "Put the topic's ARN in SES_TOPIC_ARNS.",
                "SNS → the topic → Create subscription: protocol HTTPS, this URL as the "
                "endpoint, raw message delivery off. Threadline confirms it by itself.",
            ],
        )
    if name == "postal":
        return Provider(
            name,
            "Postal",
            url,
            steps=[
                "Your mail server → Routing → HTTP Endpoints → add one with this URL, "
                "encoding “Sent in the body as JSON”, format “Delivered as the raw message”.",
                f"Routes → add a route for {where} (or an address) to that endpoint.",
                "POSTAL_INGRESS_PUBLIC_KEY must be the p= value printed by `postal "
                "default-dkim-record` on the Postal host (Postal signs each post with it).",
            ],
        )
    if name == "sparkpost":
        return Provider(
            name,
            "SparkPost (relay webhook)",
            url,
            steps=[
                f"Point the MX records of {where} at rx1.sparkpostmail.com, "
                "rx2.sparkpostmail.com and rx3.sparkpostmail.com, and add it as an inbound "
                "domain (POST /api/v1/inbound-domains).",
                f"Create a relay webhook (POST /api/v1/relay-webhooks) with this URL as "
                f"target, match.domain {where} and auth_token set to SPARKPOST_INGRESS_TOKEN.",
            ],
        )
    if name == "mailersend":
        return Provider(
            name,
            "MailerSend",
            url,
            steps=[
                f"Domains → Manage → Inbound routing → Add an inbound route for {where} "
                "(MX record: inbound.mailersend.net), routed to a webhook with this URL.",
                "MAILERSEND_INGRESS_SIGNING_SECRET must be that route's signing secret.",
            ],
        )
    if name == "mailjet":
        return Provider(
            name,
            "Mailjet (Parse API)",
            url_with_password,
            True,
            steps=[
                "Create a parse route (POST https://api.mailjet.com/v3/REST/parseroute) with "
                "this URL as Url; then forward to the @parse-in1.mailjet.com address it "
                f'returns, or give "Email" an address at {where} whose MX record is '
                "parse.mailjet.com.",
                "Mailjet posts the parts, not the raw message: Threadline rebuilds it and "
                "marks it X-Threadline-Rebuilt: mailjet.",
            ],
        )
    if name == "brevo":
        return Provider(
            name,
            "Brevo (inbound parsing)",
            url_with_password,
            True,
            steps=[
                f"Point the MX records of {where} at inbound1.sendinblue.com (priority 10) "
                "and inbound2.sendinblue.com (priority 20).",
                "Create the webhook (POST https://api.brevo.com/v3/webhooks) with type "
                f"inbound, event inboundEmailProcessed, domain {where} and this URL.",
                "Set BREVO_API_KEY so attachments can be downloaded. Brevo posts the parts, "
                "not the raw message: Threadline rebuilds it and marks it "
                "X-Threadline-Rebuilt: brevo.",
            ],
        )
    return Provider(
        name,
        "Resend",
        url,
        steps=[
            "Webhooks → Add Webhook: this URL, event email.received; its signing secret "
            "(whsec_…) goes in RESEND_INGRESS_SIGNING_SECRET.",
            "Create an API key that may read received emails: RESEND_API_KEY (Threadline "
            "fetches each message through the API).",
            f"Receive at your *.resend.app address, or point the MX records of {where} at "
            "Resend as its Domains page shows.",
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
