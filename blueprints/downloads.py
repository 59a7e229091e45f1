"""Streaming stored objects as downloads that are never sniffed and never run as a page.

Shared by attachments, the API and the inbound log's raw messages, so none of them imports
another blueprint module for it."""

from __future__ import annotations

from urllib.parse import quote

from flask import Response, stream_with_context

from extensions import get_storage

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
