"""Agents' replies and private notes: recorded at once, sent by a job, retryable."""

from __future__ import annotations

import io
import logging
import re
from datetime import datetime

from redis.exceptions import RedisError
from sqlalchemy import or_, select

from extensions import db, get_settings, get_storage
from mail.addresses import is_email_address, normalise
from mail.compose import OutgoingAttachment
from mail.threading import outgoing_message_id
from models import Attachment, Conversation, Inbox, Message, User, utcnow
from models.conversations import Participant
from models.enums import NotificationEvent as Event
from services import background, inbox_aliases, participants, reply_drafts
from services.conversations import latest_email, update_conversation
from services.notifications import events as notifications
from services.notifications import mentions

log = logging.getLogger(__name__)
# Why a reply is `unknown` (jobs/send_message.py, jobs/sweeps.py) ends with what to do.
UNKNOWN_FATE = (
    "It may have been sent: check the customer's copy or the mail server's log, then send it "
    "again or mark it as sent."
)


DECIDABLE = ("failed", "unknown")  # an agent may send these again


class ReplyError(ValueError):
    """The reply cannot be accepted; the message says what to fix. `field` names the form
    field it is about ("to"), when the composer can show it beside that field."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def clean_addresses(values: list[str] | str | None, field: str) -> list[str]:
    """To/CC/BCC as a list or a comma/semicolon-separated string; each must be an address.
    A refusal names the field (ReplyError.field: "to", "cc", "bcc")."""
    if not values:
        return []
    if isinstance(values, str):
        values = re.split(r"[,;]", values)
    out = []
    for value in values:
        if not isinstance(value, str):
            raise ReplyError(f"{field} must contain email addresses", field.lower())
        address = value.strip().strip("<>").strip()
        if not address:
            continue
        if not is_email_address(address):
            raise ReplyError(f"{field}: {address!r} is not an email address", field.lower())
        out.append(address.lower())
    return out


def message_domain(inbox: Inbox) -> str:
    """Our Message-IDs use the inbound domain if set, else the support address's domain."""
    return get_settings().inbound_domain or inbox.support_address.rpartition("@")[2]


def create_reply(
    conversation: Conversation,
    author: User,
    text: str,
    *,
    html: str | None = None,
    private: bool = False,
    to: list[str] | str | None = None,
    cc: list[str] | str | None = None,
    bcc: list[str] | str | None = None,
    attachments: list[OutgoingAttachment] | None = None,
    inbound_email_id: int | None = None,
    send_after: datetime | None = None,
    scheduled: bool = False,
    from_address: str | None = None,
) -> Message:
    """Record a note (never emailed) or an outgoing reply (queued, then sent by a job).
    `inbound_email_id`: the agent's email it came from (a reply by email), linked in the
    same commit, so a retried job finds it posted and never posts it twice.

    `send_after`: no send job takes the reply before then (the composer's undo window, or
    the time the agent chose when `scheduled`); it is not enqueued now, the scheduler's tick
    does it when due (services/send_later.py). A note is never delayed nor scheduled.

    `to` is who the reply goes to (the composer's To chips); None (the API without `to`,
    older callers) means the conversation's contact, as reply-all has it. A note has no
    recipients: its To is ignored (the composer's To is always prefilled), CC/BCC refused.

    `from_address`: the inbox address the reply goes out from (the primary or an alias: the
    composer's From); None (the API without `from`, other callers) means the alias the
    customer's latest email was written to, else the primary."""
    text = (text or "").strip()
    if not text and not attachments:
        raise ReplyError("the reply is empty: write a message or attach a file")
    to_list = [] if private else reply_to_addresses(conversation, to)
    cc_list, bcc_list = clean_addresses(cc, "CC"), clean_addresses(bcc, "BCC")
    if private and (cc_list or bcc_list):
        raise ReplyError("a private note is never emailed, so it cannot have CC or BCC")
    if private and scheduled:
        raise ReplyError("A note is added at once: only a reply can be sent later.", "send_at")
    if private:
        send_after = None
    sender = "" if private else _sending_address(conversation, from_address)
    now = utcnow()
    message = Message(
        conversation_id=conversation.id,
        inbox_id=conversation.inbox_id,
        direction="note" if private else "outgoing",
        sender_user_id=author.id,
        text_body=text,
        html_body=html,
        to_addresses=to_list,
        cc_addresses=cc_list,
        bcc_addresses=bcc_list,
        from_address=sender,
        subject=conversation.subject,
        delivery_status=None if private else "queued",
        inbound_email_id=inbound_email_id,
        send_after=send_after,
        scheduled=scheduled and send_after is not None,
    )
    # To a third party alone: their thread, their reply address (services/outbound.py).
    # Otherwise whoever the agent added is on the conversation from now on (reply-all).
    third_party = participants.third_party_for(conversation, to_list) if to_list else None
    message.participant_id = third_party.id if third_party is not None else None
    if not private and third_party is None:
        participants.on_outgoing(conversation, to_list + cc_list)
    db.session.add(message)
    db.session.flush()
    if not private:
        inbox = conversation.inbox
        message.message_id = outgoing_message_id(
            conversation.token, message.id, message_domain(inbox)
        )
    _store_attachments(message, conversation, attachments or [])
    if private:  # the people it @mentions hear of it
        people = mentions.mentioned(text, conversation)
        if people:
            notifications.record(
                Event.MENTION, conversation, message=message, actor_id=author.id, users=people
            )
    conversation.last_activity_at = now
    reply_drafts.delete_for(conversation.id, author.id, commit=False)  # sent: no draft left
    db.session.commit()
    if not private and send_after is None:
        enqueue_send(message.id)
    return message


def _sending_address(conversation: Conversation, chosen: str | None) -> str:
    """The reply's From address as stored ("" for the primary): one of the inbox's own."""
    if chosen is None:
        return inbox_aliases.reply_from(conversation)
    found = inbox_aliases.sending_address(conversation.inbox, chosen)
    if found is None:
        raise ReplyError(
            f"{chosen.strip() or 'That address'} is not an address of this inbox: choose its "
            "primary address or one of its aliases.",
            "from_address",
        )
    return found


def reply_to_addresses(conversation: Conversation, to: list[str] | str | None) -> list[str]:
    """An email reply's To: the addresses given, at least one; None means the contact."""
    if to is None:
        return [conversation.contact.email.lower()]
    addresses = list(dict.fromkeys(clean_addresses(to, "To")))  # twice is one recipient
    if not addresses:
        raise ReplyError("Add at least one recipient in To.", "to")
    return addresses


def reply_and_resolve(conversation: Conversation, author: User, text: str, **options) -> Message:
    """The composer's "Send and resolve": the reply (or note) is recorded and queued, then the
    conversation resolved (an activity line), in one request: nothing to refuse once sent."""
    message = create_reply(conversation, author, text, **options)
    update_conversation(conversation, author, status="resolved")
    return message


def our_addresses(conversation: Conversation) -> set[str]:
    """Addresses that are the inbox itself (support, aliases, forwarding, reply+ continuity)."""
    inbox, domain = conversation.inbox, get_settings().inbound_domain
    ours = {normalise(address) for address in inbox_aliases.addresses_of(inbox)}
    if domain:
        ours.add(normalise(inbox.forwarding_address(domain)))
    return ours


def reply_all_recipients(
    conversation: Conversation, latest: Message | None = None
) -> tuple[str, list[str]]:
    """Who a reply goes to, reply-all style (services/participants.reply_all): To is who wrote
    the latest incoming email (the contact or a participant), CC the contact and the other
    cc participants, less To and our own addresses; a third party's email is answered to
    them alone. `latest`: that email, when the caller has it at hand."""
    if latest is None:
        latest = latest_email(conversation.id)
    return participants.reply_all(conversation, latest)


def _store_attachments(message: Message, conversation: Conversation, files) -> None:
    storage = get_storage()
    for index, attachment in enumerate(files):
        key = f"outgoing/{conversation.token}/{message.id}/{index}"
        storage.put(key, io.BytesIO(attachment.data), len(attachment.data), attachment.content_type)
        message.attachments.append(
            Attachment(
                filename=attachment.filename,
                content_type=attachment.content_type,
                size=len(attachment.data),
                storage_key=key,
            )
        )


def enqueue_send(message_pk: int) -> bool:
    """Queue the send job; if Redis is down the message stays queued and the sweep retries."""
    try:
        background.enqueue_send(message_pk)
        return True
    except (RedisError, OSError) as exc:
        log.warning("reply %d saved but not queued (Redis: %s); the sweep will", message_pk, exc)
        return False


def retry_delivery(message: Message) -> None:
    """The agent's "retry" on a failed reply, or "send again" on one of unknown fate."""
    if message.direction != "outgoing" or message.delivery_status not in DECIDABLE:
        raise ReplyError("only a failed reply, or one whose delivery is unknown, can be sent again")
    message.delivery_status, message.delivery_error = "queued", None
    message.handed_over_at = None
    db.session.commit()
    enqueue_send(message.id)


def mark_sent(message: Message, agent: User) -> None:
    """The agent's answer to a reply of unknown fate: the customer has it, never send again."""
    if message.direction != "outgoing" or message.delivery_status != "unknown":
        raise ReplyError("only a reply whose delivery is unknown can be marked as sent")
    message.delivery_status, message.delivery_error = "sent", None
    message.sent_at = utcnow()
    message.smtp_response = f"marked as sent by {agent.name}"
    db.session.commit()


def last_incoming(conversation_id: int, before_id: int) -> Message | None:
    """The email a reply to the customer threads under: never a third party's (their thread
    is their own: services/participants.latest_from)."""
    third_parties = select(Participant.id).where(
        Participant.conversation_id == conversation_id,
        Participant.role == participants.THIRD_PARTY,
    )
    return db.session.scalar(
        select(Message)
        .where(
            Message.conversation_id == conversation_id,
            Message.direction == "incoming",
            Message.id < before_id,
            Message.message_id.is_not(None),
            or_(Message.participant_id.is_(None), Message.participant_id.not_in(third_parties)),
        )
        .order_by(Message.id.desc())
        .limit(1)
    )
