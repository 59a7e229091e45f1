"""Message endpoints: a reply or private note on a conversation, the two decisions on a
reply whose delivery failed or is unknown, a sent reply's exact email and an attachment's
bytes."""

from __future__ import annotations

from flask import Response, url_for

from blueprints.api.blueprint import ApiError, api_user, bp, json_response
from blueprints.api.inputs import address_list, find, find_conversation, json_body
from blueprints.api.serialise import load_senders, message_json
from blueprints.downloads import (
    INLINE_TYPES,
    content_disposition,
    safe_download_headers,
    stream_object,
)
from models import Attachment, Message
from services.access import can_view_inbox
from services.replies import ReplyError, create_reply, mark_sent, retry_delivery

REPLY_FIELDS = ("content", "private", "to", "cc", "bcc", "from")


@bp.post("/conversations/<int:conversation_id>/messages")
def reply(conversation_id: int):
    conv = find_conversation(conversation_id)
    data = json_body(REPLY_FIELDS)
    content = data.get("content")
    if content is None:
        raise ApiError(422, "content is required")
    if not isinstance(content, str):
        raise ApiError(422, "content must be a string")
    private = data.get("private", False)
    if not isinstance(private, bool):
        raise ApiError(422, "private must be true or false")
    to = address_list(data, "to", absent_is_none=True)  # None: the conversation's contact
    if private and to:
        raise ApiError(422, "a private note is never emailed, so it cannot have To")
    cc, bcc = address_list(data, "cc"), address_list(data, "bcc")
    sender = data.get("from")  # None: the alias the customer wrote to, else the primary
    if sender is not None and not isinstance(sender, str):
        raise ApiError(422, "from must be one of the inbox's addresses, as a string")
    try:
        message = create_reply(
            conv, api_user(), content, private=private, to=to, cc=cc, bcc=bcc, from_address=sender
        )
    except ReplyError as exc:
        raise ApiError(422, str(exc)) from None
    senders = load_senders([message])
    response = json_response(message_json(message, senders), 201)
    response.headers["Location"] = url_for("api.conversation", conversation_id=conv.id)
    return response


@bp.post("/messages/<int:message_pk>/retry")
def retry(message_pk: int):
    """Send a failed reply, or one of unknown fate, again."""
    return _decide(message_pk, retry_delivery)


@bp.post("/messages/<int:message_pk>/mark-sent")
def mark_as_sent(message_pk: int):
    """A reply of unknown fate reached the customer: never send it again."""
    return _decide(message_pk, lambda message: mark_sent(message, api_user()))


def _decide(message_pk: int, decision):
    message = find(Message, message_pk)
    if message is None or not can_view_inbox(api_user(), message.inbox_id):
        raise ApiError(404, f"message {message_pk}: no such message")
    try:
        decision(message)
    except ReplyError as exc:
        raise ApiError(422, str(exc)) from None
    return json_response(message_json(message, load_senders([message])))


@bp.get("/messages/<int:message_pk>/sent.eml")
def sent_mime(message_pk: int):
    """The exact bytes of a reply as it was handed to the SMTP server: the web's sent.eml
    (blueprints/attachments.py), for the bearer token instead of a signed-in browser."""
    message = find(Message, message_pk)
    if message is None or not can_view_inbox(api_user(), message.inbox_id):
        raise ApiError(404, f"message {message_pk}: no such message")
    if not message.mime_storage_key:
        raise ApiError(404, f"message {message_pk} was not sent by email: it has no sent MIME")
    response = Response(stream_object(message.mime_storage_key), mimetype="message/rfc822")
    disposition = content_disposition("attachment", f"message-{message.id}.eml")
    safe_download_headers(response, disposition)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/attachments/<int:attachment_id>")
def attachment(attachment_id: int):
    """The bytes of an attachment, with the same safe headers as the web download."""
    found = find(Attachment, attachment_id)
    message = found.message if found is not None else None
    if message is None or not can_view_inbox(api_user(), message.inbox_id):
        raise ApiError(404, f"attachment {attachment_id}: no such attachment")
    if found.storage_key is None:
        raise ApiError(410, found.skipped_reason or "this attachment was not stored")
    inline = found.content_type in INLINE_TYPES
    response = Response(
        stream_object(found.storage_key),
        mimetype=found.content_type if inline else "application/octet-stream",
    )
    disposition = content_disposition("attachment", found.filename)
    safe_download_headers(response, disposition, found.size)
    response.headers["Cache-Control"] = "private, no-store"
    return response
