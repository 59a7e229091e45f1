"""Mail the automations send on their own (the auto-acknowledgement, a rule's saved reply):
an outgoing message like an agent's reply (services/replies.create_reply), without an
agent, marked by `auto_flag` with its kind so the outbound path marks it
`Auto-Submitted: auto-replied` and signs it with the inbox's name (services/outbound.py)."""

from __future__ import annotations

from extensions import db
from mail.compose import reply_subject
from mail.threading import outgoing_message_id
from models import Conversation, Message, utcnow
from services.inbox_aliases import reply_from
from services.replies import message_domain

KINDS = ("acknowledgement", "saved_reply")  # Message.auto_flag of what automations send


def queue_automatic_reply(
    conversation: Conversation, text: str, effects, *, kind: str, subject: str | None = None
) -> Message:
    """Queue `text` to the conversation's contact, in the caller's transaction (the delivery
    commits it; `effects.outgoing` hands it to the outbound queue after the commit).
    `subject`: the email's subject (None: "Re: <the conversation's subject>"); the activity
    line is the caller's."""
    if kind not in KINDS:
        raise ValueError(f"unknown automatic reply kind {kind!r}: one of {', '.join(KINDS)}")
    message = Message(
        conversation_id=conversation.id,
        inbox_id=conversation.inbox_id,
        direction="outgoing",
        sender_user_id=None,
        text_body=text,
        to_addresses=[conversation.contact.email.lower()],
        from_address=reply_from(conversation),  # the alias the customer wrote to, if any
        subject=(subject or reply_subject(conversation.subject))[:998],
        delivery_status="queued",
        auto_flag=kind,
    )
    db.session.add(message)
    db.session.flush()
    message.message_id = outgoing_message_id(
        conversation.token, message.id, message_domain(conversation.inbox)
    )
    conversation.last_activity_at = utcnow()
    db.session.flush()
    effects.outgoing.append(message.id)
    return message
