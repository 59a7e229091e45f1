"""Forwarding a conversation, or one of its emails, to a third party (a supplier, a colleague
elsewhere): the composer's Forward tab and the API.

A forward is an outgoing Message (`forward=True`) sent by the normal send job. Each recipient
becomes a third-party Participant with a continuity token of their own, so their answer to
reply+<token>@<inbound domain> comes back into this conversation marked as theirs
(services/routing.py, services/participants.py), never as the customer's, and an agent's
answer to them goes to them alone. The customer is never a recipient.

A forward goes out at once: the composer's undo window and "Send later" are for replies.
"""

from __future__ import annotations

import io
import re

from sqlalchemy import select

from extensions import db, get_storage
from mail.addresses import normalise
from mail.model import Person
from mail.threading import outgoing_message_id
from models import Attachment, Conversation, Message, User, utcnow
from models.enums import Direction
from services import participants
from services.replies import ReplyError, clean_addresses, enqueue_send, message_domain

SEPARATOR = "---------- Forwarded message ----------"


class ForwardError(ReplyError):
    """The forward cannot be sent; `field` names the form field to fix ("to", "message")."""


def forwardable(conversation: Conversation) -> list[Message]:
    """The emails of the conversation, oldest first: what a forward can carry (notes and
    activity lines are the team's own, never forwarded; nor are our automatic replies, such as
    the acknowledgement: noise to whoever reads the forward)."""
    return list(
        db.session.scalars(
            select(Message)
            .where(
                Message.conversation_id == conversation.id,
                (Message.direction == Direction.INCOMING)
                | ((Message.direction == Direction.OUTGOING) & Message.auto_flag.is_(None)),
            )
            .order_by(Message.id)
        )
    )


def forward(
    conversation: Conversation,
    author: User,
    to: list[str] | str | None,
    note: str = "",
    message: Message | None = None,
) -> Message:
    """Forward `message` (one email of the conversation), or the whole conversation when None,
    to `to` with `note` on top; recorded, then queued for the send job. Raises ForwardError
    (its `field` says which) before anything is written."""
    recipients = _recipients(conversation, to)
    if message is not None and (
        message.conversation_id != conversation.id
        or message.direction not in (Direction.INCOMING, Direction.OUTGOING)
    ):
        raise ForwardError("Choose an email of this conversation to forward.", "message")
    carried = [message] if message is not None else forwardable(conversation)
    if not carried:
        raise ForwardError("This conversation has no email to forward yet.", "message")
    people = [
        participants.add(conversation, Person(address, name), participants.THIRD_PARTY)
        for address, name in recipients.items()
    ]
    subject = f"Fwd: {conversation.subject or '(no subject)'}"[: Message.subject.type.length]
    sent = Message(
        conversation_id=conversation.id,
        inbox_id=conversation.inbox_id,
        direction=Direction.OUTGOING,
        sender_user_id=author.id,
        text_body=forward_text(conversation, note, carried),
        to_addresses=list(recipients),  # the addresses (a dict's keys)
        subject=subject,
        delivery_status="queued",
        participant_id=people[0].id,
        forward=True,
    )
    db.session.add(sent)
    db.session.flush()
    sent.message_id = outgoing_message_id(
        conversation.token, sent.id, message_domain(conversation.inbox)
    )
    _copy_attachments(sent, conversation, carried)
    conversation.last_activity_at = utcnow()
    db.session.commit()
    enqueue_send(sent.id)
    return sent


def _recipients(conversation: Conversation, to) -> dict[str, str]:
    """Address → display name ("Sam <sam@x>" or a bare address, comma-separated): at least
    one, each valid; never the customer (a forward is for someone else) nor one of our own
    addresses (it would come straight back in)."""
    from services.routing import OurAddresses

    named = _named(to)
    addresses = list(dict.fromkeys(clean_addresses(list(named), "To")))
    if not addresses:
        raise ForwardError("Add the address to forward to in To.", "to")
    customer = normalise(conversation.contact.email)
    ours = OurAddresses()
    for address in addresses:
        if normalise(address) == customer:
            raise ForwardError(
                f"To: {address} is the customer: forward to someone else, or reply instead.",
                "to",
            )
        if address in ours:
            raise ForwardError(f"To: {address} is one of this helpdesk's own addresses.", "to")
    names = {normalise(a): n for a, n in named.items()}
    return {address: names.get(normalise(address), "") for address in addresses}


def _named(to) -> dict[str, str]:
    """What was typed, address → name: "Sam Supplier <sam@x>, ann@y" as a mail client writes
    it, or a list of addresses (the API)."""
    pieces = re.split(r"[,;]", to) if isinstance(to, str) else list(to or [])
    named: dict[str, str] = {}
    for piece in pieces:
        if not isinstance(piece, str):
            named[piece] = ""  # clean_addresses refuses it, naming To
            continue
        found = re.fullmatch(r"\s*(.*?)\s*<([^<>]*)>\s*", piece)
        if found:
            named[found.group(2).strip()] = found.group(1).strip().strip('"')
        elif piece.strip():
            named[piece.strip()] = ""
    return named


def forward_text(conversation: Conversation, note: str, carried: list[Message]) -> str:
    """The note on top, then each forwarded email as mail clients quote one."""
    blocks = [(note or "").strip()] if (note or "").strip() else []
    blocks += [_forwarded_block(conversation, message) for message in carried]
    return "\n\n".join(blocks)


def _forwarded_block(conversation: Conversation, message: Message) -> str:
    inbox = conversation.inbox
    if message.direction == Direction.INCOMING:
        sender = message.from_display or conversation.contact.email
        to = str(message.to_addresses) or inbox.support_address
    else:
        name = message.sender.name if message.sender else inbox.name
        sender = Person(message.from_address or inbox.support_address, name).formatted()
        to = str(message.to_addresses) or conversation.contact.email
    lines = [
        SEPARATOR,
        f"From: {sender}",
        f"Date: {message.created_at:%a, %d %b %Y %H:%M} UTC",
        f"Subject: {message.subject or conversation.subject}",
        f"To: {to}",
    ]
    if message.cc_addresses:
        lines.append(f"Cc: {message.cc_addresses}")
    return "\n".join(lines) + "\n\n" + (message.text_body or "").strip()


def _copy_attachments(sent: Message, conversation: Conversation, carried: list[Message]) -> None:
    """The forwarded emails' stored files, copied under the forward's own keys (each message
    owns its objects: deleting one never empties another)."""
    storage = get_storage()
    index = 0
    for message in carried:
        for attachment in message.attachments:
            if not attachment.storage_key:
                continue  # over the size limit when it arrived: nothing to send
            data = storage.get_bytes(attachment.storage_key)
            key = f"outgoing/{conversation.token}/{sent.id}/{index}"
            index += 1
            storage.put(key, io.BytesIO(data), len(data), attachment.content_type)
            sent.attachments.append(
                Attachment(
                    filename=attachment.filename,
                    content_type=attachment.content_type,
                    size=len(data),
                    storage_key=key,
                )
            )
