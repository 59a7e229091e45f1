"""The inbox's auto-acknowledgement ("we got your message, it is #42") and its guards.

It answers a new conversation (optionally only outside business hours: services/
business_hours.py), or whatever message a rule's "acknowledge" action chooses, through the
normal outbound path: a queued outgoing message with the conversation's continuity headers,
so the customer's answer threads (services/automations/outgoing.py).

Two machines that auto-answer each other never stop on their own, so it is never sent:
- to automatic mail: an auto-reply or `Auto-Submitted` other than "no", a bounce, bulk mail
  (Message.auto_flag, mail/loops.py) or mailing-list mail (List-Id, List-Unsubscribe);
- to our own addresses: any inbox's support or forwarding address, the inbound domain;
- more than once per sender and inbox within the window (`window_minutes`): the flood guard
  against a sender whose own auto-reply slipped through the other guards;
- by the inbox's own acknowledgement, to a conversation a rule just marked as spam (the
  rules run first): answering spam is backscatter.
"""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

from sqlalchemy import func, select

from extensions import db
from mail.model import ParsedEmail
from models import AutoAcknowledgement, Conversation, Inbox, Message, utcnow
from services.automations.outgoing import queue_automatic_reply
from services.business_hours import within_hours
from services.labels import conversation_labels
from services.routing import OurAddresses
from services.saved_replies import render_text, variable_values

KIND = "acknowledgement"
DEFAULT_WINDOW_MINUTES = 1440
SPAM_LABEL = "spam"  # what the rules' "mark as spam" adds (services/automations/engine.py)
DEFAULT_BODY = (
    "Hello {{contact.name}},\n\n"
    "Thank you for writing to {{inbox.name}}. We have your message as conversation "
    "#{{conversation.number}} and will answer as soon as we can; a reply to this email "
    "adds to it.\n\n{{inbox.name}}"
)


def maybe_acknowledge(
    message: Message,
    conversation: Conversation,
    parsed: ParsedEmail,
    is_new: bool,
    effects,
    settings: AutoAcknowledgement | None,
    ours: OurAddresses | None = None,
) -> bool:
    """The inbox's own acknowledgement (`settings`: the inbox's), when it is on, the message
    starts a conversation and (with `outside_hours_only`) arrived outside business hours."""
    if settings is None or not settings.enabled or not is_new:
        return False
    if any(label.name == SPAM_LABEL for label in conversation_labels(conversation.id)):
        return False  # a rule marked it as spam: answering would be backscatter
    if settings.outside_hours_only:
        arrived = message.created_at or utcnow()
        if within_hours(conversation.inbox, arrived):
            return False
    return acknowledge(message, conversation, parsed, effects, ours=ours)


def acknowledge(
    message: Message,
    conversation: Conversation,
    parsed: ParsedEmail,
    effects,
    *,
    by_rule: str | None = None,
    ours: OurAddresses | None = None,
) -> bool:
    """Queue the acknowledgement to the conversation's contact unless a guard (module
    docstring) says no; in the caller's transaction. Also the rules' "acknowledge" action
    (`by_rule`: the rule's name), which sends it even while the inbox's own is off.
    Returns whether it was queued."""
    inbox = conversation.inbox
    contact = conversation.contact
    if why_not_answer(message, parsed, contact, ours):
        return False
    settings = db.session.get(AutoAcknowledgement, inbox.id)
    window = settings.window_minutes if settings is not None else DEFAULT_WINDOW_MINUTES
    if _sent_within(inbox, contact.id, window):
        return False
    body = (settings.body if settings is not None else "").strip() or DEFAULT_BODY
    values = _values(conversation, inbox)
    subject = render_text(settings.subject, values).strip() if settings is not None else ""
    queue_automatic_reply(
        conversation, render_text(body, values), effects, kind=KIND, subject=subject or None
    )
    line = (
        f"Rule '{by_rule}' sent the auto-acknowledgement to {contact.email}"
        if by_rule
        else f"Auto-acknowledgement sent to {contact.email}"
    )
    db.session.add(conversation.activity(line[:2000]))
    return True


def why_not_answer(
    message: Message, parsed: ParsedEmail, contact, ours: OurAddresses | None = None
) -> str | None:
    """The loop guard of everything sent automatically: never to automatic or list mail,
    nor to our own address (`ours`, if read already). None when answering is fine, else
    why not."""
    if message.auto_flag or parsed.auto_flag or parsed.list_header:
        return "it was sent automatically"
    ours = OurAddresses() if ours is None else ours
    senders = {contact.email, *(p.address for p in (parsed.from_, parsed.contact) if p)}
    if any(address in ours for address in senders):
        return "it came from our own address"
    return None


def _sent_within(inbox: Inbox, contact_id: int, window_minutes: int) -> bool:
    """An acknowledgement to this contact from this inbox within the window (pending ones of
    this transaction included: a rule's and the inbox's own never both go)."""
    since = utcnow() - timedelta(minutes=max(window_minutes, 0))
    earlier = db.session.scalar(
        select(func.count(Message.id))
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(
            Message.inbox_id == inbox.id,
            Message.direction == "outgoing",
            Message.auto_flag == KIND,
            Conversation.contact_id == contact_id,
            Message.created_at >= since,
        )
    )
    return bool(earlier)


def _values(conversation: Conversation, inbox: Inbox) -> dict[str, str]:
    """The saved replies' variables (services/saved_replies.py: substituted, never evaluated);
    nobody writes an automatic reply, so the agent's variables read as the inbox's name."""
    as_agent = SimpleNamespace(name=inbox.name, email=inbox.support_address)
    return variable_values(as_agent, conversation)
