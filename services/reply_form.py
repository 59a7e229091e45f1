"""What the workspace composer adds around `create_reply`: uploads and collision checks."""

from __future__ import annotations

from sqlalchemy import select
from werkzeug.datastructures import FileStorage

from extensions import db, get_settings
from mail.compose import OutgoingAttachment
from mail.filenames import safe_filename
from models import Message
from services.replies import ReplyError
from services.sizes import human_size

COLLISION_DIRECTIONS = ("incoming", "outgoing", "note")


def uploaded_attachments(files: list[FileStorage]) -> list[OutgoingAttachment]:
    """The composer's uploads, each within ATTACHMENT_MAX_BYTES, with a safe name. A file
    input left empty still sends one nameless, empty part: that one is skipped."""
    limit = get_settings().attachment_max_bytes
    out = []
    for number, upload in enumerate(files, start=1):
        if not upload.filename:
            continue
        data = upload.stream.read(limit + 1)
        content_type = (upload.mimetype or "").strip().lower() or "application/octet-stream"
        name = safe_filename(upload.filename, content_type, number)
        if len(data) > limit:
            raise ReplyError(
                f"“{name}” is larger than the {human_size(limit)} limit for attachments; "
                "send it another way or make it smaller"
            )
        out.append(OutgoingAttachment(name, content_type, data))
    return out


def collisions(conversation_id: int, seen: str) -> list[Message]:
    """Messages, replies and notes newer than the composer's `seen` fingerprint (the newest
    non-activity message id when the form was rendered). A form without one (API, old tab)
    is not checked."""
    seen = (seen or "").strip()
    if not seen.isdigit():
        return []
    return list(
        db.session.scalars(
            select(Message)
            .where(
                Message.conversation_id == conversation_id,
                Message.id > int(seen),
                Message.direction.in_(COLLISION_DIRECTIONS),
            )
            .order_by(Message.id)
        )
    )
