"""The API's JSON shapes: what a conversation, message, contact, user and attachment look
like to a client, shared by every endpoint that returns one."""

from __future__ import annotations

from flask import url_for
from sqlalchemy import select

from extensions import db, get_settings
from models import Attachment, Contact, Conversation, Message, User
from services.conversation_list import ConversationRow
from services.labels import conversation_labels
from services.workspace import thread_messages


def iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def contact_json(contact: Contact) -> dict:
    return {"id": contact.id, "email": contact.email, "name": contact.name}


def user_json(user: User | None) -> dict | None:
    return {"id": user.id, "name": user.name} if user is not None else None


def conversation_json(row: ConversationRow, labels: dict | None = None) -> dict:
    """`labels` maps conversation ids to labels (services.labels.labels_for) for a page."""
    conv = row.conversation
    found = labels.get(conv.id, []) if labels is not None else conversation_labels(conv.id)
    return {
        "id": conv.id,
        "display_number": conv.display_number,
        "subject": conv.subject,
        "status": conv.status,
        "snoozed_until": iso(conv.snoozed_until),
        "inbox_id": conv.inbox_id,
        "contact": contact_json(row.contact),
        "assignee": user_json(row.assignee),
        "labels": [label.display_name for label in found],
        "last_activity_at": iso(conv.last_activity_at),
        "created_at": iso(conv.created_at),
        "merged_into_id": conv.merged_into_id,
    }


def conversation_detail(conv: Conversation) -> dict:
    contact = db.session.get(Contact, conv.contact_id)
    assignee = db.session.get(User, conv.assignee_id) if conv.assignee_id else None
    messages = thread_messages(conv.id)
    senders = load_senders(messages)
    return {
        **conversation_json(ConversationRow(conv, contact, assignee)),
        "messages": [message_json(message, senders) for message in messages],
    }


def load_senders(messages) -> dict:
    """Users and contacts named by these messages, loaded in two queries."""
    user_ids = {m.sender_user_id for m in messages if m.sender_user_id}
    contact_ids = {m.contact_id for m in messages if m.contact_id}
    users = db.session.scalars(select(User).where(User.id.in_(user_ids))) if user_ids else []
    contacts = (
        db.session.scalars(select(Contact).where(Contact.id.in_(contact_ids)))
        if contact_ids
        else []
    )
    return {
        **{("user", u.id): {"type": "user", **user_json(u)} for u in users},
        **{("contact", c.id): {"type": "contact", **contact_json(c)} for c in contacts},
    }


def _sender(message: Message) -> dict | None:
    """{"name", "address"}; an automation's note has a name (its rule) and no address."""
    if not (message.from_address or message.from_name):
        return None
    return {"name": message.from_name or "", "address": message.from_address or None}


def message_json(message: Message, senders: dict) -> dict:
    """`senders` comes from load_senders() for the messages being shown."""
    if message.direction == "incoming" and message.contact_id:
        sender = senders.get(("contact", message.contact_id))
    else:
        sender = senders.get(("user", message.sender_user_id))
    return {
        "id": message.id,
        "direction": message.direction,
        "private": message.direction == "note",
        "sender": sender,
        "subject": message.subject,
        "from": _sender(message),
        "to": message.to_addresses.as_json(),
        "cc": message.cc_addresses.as_json(),
        "bcc": message.bcc_addresses.as_json(),
        "reply_to": message.reply_to.as_json(),
        "sender_verdict": message.sender_verdict,
        "text": message.text_body,
        "quoted_text": message.quoted_text,
        "html": message.html_body,
        "quoted_html": message.quoted_html,
        "delivery_status": message.delivery_status,
        "delivery_error": message.delivery_error,
        "sent_at": iso(message.sent_at),
        "smtp_response": message.smtp_response,
        "sent_mime_url": get_settings().app_url + url_for("api.sent_mime", message_pk=message.id)
        if message.mime_storage_key
        else None,
        "threaded_by": message.threaded_by,
        "auto_flag": message.auto_flag,
        "created_at": iso(message.created_at),
        "attachments": [attachment_json(a) for a in message.attachments],
    }


def attachment_json(attachment: Attachment) -> dict:
    stored = attachment.storage_key is not None
    base = get_settings().app_url
    return {
        "id": attachment.id,
        "filename": attachment.filename,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "inline": attachment.inline,
        # The web URL needs a signed-in browser; download_url takes the bearer token.
        "url": base + url_for("attachments.download", attachment_id=attachment.id)
        if stored
        else None,
        "download_url": base + url_for("api.attachment", attachment_id=attachment.id)
        if stored
        else None,
        "skipped_reason": attachment.skipped_reason,
    }
