"""Threadline's own emails to its users (password resets, rule notifications, reconnect
notices): From MAILER_SENDER_EMAIL, marked Auto-Submitted, through the global SMTP server."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formataddr, make_msgid

from extensions import get_settings
from mail.smtp import send_mime, smtp_session
from models import User
from services.outbound import global_smtp_target


def send_to_user(user: User, subject: str, body: str) -> None:
    """One plain-text email to one user; SMTP errors raise (the jobs retry)."""
    settings = get_settings()
    sender = settings.mailer_sender_email or f"threadline@{settings.smtp_domain or 'localhost'}"
    message = EmailMessage()
    message["From"] = sender if "<" in sender else formataddr(("Threadline", sender))
    message["To"] = formataddr((user.name, user.email))
    message["Subject"] = subject[:200]
    message["Message-ID"] = make_msgid(domain=settings.smtp_domain or None)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body)
    with smtp_session(global_smtp_target(settings)) as session:
        send_mime(session, message["From"].addresses[0].addr_spec, [user.email], bytes(message))
