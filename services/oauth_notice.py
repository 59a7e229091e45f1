"""The admins' email when an inbox's Microsoft 365 / Google sign-in stops working
(services/oauth.py queues it once per refusal, after the commit)."""

from __future__ import annotations

import logging

from sqlalchemy import select

from extensions import db, get_settings
from models import Inbox, User
from models.enums import Role
from services.system_mail import send_to_user

log = logging.getLogger(__name__)


def send_reconnect_notice(inbox_pk: int) -> int:
    """RQ job: email every active admin; the number emailed. Nothing if already fixed."""
    inbox = db.session.get(Inbox, inbox_pk)
    if inbox is None or inbox.oauth is None or not inbox.oauth.last_error:
        return 0
    settings = get_settings()
    if not settings.smtp_address:
        log.warning("no SMTP_ADDRESS: the reconnect notice for inbox %s was not emailed", inbox.id)
        return 0
    admins = db.session.scalars(
        select(User).where(User.role == Role.ADMIN, User.active.is_(True)).order_by(User.id)
    ).all()
    link = f"{settings.app_url}/admin/inboxes/{inbox.id}/settings?section=connection"
    for admin in admins:
        send_to_user(
            admin,
            f"Reconnect the mailbox of {inbox.name}",
            f"Hello {admin.name},\n\n"
            f"Threadline can no longer sign in to {inbox.oauth.mailbox} for the inbox "
            f"{inbox.name}, so no new email is fetched or sent from it.\n\n"
            f"{inbox.needs_attention or inbox.oauth.last_error}\n\n"
            "An admin needs to sign in again: open the inbox's connection settings and "
            f"choose Reconnect.\n\n{link}\n",
        )
    log.info("reconnect notice for inbox %s sent to %d admin(s)", inbox.id, len(admins))
    return len(admins)
