"""Turn one raw inbound message into a conversation message (routing, contact, dedupe).

This is the first slice of processing: inbox matching, the reply+<token> continuity address,
dedupe per (inbox, Message-ID), the contact, and the plain-text body. Header threading,
HTML, quoting and attachments build on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from extensions import db, get_settings
from mail.addresses import normalise, recipient_addresses, reply_token, sender
from models import Contact, Conversation, InboundEmail, Inbox, Message, utcnow

REOPEN_STATUSES = ("resolved", "snoozed")
NUMBER_RETRIES = 5


@dataclass
class Outcome:
    status: str  # delivered | bounced
    reason: str | None = None
    message_id: int | None = None


def parse(raw: bytes) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(raw)


def deliver(inbound: InboundEmail, raw: bytes) -> Outcome:
    message = parse(raw)
    recipients = recipient_addresses(message)
    conversation = _conversation_by_token(recipients)
    inbox = db.session.get(Inbox, conversation.inbox_id) if conversation else None
    inbox = inbox or _inbox_for(recipients)
    if inbox is None:
        shown = ", ".join(recipients) or "none found"
        return Outcome("bounced", f"no inbox matches any recipient ({shown})")
    inbound.inbox_id = inbox.id

    duplicate = _existing_message(inbox.id, inbound.message_id)
    if duplicate is not None:
        return Outcome("delivered", "duplicate of a message already delivered", duplicate.id)

    who = sender(message)
    if who is None:
        return Outcome("bounced", "no sender address in Reply-To, X-Original-Sender or From")
    contact = _contact(*who)
    subject = str(message.get("Subject", "") or "").strip()
    now = utcnow()
    if conversation is None:
        conversation = _new_conversation(inbox, contact, subject)
        threaded_by = "new"
    else:
        threaded_by = "reply_token"
        if conversation.status in REOPEN_STATUSES:
            conversation.status = "open"
            conversation.snoozed_until = None
    conversation.last_activity_at = now
    inbox.last_message_at = now
    row = Message(
        conversation_id=conversation.id,
        inbox_id=inbox.id,
        direction="incoming",
        contact_id=contact.id,
        inbound_email_id=inbound.id,
        message_id=inbound.message_id,
        in_reply_to=str(message.get("In-Reply-To", "") or "").strip() or None,
        subject=subject,
        from_address=who[0],
        to_addresses=", ".join(recipients),
        text_body=_text_body(message),
        delivery_status="received",
        threaded_by=threaded_by,
    )
    db.session.add(row)
    try:
        db.session.commit()
    except IntegrityError:
        # Another worker delivered the same Message-ID to this inbox first: same message.
        db.session.rollback()
        duplicate = _existing_message(inbox.id, inbound.message_id)
        if duplicate is None:
            raise
        return Outcome("delivered", "duplicate of a message already delivered", duplicate.id)
    return Outcome("delivered", None, row.id)


def _conversation_by_token(recipients: list[str]) -> Conversation | None:
    domain = get_settings().inbound_domain
    for address in recipients:
        token = reply_token(address, domain)
        if token:
            found = db.session.scalar(select(Conversation).where(Conversation.token == token))
            if found is not None:
                return found
    return None


def _inbox_for(recipients: list[str]) -> Inbox | None:
    domain = get_settings().inbound_domain
    wanted = {normalise(address) for address in recipients}
    for inbox in db.session.scalars(select(Inbox).order_by(Inbox.id)):
        if normalise(inbox.support_address) in wanted:
            return inbox
        if domain and normalise(inbox.forwarding_address(domain)) in wanted:
            return inbox
    return None


def _existing_message(inbox_id: int, message_id: str) -> Message | None:
    return db.session.scalar(
        select(Message).where(Message.inbox_id == inbox_id, Message.message_id == message_id)
    )


def _contact(address: str, name: str) -> Contact:
    contact = db.session.scalar(select(Contact).where(Contact.email == address))
    if contact is not None:
        if name and not contact.name:
            contact.name = name
        return contact
    contact = Contact(email=address, name=name)
    try:
        with db.session.begin_nested():
            db.session.add(contact)
    except IntegrityError:  # created concurrently by another worker
        contact = db.session.scalar(select(Contact).where(Contact.email == address))
    return contact


def _new_conversation(inbox: Inbox, contact: Contact, subject: str) -> Conversation:
    """Next display number; a concurrent worker taking the same number makes us try again."""
    for _ in range(NUMBER_RETRIES):
        number = (db.session.scalar(select(func.max(Conversation.display_number))) or 0) + 1
        conversation = Conversation(
            inbox_id=inbox.id, contact_id=contact.id, display_number=number, subject=subject
        )
        try:
            with db.session.begin_nested():
                db.session.add(conversation)
            return conversation
        except IntegrityError:
            continue
    raise RuntimeError("could not allocate a conversation number; retry")


def _text_body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        return part.get_content()
    except (LookupError, UnicodeError, AssertionError):
        payload = part.get_payload(decode=True) or b""
        return payload.decode("utf-8", "replace")
