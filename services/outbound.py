"""Outgoing mail, shaped like inbound (services/inbound_delivery.py): a reply becomes an
OutgoingEmail (compose), goes through the inbox's own SMTP server or the deployment's
(transport_for), and its exact bytes are kept (store_mime). The job, jobs/send_message.py,
only claims the reply, calls these, hands the bytes to SMTP and records the answer."""

from __future__ import annotations

import io

from sqlalchemy import func, select

from config import Settings
from extensions import db, get_settings, get_storage
from mail.compose import OutgoingAttachment, OutgoingEmail, build_mime, reply_subject, thread_index
from mail.model import Person
from mail.smtp import SmtpTarget
from models import Inbox, Message, User
from services.replies import last_incoming


class NoTransport(Exception):
    """Neither the inbox nor the deployment has an SMTP server configured."""


def inbox_smtp_target(
    host: str,
    port: int,
    security: str,
    auth_method: str,
    username: str | None,
    password: str | None,
) -> SmtpTarget:
    """An inbox's SMTP server (security ssl|starttls|none, auth plain|login|none): the one
    builder for its saved settings and for the wizard's fields being tested."""
    use_auth = auth_method != "none"
    return SmtpTarget(
        host=host,
        port=port,
        implicit_tls=security == "ssl",
        starttls=security == "starttls",
        username=(username or "") if use_auth else "",
        password=(password or "") if use_auth else "",
        auth_method=auth_method if use_auth else "",
    )


def global_smtp_target(settings: Settings) -> SmtpTarget:
    """The deployment's SMTP server, from the SMTP_* settings."""
    return SmtpTarget(
        host=settings.smtp_address,
        port=settings.smtp_port,
        implicit_tls=settings.smtp_ssl,
        starttls=settings.smtp_starttls_auto,
        verify_certificate=settings.smtp_verify_mode != "none",
        helo=settings.smtp_domain or None,
        username=settings.smtp_username,
        password=settings.smtp_password,
        auth_method=settings.smtp_authentication,
    )


def transport_for(inbox: Inbox) -> SmtpTarget:
    """The inbox's own SMTP when configured, else the global SMTP_* settings."""
    own = inbox.smtp
    if own is not None and own.enabled and own.host:
        return inbox_smtp_target(
            own.host, own.port, own.security, own.auth_method, own.username, own.password
        )
    settings = get_settings()
    if not settings.smtp_address:
        raise NoTransport(
            f"no SMTP server: configure SMTP for inbox {inbox.name} or set SMTP_ADDRESS"
        )
    return global_smtp_target(settings)


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
    """The reply's To as the agent chose it (Message.to_addresses), the contact's display name
    kept on the contact's own address; a reply recorded without a To goes to the contact."""
    chosen = [a for a in (message.to_addresses or "").split(", ") if a]
    if not chosen:
        return [Person(contact.email, contact.name)]
    own = contact.email.lower()
    return [Person(a, contact.name if a.lower() == own else "") for a in chosen]


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
    position = db.session.scalar(
        select(func.count(Message.id)).where(
            Message.conversation_id == conversation.id,
            Message.direction == "outgoing",
            Message.id <= message.id,
        )
    )
    text = message.text_body
    if inbox.signature.strip():
        text = f"{text}\n\n-- \n{inbox.signature.strip()}"
    storage = get_storage()
    return OutgoingEmail(
        message_id=message.message_id,
        sender=Person(inbox.support_address, sender_name(inbox, author)),
        to=recipients(message, contact),
        cc=[a for a in message.cc_addresses.split(", ") if a],
        bcc=[a for a in message.bcc_addresses.split(", ") if a],
        reply_to=reply_to,
        # What automations send carries the subject they chose (an acknowledgement's own).
        subject=(automatic and message.subject) or reply_subject(conversation.subject),
        date=message.created_at,
        text=text,
        html=None,
        in_reply_to=parent.message_id if parent else None,
        references=references,
        thread_index=thread_index(conversation.token, conversation.created_at, position),
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
