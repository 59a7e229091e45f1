"""What a notification email says and its headers (services/notifications/email.py sends it).

Plain text only, built from stored text (Message.text_body: the new part of a message, its
quoted history already cut off) and names, never from HTML; control characters removed.
"""

from __future__ import annotations

import re
from email.message import EmailMessage
from email.utils import formataddr

from sqlalchemy import func, select

from extensions import db, get_settings
from models import Conversation, Message, Notification, User
from models.enums import NotificationEvent as Event
from services.notifications.reply_address import address_for
from services.notifications.unsubscribe import unsubscribe_url
from services.system_mail import email_to_user

MAX_TEXT = 4000  # characters of each message shown; the rest is in Threadline
RULE = "-" * 60
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean(text: str) -> str:
    return _CONTROL.sub("", (text or "").replace("\r\n", "\n").replace("\r", "\n"))


def one_line(text: str) -> str:
    return " ".join(clean(text).split())


def message_id(conversation_id: int, user_id: int, number: int) -> str:
    """The n-th notification email about a conversation to a person (bracketless)."""
    settings = get_settings()
    domain = settings.inbound_domain or settings.smtp_domain or "localhost"
    return f"tl-notify.{conversation_id}.{user_id}.{number}@{domain}"


def writer(message: Message) -> str:
    """The customer who wrote a message, as people read it: their name, else the address."""
    return one_line(message.from_name or message.from_address) or "The customer"


def describe(notification: Notification) -> str:
    """One line per event: what happened."""
    actor = one_line(notification.actor.name) if notification.actor is not None else ""
    message = notification.message
    event = notification.event
    if event == Event.NEW_CONVERSATION:
        return f"New conversation in {one_line(notification.conversation.inbox.name)}"
    if event == Event.ASSIGNED:
        return f"Assigned to you by {actor}" if actor else "Assigned to you"
    if event in (Event.CUSTOMER_REPLY, Event.UNASSIGNED_REPLY):
        who = writer(message) if message is not None else "The customer"
        return f"{who} wrote" + (" (unassigned)" if event == Event.UNASSIGNED_REPLY else "")
    if event == Event.MENTION:
        return f"{actor or 'Someone'} mentioned you in a note"
    if event == Event.SEND_FAILED:
        reason = one_line(message.delivery_error or "") if message is not None else ""
        if message is not None and message.delivery_status == "unknown":
            return f"Your reply may not have been sent: {reason}"
        return f"Your reply could not be sent: {reason or 'the mail server refused it'}"
    return one_line(event)


def shown_text(message: Message) -> str:
    text = clean(message.text_body).strip()
    if not text:
        return "(No text: open the conversation to see this message.)"
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT].rstrip() + "\n[…] (the rest is in Threadline)"
    return text


def sections(
    notifications: list[Notification], conversation: Conversation
) -> tuple[list[tuple[list[str], Message | None]], int | None]:
    """(event lines, the message they are about), one section per message in the order they
    happened, events about no message (an assignment) at the top; and the newest message id
    shown. An email showing no customer message also shows the latest one, for context."""
    general: list[str] = []
    found: list[tuple[list[str], Message]] = []
    by_message: dict[int, list[str]] = {}
    for notification in notifications:
        line, message = describe(notification), notification.message
        lines = general if message is None else by_message.get(message.id)
        if lines is None:
            lines = by_message[message.id] = []
            found.append((lines, message))
        if line not in lines:
            lines.append(line)
    if not any(message.direction == "incoming" for _, message in found):
        latest = db.session.scalar(
            select(Message)
            .where(Message.conversation_id == conversation.id, Message.direction == "incoming")
            .order_by(Message.id.desc())
            .limit(1)
        )
        if latest is not None:
            found.append(([f"The latest message, from {writer(latest)}"], latest))
    shown = max((message.id for _, message in found), default=None)
    if not found:
        return [(general, None)], shown
    found[0] = (general + found[0][0], found[0][1])
    return list(found), shown


def body(
    conversation: Conversation,
    parts: list[tuple[list[str], Message | None]],
    reply_address: str | None,
    unsubscribe: str,
    events: list[str],
) -> str:
    from services.notifications.events import EVENTS

    contact = conversation.contact
    who = formataddr((one_line(contact.name), contact.email)) if contact.name else contact.email
    lines = [
        f"#{conversation.display_number} {one_line(conversation.subject) or '(no subject)'}",
        f"{one_line(who)} · {one_line(conversation.inbox.name)}",
        "",
    ]
    for events_lines, message in parts:
        lines += [RULE, *events_lines]
        if message is not None:
            lines += ["", shown_text(message)]
        lines.append("")
    lines += [
        RULE,
        f"Open the conversation: {get_settings().app_url}/conversations/{conversation.id}",
    ]
    if reply_address:
        lines += [
            "Reply to this email to answer the customer from Threadline; start your reply",
            "with #note on its own line to add a private note instead.",
        ]
    labels = ", ".join(EVENTS[event][0] for event in events if event in EVENTS)
    lines += [
        "",
        f"You get these emails for: {labels}.",
        f"Stop these emails: {unsubscribe}",
        "Choose what you hear about on your profile page in Threadline.",
    ]
    return "\n".join(lines) + "\n"


def compose(
    user: User, conversation: Conversation, notifications: list[Notification], number: int
) -> tuple[EmailMessage, int | None, str | None]:
    """The email, the newest message id it shows, and the reply address (Reply-To and
    envelope sender) or None."""
    parts, shown = sections(notifications, conversation)
    if shown is None:  # nothing to show: the reply address carries the newest message
        shown = db.session.scalar(
            select(func.max(Message.id)).where(Message.conversation_id == conversation.id)
        )
    reply_address = address_for(user.id, conversation.id, shown or 0)
    events = sorted({n.event for n in notifications})
    unsubscribe = unsubscribe_url(user.id, events)
    subject = f"[#{conversation.display_number}] {one_line(conversation.subject) or '(no subject)'}"
    message = email_to_user(
        user,
        subject,
        body(conversation, parts, reply_address, unsubscribe, events),
        message_id(conversation.id, user.id, number),
    )
    message["X-Auto-Response-Suppress"] = "All"
    if number > 1:
        first = f"<{message_id(conversation.id, user.id, 1)}>"
        message["In-Reply-To"] = first
        message["References"] = first
    message["List-Unsubscribe"] = f"<{unsubscribe}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    if reply_address:
        name = one_line(conversation.contact.name or conversation.contact.email)
        message["Reply-To"] = formataddr((f"{name} via Threadline", reply_address))
    return message, shown, reply_address
