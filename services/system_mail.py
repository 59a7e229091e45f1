"""Threadline's own emails to its users (password resets, rule notifications, reconnect
notices, agent notifications): From MAILER_SENDER_EMAIL, marked Auto-Submitted, through the
global SMTP server."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, make_msgid

from extensions import get_settings
from mail.smtp import SmtpSession, send_mime, smtp_session
from models import User, utcnow
from services.outbound import global_smtp_target

# Long header values (Message-IDs, the unsubscribe link) stay on one line: folded or
# encoded, some clients no longer read them.
POLICY = SMTP.clone(max_line_length=998)


def email_to_user(user: User, subject: str, body: str, message_id: str = "") -> EmailMessage:
    """One plain-text email to one user, ready to send; `message_id` (bracketless) or a new
    one. Callers may add headers before sending."""
    settings = get_settings()
    sender = settings.mailer_sender_email or f"threadline@{settings.smtp_domain or 'localhost'}"
    message = EmailMessage(policy=POLICY)
    message["Date"] = format_datetime(utcnow())
    message["From"] = sender if "<" in sender else formataddr(("Threadline", sender))
    message["To"] = formataddr((user.name, user.email))
    message["Subject"] = " ".join(subject.split())[:200]
    message["Message-ID"] = (
        f"<{message_id}>" if message_id else make_msgid(domain=settings.smtp_domain or None)
    )
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body)
    return message


def send_email(
    message: EmailMessage, envelope_sender: str = "", session: SmtpSession | None = None
) -> None:
    """Send through the global SMTP server (a new session, or `session` when the caller
    sends several); MAIL FROM is `envelope_sender` (where bounces go) or the From address.
    SMTP errors raise (the jobs retry)."""
    sender = envelope_sender or message["From"].addresses[0].addr_spec
    recipients = [address.addr_spec for address in message["To"].addresses]
    if session is not None:
        send_mime(session, sender, recipients, bytes(message))
        return
    with smtp_session(global_smtp_target(get_settings())) as new_session:
        send_mime(new_session, sender, recipients, bytes(message))


def send_to_user(user: User, subject: str, body: str) -> None:
    """One plain-text email to one user; SMTP errors raise (the jobs retry)."""
    send_email(email_to_user(user, subject, body))
