"""Safe attachment file names: decoded, no path, no control characters, bounded length."""

from __future__ import annotations

import mimetypes
import re
import unicodedata

from mail.addresses import clean_text, decode_words

MAX_LENGTH = 200
# The stdlib table only, never the host's /etc/mime.types: the same name on every machine.
_TYPES = mimetypes.MimeTypes(filenames=())
_PREFERRED_EXTENSIONS = {
    "image/jpeg": ".jpg",
    "text/plain": ".txt",
    "message/rfc822": ".eml",
    "message/global": ".eml",
    "application/octet-stream": ".bin",
    "text/calendar": ".ics",
    "text/csv": ".csv",
    "text/vcard": ".vcf",
    "text/x-vcard": ".vcf",
}
# Bidirectional overrides make "invoice‮fdp.exe" display as "invoiceexe.pdf".
_BIDI = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_RESERVED = re.compile(r'[<>:"|?*]')


def extension_for(content_type: str) -> str:
    content_type = (content_type or "").lower()
    if content_type in _PREFERRED_EXTENSIONS:
        return _PREFERRED_EXTENSIONS[content_type]
    try:
        return _TYPES.guess_extension(content_type) or ".bin"
    except Exception:  # noqa: BLE001 - a type mimetypes cannot read gets the generic extension
        return ".bin"


def safe_filename(name: str | None, content_type: str, number: int) -> str:
    """A name safe to store and to offer for download; `attachment-<number>.<ext>` when the
    part had no usable name. RFC 2231 is decoded by the email package; RFC 2047 words
    (which Outlook and Gmail put in filename parameters) are decoded here."""
    name = (name or "").replace("\x00", "")
    text = decode_words(name) if "=?" in name else clean_text(name)
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = _BIDI.sub("", text)
    text = " ".join(text.split())  # tabs and line breaks become single spaces
    text = _RESERVED.sub("_", "".join(c for c in text if unicodedata.category(c) != "Cc"))
    text = text.lstrip(". ").rstrip(". ")
    if not text or set(text) <= {"_", "."}:
        return f"attachment-{number}{extension_for(content_type)}"
    if len(text) > MAX_LENGTH:
        stem, dot, extension = text.rpartition(".")
        if dot and stem and 0 < len(extension) <= 16:
            text = stem[: MAX_LENGTH - len(extension) - 1].rstrip(". ") + "." + extension
        else:
            text = text[:MAX_LENGTH].rstrip(". ")
    return text
