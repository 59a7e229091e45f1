"""An incoming message's content: attachments into storage, text/HTML split and sanitised."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from extensions import db, get_storage
from mail.model import ParsedEmail
from mail.quoting import split_html, split_text
from mail.sanitize import html_to_text, sanitize_html
from models import Attachment, InboundEmail, Message
from services.sizes import human_size

ATTACHMENT_URL = "/attachments/{id}"


@dataclass
class Content:
    text: str
    quoted_text: str
    html: str | None
    quoted_html: str | None
    remote_images: int


def attachment_key(inbound: InboundEmail, index: int) -> str:
    """Derived from the raw message: a retried job rewrites the same objects, never orphans."""
    return f"attachments/{inbound.checksum}/{index}"


def store_attachments(message: Message, parsed: ParsedEmail, inbound: InboundEmail) -> dict:
    """Store every attachment part; return {content-id: authenticated URL} for cid: images."""
    storage = get_storage()
    rows = []
    for index, part in enumerate(parsed.attachments):
        row = Attachment(
            filename=part.filename,
            content_type=part.content_type,
            size=part.size,
            content_id=part.content_id,
            inline=part.inline,
        )
        if not part.has_content:
            row.skipped_reason = f"too large ({human_size(part.size)}) — raw email kept"
        else:
            key = attachment_key(inbound, index)
            # A large part is decoded from the raw message block by block as it is written.
            storage.put(key, _BlockReader(part.chunks()), part.size, part.content_type)
            row.storage_key = key
        message.attachments.append(row)
        rows.append(row)
    db.session.flush()  # ids for the URLs
    return {
        row.content_id.lower(): ATTACHMENT_URL.format(id=row.id)
        for row in rows
        if row.content_id and row.storage_key
    }


class _BlockReader:
    """A readable stream over byte blocks, for storage.put: at most one block and what the
    reader asked for are held at a time."""

    def __init__(self, blocks: Iterable[bytes]):
        self._blocks = iter(blocks)
        self._buffer = bytearray()

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            block = next(self._blocks, None)
            if block is None:
                break
            self._buffer += block
        size = len(self._buffer) if size < 0 else size
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out


def forget_attachments(parsed: ParsedEmail, inbound: InboundEmail) -> None:
    """Remove objects written for a message that turned out to be a duplicate."""
    storage = get_storage()
    for index, _part in enumerate(parsed.attachments):
        storage.delete(attachment_key(inbound, index))


def build_content(parsed: ParsedEmail, cid_urls: dict[str, str]) -> Content:
    text = parsed.text or (html_to_text(parsed.html) if parsed.html else "")
    new_text, quoted_text = split_text(text)
    html = quoted_html = None
    remote = 0
    if parsed.html:
        new_html, old_html = split_html(parsed.html)
        cleaned = sanitize_html(new_html, cid_urls)
        html, remote = cleaned.html, cleaned.remote_images
        if old_html:
            cleaned_old = sanitize_html(old_html, cid_urls)
            quoted_html, remote = cleaned_old.html, remote + cleaned_old.remote_images
    return Content(new_text, quoted_text, html, quoted_html, remote)
