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
    storage = get_storage()
    key = attachment.storage_key

    def body():
        with storage.open(key) as fh:
            while chunk := fh.read(CHUNK):
                yield chunk

    response = Response(
        stream_with_context(body()),
        mimetype=attachment.content_type if inline else "application/octet-stream",
    )
    response.headers["Content-Disposition"] = content_disposition(
        "inline" if inline else "attachment", attachment.filename
    )
    response.headers["Content-Length"] = str(attachment.size)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response
