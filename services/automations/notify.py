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
    from extensions import get_settings
    from services.system_mail import send_to_user

    message, user = db.session.get(Message, message_pk), db.session.get(User, user_id)
    if message is None or user is None or not user.active:
        return False
    conversation = message.conversation
    send_to_user(
        user,
        f"[#{conversation.display_number}] {conversation.subject}",
        f"Hello {user.name},\n\n"
        f"A new email from {message.from_display} in {conversation.inbox.name}:\n\n"
        f"{(message.text_body or '')[:2000]}\n\n"
        f"{get_settings().app_url}/conversations/{conversation.id}\n",
    )
    log.info("rule notification for message %s sent to user %s", message_pk, user_id)
    return True
