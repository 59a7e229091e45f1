"""Archiving and deleting an inbox.

Archived (`Inbox.archived_at` set): the inbox receives nothing more — routing refuses mail
for its addresses and its conversations' reply addresses (services/routing.py bounces it
with the reason, the raw InboundEmail row stays in the Inbound log) and IMAP polling skips
it (jobs/imap_poll.py) — while its conversations stay readable. Unarchiving undoes it; mail
refused meanwhile can be reprocessed from the Inbound log.

Only an inbox without conversations can be deleted: history is never thrown away with it.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select, update

from extensions import db
from models import Conversation, ImapFolderState, InboundEmail, Inbox, utcnow


class InboxArchiveError(ValueError):
    """Why an inbox cannot be deleted (or archived) right now, in words for the admin."""


def conversation_count(inbox: Inbox) -> int:
    return db.session.scalar(
        select(func.count(Conversation.id)).where(Conversation.inbox_id == inbox.id)
    )


def archive(inbox: Inbox) -> None:
    if inbox.archived_at is None:
        inbox.archived_at = utcnow()
        db.session.commit()


def unarchive(inbox: Inbox) -> None:
    if inbox.archived_at is not None:
        inbox.archived_at = None
        if inbox.imap is not None:
            inbox.imap.next_poll_at = None  # polled again on the next scheduler tick
        db.session.commit()


def refusal(inbox: Inbox) -> str:
    """The bounce reason routing records for mail that reached an archived inbox."""
    return (
        f"the inbox “{inbox.name}” ({inbox.support_address}) is archived and receives no new "
        "mail; unarchive it in its settings, then reprocess this email to deliver it"
    )


def delete_inbox(inbox: Inbox) -> str:
    """Delete an inbox that has no conversations; returns its name. The inbound emails that
    named it stay in the log, without an inbox."""
    count = conversation_count(inbox)
    if count:
        raise InboxArchiveError(
            f"“{inbox.name}” has {count} conversation{'s' if count != 1 else ''}, so it cannot "
            "be deleted; archive it instead (it stops receiving and keeps its history)."
        )
    name = inbox.name
    db.session.execute(
        update(InboundEmail)
        .where(InboundEmail.inbox_id == inbox.id)
        .values(inbox_id=None)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(delete(ImapFolderState).where(ImapFolderState.inbox_id == inbox.id))
    db.session.delete(inbox)
    db.session.commit()
    return name
