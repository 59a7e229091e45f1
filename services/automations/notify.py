"""The rules' "Notify by email" action, after the commit: one email per chosen person about
the new message, through the global SMTP server (as the password reset email goes).
services/background.enqueue_rule_notification queues `notify_by_email`."""

from __future__ import annotations

import logging

from extensions import db
from models import Message, User

log = logging.getLogger(__name__)


def notify_by_email(message_pk: int, user_id: int) -> bool:
    """RQ job: tell one user about a new message, through the global SMTP server (as the
    password reset email goes). True when sent."""
    from email.message import EmailMessage
    from email.utils import formataddr, make_msgid

    from extensions import get_settings
    from mail.smtp import send_mime, smtp_session
    from services.outbound import global_smtp_target

    message, user = db.session.get(Message, message_pk), db.session.get(User, user_id)
    if message is None or user is None or not user.active:
        return False
    conversation = message.conversation
    settings = get_settings()
    sender = settings.mailer_sender_email or f"threadline@{settings.smtp_domain or 'localhost'}"
    email = EmailMessage()
    email["From"] = sender if "<" in sender else formataddr(("Threadline", sender))
    email["To"] = formataddr((user.name, user.email))
    email["Subject"] = f"[#{conversation.display_number}] {conversation.subject}"[:200]
    email["Message-ID"] = make_msgid(domain=settings.smtp_domain or None)
    email["Auto-Submitted"] = "auto-generated"
    email.set_content(
        f"Hello {user.name},\n\n"
        f"A new email from {message.from_address} in {conversation.inbox.name}:\n\n"
        f"{(message.text_body or '')[:2000]}\n\n"
        f"{settings.app_url}/conversations/{conversation.id}\n"
    )
    with smtp_session(global_smtp_target(settings)) as session:
        send_mime(session, email["From"].addresses[0].addr_spec, [user.email], bytes(email))
    log.info("rule notification for message %s sent to user %s", message_pk, user_id)
    return True
