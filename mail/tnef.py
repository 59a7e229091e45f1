"""Outlook's winmail.dat (application/ms-tnef) opened into the files and body it carries.

Outlook wraps attachments and the formatted body in TNEF when it believes the recipient
reads mail in Exchange; every other client shows one opaque winmail.dat. tnefparse reads
the format, but it trusts the counts a file states (a crafted one loops for hours), copies
the rest of its input once per attribute and parses embedded messages recursively. So the
attributes are split here first: only the ones used, each attachment decoded on its own,
the stated counts checked against the bytes that are really there.
"""

from __future__ import annotations

import mimetypes
import struct
from dataclasses import dataclass, field

from tnefparse import TNEF
from tnefparse import properties as mapi
from tnefparse.mapi import IMESSAGE_SIG

from mail.addresses import clean_text, decode_bytes
from mail.filenames import safe_filename
from mail.model import ParsedAttachment, ParsedEmail

TNEF_TYPES = ("application/ms-tnef", "application/vnd.ms-tnef")
MAX_FILES = 100  # per email; beyond it the files stay inside the winmail.dat
# A real winmail.dat has a handful of attributes per file; more is a crafted one.
MAX_ATTRIBUTES = 10 * MAX_FILES + 100
# The stdlib table only, as in mail/filenames.py: the same type on every machine.
_TYPES = mimetypes.MimeTypes(filenames=())
_HEADER = struct.Struct("<IH")  # signature, key
_ATTRIBUTE = struct.Struct("<BII")  # level, id (type << 16 | name), length; then data, checksum
_U32 = struct.Struct("<I")
# tnefparse reads an attribute only when more than 12 bytes follow its start: a short last
# one (a one-byte file, a short body) is read only with 12 bytes after it.
_PADDING = bytes(12)
# In this order: the code page reads the rest, and MAPI's body is preferred to attBody.
_MESSAGE_KEPT = (TNEF.ATTOEMCODEPAGE, TNEF.ATTBODY, TNEF.ATTMAPIPROPS)
_ATTACHMENT_KEPT = (TNEF.ATTATTACHTITLE, TNEF.ATTATTACHDATA, TNEF.ATTATTACHMENT)
# MAPI property types by the size of one value; the rest are counted, length-prefixed values.
_FIXED_SIZES = {0x0002: 2, 0x000B: 2, 0x0003: 4, 0x0004: 4, 0x000A: 4, 0x0005: 8, 0x0006: 8,
                0x0007: 8, 0x0014: 8, 0x0040: 8, 0x0048: 16}  # fmt: skip
_COUNTED = (0x0000, 0x000D, 0x001E, 0x001F, 0x0102)
_MULTI_VALUE = 0x1000
_NAMED = 0x8000


@dataclass
class Contents:
    """What one TNEF part carries; `left_out` names what was not taken, for the log."""

    files: list[tuple[str, bytes]] = field(default_factory=list)
    text: str = ""
    html: str | None = None
    left_out: list[str] = field(default_factory=list)


def is_tnef(attachment: ParsedAttachment) -> bool:
    return attachment.content_type in TNEF_TYPES or attachment.filename.lower() == "winmail.dat"


def expand(parsed: ParsedEmail) -> list[str]:
    """Each TNEF attachment followed by the files it carries, and its body when the email
    has none; returns the problems met, for ParsedEmail.defects. The TNEF part itself stays
    listed, and one that cannot be read changes nothing else."""
    attachments: list[ParsedAttachment] = []
    problems: list[str] = []
    added = 0
    for attachment in parsed.attachments:
        attachments.append(attachment)
        if not is_tnef(attachment):
            continue
        if not attachment.has_content:
            problems.append(f"tnef {attachment.filename}: too large to open")
            continue
        try:
            contents = read(attachment.content(), MAX_FILES - added)
        except Exception as exc:  # noqa: BLE001 - the part is still there to download
            problems.append(f"tnef {attachment.filename}: {type(exc).__name__}: {exc}")
            continue
        for name, data in contents.files:
            attachments.append(_attachment(name, data, len(attachments) + 1))
        added += len(contents.files)
        problems += [f"tnef {attachment.filename}: left out {what}" for what in contents.left_out]
        has_body = parsed.text.strip() or parsed.html
        if not has_body and (contents.text or contents.html):
            parsed.text, parsed.html = contents.text, contents.html
    parsed.attachments = attachments
    return problems


def read(data: bytes, room: int = MAX_FILES) -> Contents:
    """The files (at most `room`) and body of one TNEF stream; raises when it is not one."""
    header, message, groups = _split(data, room)
    contents = Contents()
    if len(groups) > room:
        contents.left_out.append(f"the files after the first {room}")
    if message.get(TNEF.ATTMAPIPROPS) and not _mapi_ok(message[TNEF.ATTMAPIPROPS][9:-2]):
        contents.left_out.append("message properties with impossible counts")
        del message[TNEF.ATTMAPIPROPS]
    kept = b"".join(message[name] for name in _MESSAGE_KEPT if name in message)
    tnef = TNEF(header + kept + _PADDING)
    contents.text = _text(tnef.body, tnef.codepage)
    contents.html = _text(tnef.htmlbody, tnef.codepage) or None
    codepage = message.get(TNEF.ATTOEMCODEPAGE, b"")
    for group in groups[:room]:
        try:
            contents.files.append(_file(header + codepage, group, tnef.codepage))
        except Exception as exc:  # noqa: BLE001 - the other files are still worth having
            contents.left_out.append(f"a file: {type(exc).__name__}: {exc}")
    return contents


def _split(data: bytes, room: int) -> tuple[bytes, dict[int, bytes], list[dict[int, bytes]]]:
    """The header, the message attributes used and, per attachment, the attributes used:
    each as its raw bytes, checksum included. Stops after `room` + 1 attachments."""
    signature, _key = _HEADER.unpack_from(data)
    if signature != TNEF.TNEF_SIGNATURE:
        raise ValueError(f"not TNEF: signature {signature:#010x}")
    view = memoryview(data)
    offset, count = _HEADER.size, 0
    message: dict[int, bytes] = {}
    groups: list[dict[int, bytes]] = []
    while offset + _ATTRIBUTE.size + 2 <= len(data) and len(groups) <= room:
        count += 1
        if count > MAX_ATTRIBUTES:
            raise ValueError(f"more than {MAX_ATTRIBUTES} attributes")
        level, ident, length = _ATTRIBUTE.unpack_from(data, offset)
        end = offset + _ATTRIBUTE.size + length + 2
        raw = bytes(view[offset:end])
        if end > len(data):  # a truncated winmail.dat: as tnefparse, the bytes that arrived
            raw = _ATTRIBUTE.pack(level, ident, len(raw) - _ATTRIBUTE.size - 2) + raw[9:]
        name = ident & 0xFFFF
        if name == TNEF.ATTATTACHRENDDATA:  # what starts an attachment
            groups.append({name: raw})
        elif level == TNEF.LVL_ATTACHMENT and groups and name in _ATTACHMENT_KEPT:
            groups[-1][name] = raw
        elif level == TNEF.LVL_MESSAGE and name in _MESSAGE_KEPT:
            message[name] = raw
        offset = end
    return _HEADER.pack(TNEF.TNEF_SIGNATURE, 0), message, groups


def _file(header: bytes, group: dict[int, bytes], codepage: str | None) -> tuple[str, bytes]:
    properties = group.get(TNEF.ATTATTACHMENT)
    if properties and not _mapi_ok(properties[9:-2]):
        raise ValueError("an embedded message or impossible counts")
    (attachment,) = TNEF(header + b"".join(group.values()) + _PADDING).attachments
    long_names = [a.data for a in attachment.mapi_attrs if a.name == mapi.MAPI_ATTACH_LONG_FILENAME]
    title = group.get(TNEF.ATTATTACHTITLE, b"")[9:-2]  # tnefparse reads it as UTF-8, not OEM
    name = _text(long_names[0] if long_names else title, codepage)
    return name, bytes(attachment.data)


def _text(value: str | bytes | None, codepage: str | None) -> str:
    if isinstance(value, bytes):  # C strings: the terminating NUL is not text
        value = decode_bytes(value.rstrip(b"\x00"), codepage)
    return clean_text((value or "").rstrip("\x00").replace("\r\n", "\n"))


def _attachment(name: str, data: bytes, number: int) -> ParsedAttachment:
    """Within the size limit by construction: a part of a winmail.dat that was within it."""
    kind = (_TYPES.guess_type(name, strict=False)[0] or "application/octet-stream").lower()
    return ParsedAttachment(safe_filename(name, kind, number), kind, len(data), data)


def _mapi_ok(data: bytes) -> bool:
    """Whether tnefparse reads this MAPI property list in time linear in its size, and
    without recursing: each stated count fits in the bytes left (tnefparse loops over a
    count as written, past the end), and no value is an embedded message. Walks the
    properties as tnefparse's decode_mapi does; where that would stop, so does this."""
    try:
        count, offset = _U32.unpack_from(data)[0], 4
        if count > len(data) // 4:
            return False
        for _ in range(count):
            if offset >= len(data):
                break
            offset = _property_end(data, offset)
            if offset is None:
                return False
    except struct.error:
        pass  # tnefparse's read fails at the same place and stops there
    return True


def _property_end(data: bytes, offset: int) -> int | None:
    """Where the property at `offset` ends; None when it must not reach tnefparse."""
    kind, name = struct.unpack_from("<HH", data, offset)
    offset += 4
    if name >= _NAMED:  # a GUID, then a number or a padded name
        by_number = _U32.unpack_from(data, offset + 16)[0] == 0
        offset += 24 if by_number else 24 + _padded(_U32.unpack_from(data, offset + 20)[0])
    values = None
    if kind & _MULTI_VALUE:
        kind ^= _MULTI_VALUE
        values, offset = _U32.unpack_from(data, offset)[0], offset + 4
        if values > len(data) - offset:
            return None
    if name == mapi.MAPI_ATTACH_DATA_OBJ and values not in (None, 1):
        return None
    repeat = values or 1  # as tnefparse counts: a multi-value count of 0 reads one value
    if kind in _FIXED_SIZES:
        short = kind in (0x0002, 0x000B) and repeat % 2  # two-byte values end on four
        return offset + _FIXED_SIZES[kind] * repeat + (2 if short else 0)
    if kind not in _COUNTED:
        return len(data)  # tnefparse stops at an unknown type
    for _ in range(repeat):
        offset = _values_end(data, offset, name, stated=not values)
        if offset is None:
            return None
    return offset


def _values_end(data: bytes, offset: int, name: int, stated: bool) -> int | None:
    """Where length-prefixed values end (a stated count of them first, outside a
    multi-value property); None at an embedded message."""
    count = 1
    if stated:
        count, offset = _U32.unpack_from(data, offset)[0], offset + 4
    for _ in range(count):  # each reads four bytes or fails: bounded by the length
        length, offset = _U32.unpack_from(data, offset)[0], offset + 4
        embedded = data[offset : offset + len(IMESSAGE_SIG)] == IMESSAGE_SIG
        if name == mapi.MAPI_ATTACH_DATA_OBJ and (count != 1 or embedded):
            return None
        offset += _padded(length)
    return offset


def _padded(length: int) -> int:
    return length + -length % 4
