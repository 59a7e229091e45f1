"""Attachment downloads: members of the inbox only, never sniffed, never run as a page."""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, Response, abort, stream_with_context
from flask_login import current_user, login_required

from extensions import db, get_storage
from models import Attachment, Conversation, Message
from services.access import can_view_inbox

bp = Blueprint("attachments", __name__)

# Shown inline (in the thread's HTML); anything else, SVG included, is a download.
INLINE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
CHUNK = 256 * 1024


def content_disposition(kind: str, filename: str) -> str:
    """RFC 6266: an ASCII fallback plus the exact UTF-8 name."""
    fallback = filename.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def stream_object(key: str):
    storage = get_storage()

    def body():
        with storage.open(key) as fh:
            while chunk := fh.read(CHUNK):
                yield chunk

    return stream_with_context(body())


def safe_download_headers(
    response: Response, disposition: str, size: int | None = None
) -> Response:
    response.headers["Content-Disposition"] = disposition
    if size is not None:
        response.headers["Content-Length"] = str(size)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@bp.route("/messages/<int:message_id>/sent.eml")
@login_required
def sent_mime(message_id: int):
    """The exact bytes of a reply as it was handed to the SMTP server."""
    message = db.session.get(Message, message_id)
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
    message = db.session.get(Message, attachment.message_id)
    conversation = db.session.get(Conversation, message.conversation_id)
    if not can_view_inbox(current_user, conversation.inbox_id):
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
