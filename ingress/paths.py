"""Where each ingress listens, and the Basic-auth user name: Action Mailbox's, so a relay or
provider set up for Rails works unchanged. The one place for both: the blueprint routes
from ROUTES, the doctor and the benchmarks read PATHS, ingress/auth checks BASIC_USER.

ingress/relayer.py repeats the relay path and the user name because it runs as a lone file
on mail hosts (standard library only); a unit test keeps the copies equal."""

from __future__ import annotations

PREFIX = "/rails/action_mailbox"
BASIC_USER = "actionmailbox"
ROUTES = {
    "relay": "/relay/inbound_emails",
    "postmark": "/postmark/inbound_emails",
    "sendgrid": "/sendgrid/inbound_emails",
    "mailgun": "/mailgun/inbound_emails/mime",
    "mandrill": "/mandrill/inbound_emails",
    # AWS's Action Mailbox gem's path for SES (SNS notifications)
    "ses": "/ses/inbound_emails",
    "postal": "/postal/inbound_emails",
    "sparkpost": "/sparkpost/inbound_emails",
    "mailersend": "/mailersend/inbound_emails",
    "mailjet": "/mailjet/inbound_emails",
    "brevo": "/brevo/inbound_emails",
    "resend": "/resend/inbound_emails",
}
PATHS = {name: PREFIX + route for name, route in ROUTES.items()}
