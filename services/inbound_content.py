"""An incoming message's content: attachments into storage, text/HTML split and sanitised."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from extensions import get_storage
from mail.model import ParsedEmail
from mail.quoting import split_html, split_text
from mail.sanitize import html_to_text, sanitize_html
from models import Attachment, InboundEmail
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


def put_attachments(parsed: ParsedEmail, inbound: InboundEmail) -> list[Attachment]:
    """Write every attachment part to storage; their rows, for the message (not added yet).
    Needs no database: the delivery runs it before its first write, so the write lock SQLite
    holds from then until the commit never waits for storage."""
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
        rows.append(row)
    return rows


def cid_urls(rows: list[Attachment]) -> dict[str, str]:
    """{content-id: authenticated URL} of the stored parts, for cid: images (ids flushed)."""
    return {
        row.content_id.lower(): ATTACHMENT_URL.format(id=row.id)
        for row in rows
        if row.content_id and row.storage_key
    }


def refers_to_parts(parsed: ParsedEmail, rows: list[Attachment]) -> bool:
    """The HTML may show a stored part inline (cid:), so its content needs their ids."""
    return bool(parsed.html) and any(row.content_id and row.storage_key for row in rows)


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
