"""Turn one raw inbound message into a conversation message, exactly once.

Routing (services/routing.py) finds the inbox and the conversation; this module handles
dedupe, the contact, the conversation's lifecycle, content, attachments and bounces.

`deliver` writes in the session and flushes but does not commit: the job commits the message
together with the inbound row's outcome (services/leases.finish), so a message is never
delivered while its row still says `processing`, and one commit per message is saved. What
must wait for that commit (the rules' outgoing mail and notifications) comes back in
`Outcome.effects`, for `automations.after_commit`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from extensions import db, get_settings
from mail.model import ParsedEmail, Person
from mail.parse import parse_email
from models import Contact, Conversation, InboundEmail, Message, utcnow
from models.enums import NotificationEvent as Event
from services import automations, inbox_aliases, participants, sender_trust, spam
from services.assignment import auto_assign
from services.conversations import new_conversation
from services.inbound_content import (
    build_content,
    cid_urls,
    forget_attachments,
    put_attachments,
    refers_to_parts,
)
from services.notifications import events as notifications
from services.routing import Route, conversation_by_subject, route

DUPLICATE = "duplicate of a message already delivered"
# Who a delivery report from the empty sender (RFC 5321 null reverse-path) is shown as.
MAIL_SYSTEM = Person("", "Mail delivery system")


@dataclass
class Outcome:
    status: str  # delivered | bounced | refused
    reason: str | None = None
    message_pk: int | None = None
    inbox_id: int | None = None  # the inbox routing chose, recorded on the row with the outcome
    effects: automations.Effects | None = None  # for automations.after_commit, once committed


def deliver(inbound: InboundEmail, raw: bytes) -> Outcome:
    parsed = parse_email(raw, get_settings().attachment_max_bytes)
    # An agent answering a notification is never a customer's email: posted, held or refused
    # there alone. (Imported here: that module builds this one's Outcome.)
    from services.notifications import reply_by_email

    if reply_by_email.is_for_an_agent(parsed):
        return reply_by_email.post_agent_reply(inbound, parsed)
    # An inbox known at receive time (IMAP polls its own mailbox) wins over the headers.
    where = route(parsed, inbound.inbox_id)
    if where.inbox is None:
        shown = ", ".join(parsed.recipients) or "none found"
        return Outcome("bounced", where.refusal or f"no inbox matches any recipient ({shown})")
    # The row itself is not written here: its job renews the row's lease from another
    # connection meanwhile (services/leases.py), which a row lock held through the whole
    # delivery would block; the job writes its outcome last, just before the commit.
    inbox_id = where.inbox.id
    duplicate = _existing_message(inbox_id, inbound.message_id)
    if duplicate is not None:
        return Outcome("delivered", DUPLICATE, duplicate.id, inbox_id)
    person = parsed.contact or parsed.from_
    report_about_ours = parsed.bounce is not None and where.conversation is not None
    if person is None and report_about_ours:
        # A delivery report from the empty sender (`From: MAILER-DAEMON <>`) about one of our
        # emails: it belongs in that email's conversation, whose contact it is about.
        person = contact_person(where.conversation.contact)
    if person is None:
        return Outcome("bounced", _no_sender(parsed), inbox_id=inbox_id)
    # Everything that only reads, and the storage and sanitising, before the first write: on
    # SQLite that write takes the database's write lock until the commit, which another
    # worker's delivery waits for (two workers scale by how little of a job holds it).
    known = _known_contact(person)
    if where.conversation is None and known is not None:  # a new contact has none yet
        found = conversation_by_subject(where.inbox, known, parsed.subject)
        if found is not None:
            where = Route(where.inbox, found, "subject", participant=where.participant)
    verdict = sender_trust.verdict_for(raw, parsed, inbound)
    spam_reason = spam.spam_reason(where.inbox, parsed, raw)
    files = put_attachments(parsed, inbound)
    content = None if refers_to_parts(parsed, files) else build_content(parsed, {})
    setup = automations.read_setup(inbox_id)  # what the writes consult, read before them
    try:
        contact = _contact(person, known)
        message, effects = _record(
            inbound, parsed, where, contact, files, content, verdict, spam_reason, setup
        )
        db.session.flush()  # a concurrent delivery of the same Message-ID shows here
    except IntegrityError:
        # Another worker delivered the same Message-ID to this inbox first: same message.
        db.session.rollback()
        duplicate = _existing_message(where.inbox.id, inbound.message_id)
        if duplicate is None:
            raise
        forget_attachments(parsed, inbound)
        return Outcome("delivered", DUPLICATE, duplicate.id, inbox_id)
    return Outcome("delivered", None, message.id, inbox_id, effects)


def _record(
    inbound: InboundEmail,
    parsed: ParsedEmail,
    where: Route,
    contact: Contact,
    files: list,
    content,
    verdict: dict | None,
    spam_reason: str | None,
    setup: automations.Setup,
):
    """The writes. `files` were stored, `content` (None: it refers to stored parts by cid)
    built and `setup` read beforehand, outside the database's write lock."""
    inbox, now = where.inbox, utcnow()
    conversation = where.conversation
    is_new = conversation is None
    reopened_from = None
    if is_new:
        conversation = new_conversation(inbox.id, contact.id, parsed.subject, at=now)
    else:
        if conversation.waits_for_a_customer:
            reopened_from = conversation.status
            conversation.reopen()
        conversation.last_activity_at = now
    inbox.last_message_at = now
    # Who else is on it (reply-all), and who wrote it when not the contact.
    writer = participants.on_incoming(conversation, parsed, contact, where.participant, setup.ours)
    sender = parsed.from_ or (
        MAIL_SYSTEM if parsed.bounce and parsed.contact is None else contact_person(contact)
    )
    message = Message(
        conversation_id=conversation.id,
        inbox_id=inbox.id,
        direction="incoming",
        contact_id=contact.id,
        participant_id=writer.id if writer is not None else None,
        inbound_email_id=inbound.id,
        message_id=inbound.message_id,
        in_reply_to=_ids_within(parsed.in_reply_to, Message.in_reply_to.type.length),
        references=" ".join(parsed.references[-50:]) or None,
        subject=parsed.subject[:998],
        from_address=_fit(sender.address, Message.from_address),
        from_name=_fit(sender.name, Message.from_name),
        to_addresses=parsed.to,
        cc_addresses=parsed.cc,
        reply_to=parsed.reply_to,
        sender_verdict=verdict,
        delivery_status="received",
        threaded_by=where.threaded_by,
        auto_flag=parsed.auto_flag,
        attachments=files,
    )
    if content is not None:
        _fill(message, content)
    db.session.add(message)
    db.session.flush()
    if content is None:  # cid: images point at the stored parts' ids, known once flushed
        _fill(message, build_content(parsed, cid_urls(files)))
    # Spam (a new conversation caught on arrival, or one set aside before): no assignee, no
    # rule, no acknowledgement, nobody told (services/spam.py).
    is_spam = spam.on_arrival(conversation, is_new, spam_reason)
    if reopened_from:  # after the message, so the thread reads in order
        line = f"Reopened ({reopened_from}) by a new email from {contact.email}"
        db.session.add(conversation.activity(line))
    if is_new and parsed.auto_flag is None and not is_spam:
        # After the first message, so the "Auto-assigned" line follows it in the thread.
        # Auto-replies, bounces and bulk mail are never assigned.
        auto_assign(conversation, inbox)
    if parsed.bounce:
        _mark_bounced_original(parsed, conversation)
    inbox_aliases.note_arrival(inbox, parsed)  # an alias's test email verifies it
    # Rules and the acknowledgement, in this transaction: exactly once per delivered message.
    # Not for a third party's answer to a forward: those are for the customer's emails (no
    # acknowledgement, no rule's reply to the customer about someone else's email).
    if is_spam or (writer is not None and writer.role == participants.THIRD_PARTY):
        effects = automations.Effects()
    else:
        effects = automations.run(message, conversation, parsed, is_new, setup)
    if not is_spam:
        _tell_agents(conversation, message, is_new)
    return message, effects


def _fill(message: Message, content) -> None:
    message.text_body, message.quoted_text = content.text, content.quoted_text
    message.html_body, message.quoted_html = content.html, content.quoted_html


def _tell_agents(conversation: Conversation, message: Message, is_new: bool) -> None:
    """The people this email concerns hear of it (as they chose), in the same transaction:
    once per delivered email. Not when a rule has already closed it (spam)."""
    if conversation.status == "resolved":
        return
    if is_new:
        event = Event.NEW_CONVERSATION
    else:
        event = Event.CUSTOMER_REPLY if conversation.assignee_id else Event.UNASSIGNED_REPLY
    notifications.record(event, conversation, message=message)


def _no_sender(parsed: ParsedEmail) -> str:
    """Why a message with no sender address is bounced (kept in the inbox's Inbound log,
    where an admin can read and reprocess it): a delivery report that names none of our
    emails, or an email without a usable From, Reply-To or X-Original-Sender."""
    if parsed.bounce is not None:
        about = parsed.bounce.original_message_id
        named = f"names {about}, which" if about else "names no email that"
        return (
            "a delivery report from the empty sender (MAILER-DAEMON) that "
            f"{named} is not one of ours"
        )
    return "no sender address: From, Reply-To and X-Original-Sender are missing or empty"


def contact_person(contact: Contact) -> Person:
    return Person(contact.email, contact.name)


def _mark_bounced_original(parsed: ParsedEmail, conversation: Conversation) -> None:
    """A delivery-status report about one of our replies fails that reply, in its thread."""
    report = parsed.bounce
    if report.action not in (None, "failed"):
        return  # "delayed" and friends: the server is still trying
    original = db.session.scalar(
        select(Message).where(
            Message.message_id == report.original_message_id,
            Message.direction == "outgoing",
            Message.conversation_id == conversation.id,
        )
    )
    if original is None:
        return
    recipient = report.recipient or "the recipient"
    original.delivery_status = "failed"
    original.delivery_error = report.diagnostic
    db.session.add(conversation.activity(f"Delivery to {recipient} failed: {report.diagnostic}"))


def _fit(text: str, column) -> str:
    """Cut to the column's width: PostgreSQL refuses a longer value (SQLite would keep it),
    and a 300-character display name must not stop a message from being delivered."""
    return text[: column.type.length]


def _ids_within(ids: list[str], width: int) -> str | None:
    """Space-separated Message-IDs, whole ones only, as many as fit in `width` characters."""
    kept: list[str] = []
    for message_id in ids:
        if len(" ".join([*kept, message_id])) > width:
            break
        kept.append(message_id)
    return " ".join(kept) or None


def _existing_message(inbox_id: int, message_id: str) -> Message | None:
    return db.session.scalar(
        select(Message).where(Message.inbox_id == inbox_id, Message.message_id == message_id)
    )


def _known_contact(person: Person) -> Contact | None:
    return db.session.scalar(select(Contact).where(Contact.email == person.address))


def _contact(person: Person, contact: Contact | None) -> Contact:
    """The sender's contact (`contact`, as looked up before), its defaulted name filled in,
    or a new one."""
    local_part = person.address.split("@", 1)[0]
    if contact is not None:
        if person.name and contact.name in ("", local_part):  # only a defaulted name changes
            contact.name = _fit(person.name, Contact.name)
        return contact
    contact = Contact(email=person.address, name=_fit(person.name or local_part, Contact.name))
    try:
        with db.session.begin_nested():
            db.session.add(contact)
    except IntegrityError:  # created concurrently by another worker
        contact = db.session.scalar(select(Contact).where(Contact.email == person.address))
    return contact
