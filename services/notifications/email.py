"""The notification emails: one per (person, conversation) at a time, holding every event
still pending for it (services/notifications/events.record sets the due time; later events
fold in), through the global SMTP server; what it says and its headers are
services/notifications/email_content.py's.

`send_due_notification_emails` (cron, every 10 s) claims each due NotificationThread with a
conditional UPDATE (its due time back to NULL, only if still the one seen), so overlapping
runs and several workers never send one email twice; a failed send puts the due time back,
later each time. Who gets it is checked again at send time: a person deactivated, moved out
of the inbox or who turned the event's email off since gets nothing.

Each email is threaded per conversation in the agent's mail client: Message-IDs
tl-notify.<conversation>.<user>.<n>@domain, the later ones In-Reply-To the first, and a
subject that never changes. Its Reply-To and envelope sender are the agent's signed reply
address (services/notifications/reply_address.py) when an inbound domain is configured, so
answers and bounces come back to Threadline.
"""

from __future__ import annotations

import logging
import smtplib
import time
from contextlib import ExitStack
from datetime import datetime, timedelta

from sqlalchemy import exists, select, update

from extensions import db, get_settings
from mail.smtp import SmtpSession, smtp_session
from models import Notification, NotificationThread, utcnow
from services.access import can_view_inbox
from services.mail_credentials import global_smtp_target
from services.notifications.email_content import compose
from services.system_mail import send_email

log = logging.getLogger(__name__)

BATCH = 200
RUN_SECONDS = 40  # a run stops claiming then; the next one, 10 s later, goes on
RETRY_MIN, RETRY_MAX = timedelta(seconds=30), timedelta(minutes=30)
GIVE_UP_AFTER = timedelta(days=1)  # a notification this old is not worth sending any more
# A claim whose run died before recording anything (the worker was killed): sent again.
ORPHANED_AFTER = timedelta(minutes=15)


class _Smtp:
    """One SMTP session for a run's emails, opened at the first and reopened after an error."""

    def __init__(self) -> None:
        self._stack: ExitStack | None = None
        self._session: SmtpSession | None = None

    def session(self) -> SmtpSession:
        if self._session is None:
            self._stack = ExitStack()
            self._session = self._stack.enter_context(
                smtp_session(global_smtp_target(get_settings()))
            )
        return self._session

    def close(self) -> None:
        stack, self._stack, self._session = self._stack, None, None
        if stack is not None:
            try:
                stack.close()
            except (smtplib.SMTPException, OSError):
                pass


def send_due_notification_emails() -> int:
    """Cron job: send every notification email whose time has come; the number sent."""
    now = utcnow()
    if not get_settings().smtp_address:
        return _drop_unsendable()
    _reclaim_orphans(now)
    due = due_threads(now)
    sent, deadline, smtp = 0, time.monotonic() + RUN_SECONDS, _Smtp()
    try:
        for thread_id, due_at in due:
            if time.monotonic() > deadline:
                break
            if not _claim(thread_id, due_at):
                continue  # another run took it
            try:
                sent += send_thread(thread_id, smtp)
            except (smtplib.SMTPException, OSError) as exc:
                db.session.rollback()
                smtp.close()
                _retry_later(thread_id, exc)
    finally:
        smtp.close()
    if sent:
        log.info("notifications: %d email(s) sent", sent)
    return sent


def due_threads(now: datetime) -> list[tuple[int, datetime]]:
    """(id, due_at) of the threads whose email is due, the oldest first."""
    rows = db.session.execute(
        select(NotificationThread.id, NotificationThread.due_at)
        .where(NotificationThread.due_at <= now)
        .order_by(NotificationThread.due_at)
        .limit(BATCH)
    ).all()
    db.session.commit()
    return [(row.id, row.due_at) for row in rows]


def _claim(thread_id: int, seen_due_at: datetime) -> bool:
    claimed = db.session.execute(
        update(NotificationThread)
        .where(NotificationThread.id == thread_id, NotificationThread.due_at == seen_due_at)
        .values(due_at=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return claimed == 1


def _pending(thread: NotificationThread) -> list[Notification]:
    return list(
        db.session.scalars(
            select(Notification)
            .where(
                Notification.user_id == thread.user_id,
                Notification.conversation_id == thread.conversation_id,
                Notification.email == "pending",
            )
            .order_by(Notification.id)
        )
    )


def send_thread(thread_id: int, smtp: _Smtp) -> int:
    """Send one claimed thread's email; 1 when sent, 0 when nothing was left to send."""
    from services.notifications.events import preferences

    thread = db.session.get(NotificationThread, thread_id)
    pending = _pending(thread) if thread is not None else []
    if not pending:
        return 0
    user, conversation = thread.user, thread.conversation
    allowed = user.active and can_view_inbox(user, conversation.inbox_id)
    chosen = preferences(user) if allowed else {}
    wanted = [n for n in pending if chosen.get(n.event, (False, False))[0]]
    for dropped in set(pending) - set(wanted):
        dropped.email = None  # no longer wanted (or allowed) by email; still in the app
    if not wanted:
        db.session.commit()
        return 0
    number = thread.emails_sent + 1
    message, shown, reply_address = compose(user, conversation, wanted, number)
    sent_ids = [n.id for n in wanted]
    db.session.commit()  # no transaction held open while SMTP talks
    send_email(message, reply_address or "", smtp.session())
    now = utcnow()
    db.session.execute(
        update(Notification)
        .where(Notification.id.in_(sent_ids), Notification.email == "pending")
        .values(email="sent")
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        update(NotificationThread)
        .where(NotificationThread.id == thread_id)
        .values(
            emails_sent=NotificationThread.emails_sent + 1,
            last_sent_at=now,
            last_shown_message_id=shown,
        )
        .execution_options(synchronize_session=False)
    )
    _keep_folding(thread_id, now)
    db.session.commit()
    return 1


def _keep_folding(thread_id: int, now: datetime) -> None:
    """An event recorded while this email was being sent set a due time from the previous
    email's time: the next email still waits the fold period after this one."""
    from services.notifications.events import FOLD

    db.session.execute(
        update(NotificationThread)
        .where(
            NotificationThread.id == thread_id,
            NotificationThread.due_at.is_not(None),
            NotificationThread.due_at < now + FOLD,
        )
        .values(due_at=now + FOLD)
        .execution_options(synchronize_session=False)
    )


def _retry_later(thread_id: int, exc: Exception) -> None:
    """Back off in proportion to how long the oldest pending event has waited (30 s to 30
    min); after a day, give up on these emails (the events stay in the app)."""
    now = utcnow()
    thread = db.session.get(NotificationThread, thread_id)
    if thread is None:
        return
    pending = _pending(thread)
    oldest = min((n.created_at for n in pending), default=now)
    if now - oldest > GIVE_UP_AFTER:
        for notification in pending:
            notification.email = "failed"
        log.error("notifications: gave up emailing user %s: %s", thread.user_id, exc)
    else:
        wait = min(max((now - oldest) / 2, RETRY_MIN), RETRY_MAX)
        db.session.execute(
            update(NotificationThread)
            .where(NotificationThread.id == thread_id, NotificationThread.due_at.is_(None))
            .values(due_at=now + wait)
            .execution_options(synchronize_session=False)
        )
        log.warning(
            "notifications: email to user %s failed (%s); again in %d s",
            thread.user_id,
            exc,
            wait.total_seconds(),
        )
    db.session.commit()


def _reclaim_orphans(now: datetime) -> None:
    """A run that died between its claim and its record left pending events with no due
    time: make them due again."""
    stale = exists().where(
        Notification.user_id == NotificationThread.user_id,
        Notification.conversation_id == NotificationThread.conversation_id,
        Notification.email == "pending",
        Notification.created_at < now - ORPHANED_AFTER,
    )
    reclaimed = db.session.execute(
        update(NotificationThread)
        .where(NotificationThread.due_at.is_(None), stale)
        .values(due_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if reclaimed:
        log.warning("notifications: %d email(s) left by a stopped worker, due again", reclaimed)


def _drop_unsendable() -> int:
    """Without SMTP_ADDRESS nothing can be emailed: pending emails are dropped (the events
    stay in the app) rather than sent in a burst, days late, once it is configured."""
    dropped = db.session.execute(
        update(Notification)
        .where(Notification.email == "pending")
        .values(email=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.execute(
        update(NotificationThread)
        .where(NotificationThread.due_at.is_not(None))
        .values(due_at=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if dropped:
        log.warning("notifications: no SMTP_ADDRESS, %d notification email(s) dropped", dropped)
    return 0
