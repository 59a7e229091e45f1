"""Attachment downloads: members of the inbox only, never sniffed, never run as a page."""

from __future__ import annotations

from flask import Blueprint, Response, abort
from flask_login import current_user, login_required

from blueprints.downloads import (
    INLINE_TYPES,
    content_disposition,
    safe_download_headers,
    stream_object,
)
from extensions import db
from models import Attachment, Message
from services.access import can_view_inbox

bp = Blueprint("attachments", __name__)


@bp.route("/messages/<int:message_pk>/sent.eml")
@login_required
def sent_mime(message_pk: int):
    """The exact bytes of a reply as it was handed to the SMTP server."""
    message = db.session.get(Message, message_pk)
    if message is None or not can_view_inbox(current_user, message.inbox_id):
        abort(404, "No such message.")
    if not message.mime_storage_key:
        abort(404, "This message was not sent by email.")
    response = Response(stream_object(message.mime_storage_key), mimetype="message/rfc822")
    return safe_download_headers(
        response, content_disposition("attachment", f"message-{message.id}.eml")
    )


@bp.route("/attachments/<int:attachment_id>")
@login_required
def download(attachment_id: int):
    attachment = db.session.get(Attachment, attachment_id)
    if attachment is None:
        abort(404, "No such attachment.")
    if not can_view_inbox(current_user, attachment.message.inbox_id):
        abort(404, "No such attachment.")  # 404, not 403: do not confirm it exists
    if attachment.storage_key is None:
        reason = attachment.skipped_reason or "This attachment was not stored."
        abort(410, reason)
    inline = attachment.content_type in INLINE_TYPES
    response = Response(
        stream_object(attachment.storage_key),
        mimetype=attachment.content_type if inline else "application/octet-stream",
    )
    kind = "inline" if inline else "attachment"
    return safe_download_headers(
        response, content_disposition(kind, attachment.filename), attachment.size
    )
