"""Outgoing mail, shaped like inbound (services/inbound_delivery.py): a reply becomes an
OutgoingEmail (compose), goes through the inbox's own SMTP server or the deployment's
(transport_for; services/mail_credentials.py builds it), and its exact bytes are kept
(store_mime). The job, jobs/send_message.py, only claims the reply, calls these, hands the
bytes to SMTP and records the answer."""

from __future__ import annotations

import io

from sqlalchemy import select

from extensions import db, get_settings, get_storage
from mail.compose import (
    OutgoingAttachment,
    OutgoingEmail,
    build_mime,
    html_with_signature,
    reply_subject,
    thread_index,
)
from mail.model import Person
from mail.smtp import SmtpTarget
from models import Inbox, Message, User
from services import participants, signatures
from services.forwards import SEPARATOR
from services.mail_credentials import (  # noqa: F401 - importable from here, as before
    NoTransport,
    global_smtp_target,
    inbox_smtp_target,
    smtp_target_for,
)
from services.replies import last_incoming


def transport_for(inbox: Inbox) -> SmtpTarget:
    """The inbox's own SMTP when configured, else the global SMTP_* settings
    (services/mail_credentials.py builds it, with the inbox's OAuth token when connected)."""
    return smtp_target_for(inbox)


# RFC 3834: what automations send says so, and asks Exchange/Outlook not to answer it with
# an out-of-office of their own (the other half of the loop guard: services/automations).
AUTOMATIC_HEADERS = b"Auto-Submitted: auto-replied\r\nX-Auto-Response-Suppress: All\r\n"


def is_automatic(message: Message) -> bool:
    """Sent by an automation (acknowledgement, a rule's saved reply), not by an agent."""
    return message.direction == "outgoing" and bool(message.auto_flag)


def sender_name(inbox: Inbox, author: User | None) -> str:
    """The From display name: "Ana from Support", or the inbox's name (that style, or mail
    an automation sent, which has no agent)."""
    if inbox.sender_name_style == "agent_from_inbox" and author is not None:
        return f"{author.name} from {inbox.name}"
    return inbox.name


def recipients(message: Message, contact) -> list[Person]:
    """The reply's To as the agent chose it (Message.to_addresses); a reply recorded without
    a To goes to the contact."""
    return named(message.to_addresses, message.conversation, contact) or [
        Person(contact.email, contact.name)
    ]


def named(people: list[Person], conversation, contact) -> list[Person]:
    """The people an agent chose (addresses), each with the name we know them by: the
    contact's, else the participant's (as the customer's email named them)."""
    names = {p.email.lower(): p.name for p in participants.of(conversation.id) if p.name}
    names[contact.email.lower()] = contact.name or names.get(contact.email.lower(), "")
    return [Person(p.address, p.name or names.get(p.address.lower(), "")) for p in people]


def compose(message: Message) -> OutgoingEmail:
    """The reply as an email: threaded under the customer's last message, with the inbox's
    signature, its Reply-To (the conversation's continuity address when configured) and the
    stored attachments."""
    conversation = message.conversation
    inbox, contact = conversation.inbox, conversation.contact
    automatic = is_automatic(message)
    author = None if automatic else message.sender
    settings = get_settings()
    parent = last_incoming(conversation.id, message.id)
    references = (parent.references or "").split() if parent else []
    continuity = inbox.reply_to_style == "continuity" and settings.inbound_domain
    reply_to = (
        f"reply+{conversation.token}@{settings.inbound_domain}"
        if continuity
        else inbox.support_address
    )
    # A forward, or an answer to a third party: their own thread and reply address, under
    # their latest email (never the customer's), and never copied to the customer.
    third_party = participants.participant_of(message)
    if third_party is not None and third_party.role != participants.THIRD_PARTY:
        third_party = None
    if third_party is not None:
        parent = participants.latest_from(conversation.id, third_party.id, message.id)
        references = (parent.references or "").split() if parent else []
        reply_to = participants.reply_address(third_party) or reply_to
    not_customer = contact.email.lower() if third_party is not None else None
    # Thread-Index: one response level per email of the conversation after its first, up to
    # this one (the customer's too: Outlook adds one level per message of the thread).
    emails_at = list(
        db.session.scalars(
            select(Message.created_at)
            .where(
                Message.conversation_id == conversation.id,
                Message.direction.in_(("incoming", "outgoing")),
                Message.id <= message.id,
            )
            .order_by(Message.id)
        )
    )
    # The agent's signature, then the inbox's; an automation's reply has only the inbox's.
    signature_html, signature_text = signatures.render(inbox, author, message.from_address)
    # A forward is signed under its note, above the forwarded email(s).
    words, forwarded = message.text_body, ""
    if message.forward and SEPARATOR in words:
        note, _, rest = words.partition(SEPARATOR)
        words, forwarded = note.rstrip(), SEPARATOR + rest
    text = f"{words}\n\n-- \n{signature_text}" if signature_text else words
    text = f"{text}\n\n{forwarded}".lstrip() if forwarded else text
    storage = get_storage()
    return OutgoingEmail(
        message_id=message.message_id,
        # The address the customer wrote to (an alias) or the agent chose; else the primary.
        sender=Person(message.from_address or inbox.support_address, sender_name(inbox, author)),
        to=recipients(message, contact),
        cc=[
            p
            for p in named(message.cc_addresses, conversation, contact)
            if p.address.lower() != not_customer
        ],
        bcc=[a for a in message.bcc_addresses.addresses() if a.lower() != not_customer],
        reply_to=reply_to,
        # What automations send carries the subject they chose (an acknowledgement's own).
        subject=(automatic and message.subject)
        or (message.forward and message.subject)  # "Fwd: …" (services/forwards.py)
        or reply_subject(conversation.subject),
        date=message.created_at,
        text=text,
        html=html_with_signature(words, signature_html, forwarded),
        in_reply_to=parent.message_id if parent else None,
        references=references,
        thread_index=thread_index(conversation.token, conversation.created_at, emails_at[1:]),
        attachments=[
            OutgoingAttachment(a.filename, a.content_type, storage.get_bytes(a.storage_key))
            for a in message.attachments
            if a.storage_key
        ],
    )


def store_mime(message: Message, outgoing: OutgoingEmail) -> bytes:
    """Build the MIME and keep the exact bytes that will be sent (agents download them)."""
    raw = build_mime(outgoing)
    if is_automatic(message):
        raw = AUTOMATIC_HEADERS + raw  # header order carries no meaning; the top is simplest
    key = f"outgoing/{message.conversation.token}/{message.id}.eml"
    get_storage().put(key, io.BytesIO(raw), len(raw), "message/rfc822")
    message.mime_storage_key = key
    db.session.commit()
    return raw
