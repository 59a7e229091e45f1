"""Auto-replies, bulk mail and bounces: stored and shown, never auto-answered or auto-assigned.

Pure functions over a parsed message; header values are read raw and never raise.
"""

from __future__ import annotations

import re
from email.message import Message

from mail.addresses import (
    clean_text,
    content_type,
    decode_bytes,
    header_values,
    message_ids,
    parse_addresses,
)
from mail.model import BounceReport

_BOUNCE_SENDERS = ("mailer-daemon", "postmaster")
_NEGATIVE = ("no", "false", "0")
_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_HEADER_MESSAGE_ID = re.compile(r"^message-id:[ \t]*(?:\r?\n[ \t]+)?(\S[^\r\n]*)", re.I | re.M)
_SMTP_CODE = re.compile(r"\b[45]\d\d\b|\b[45]\.\d{1,3}\.\d{1,3}\b")
# Where qmail, Exim, Sendmail and Exchange start quoting the returned message.
_COPY_MARKER = re.compile(
    r"^(?:-+ ?(?:Below this line|This is a copy|Original message|Undelivered message)"
    r"|-+ ?The header of the original message|Return-Path:|Received:)",
    re.I | re.M,
)
_STATUS_CLASSES = {"2": "delivered", "4": "temporary failure", "5": "permanent failure"}
MAX_DEPTH = 30


def _first(message: Message, name: str) -> str | None:
    values = header_values(message, name)
    return values[0] if values else None


def _parts(message: Message, depth: int = 0):
    """The message and its MIME parts, not descending into attached messages."""
    yield message
    if depth >= MAX_DEPTH or content_type(message).split("/")[0] == "message":
        return
    if message.is_multipart():  # before get_payload(): on a leaf it can raise
        for part in message.get_payload():
            if isinstance(part, Message):
                yield from _parts(part, depth + 1)


def _delivery_status(message: Message) -> Message | None:
    for part in _parts(message):
        if content_type(part) == "message/delivery-status":
            return part
    return None


def is_delivery_report(message: Message) -> bool:
    if content_type(message) == "multipart/report":
        report_type = str(message.get_param("report-type", "") or "").lower()
        if report_type == "delivery-status":
            return True
    return _delivery_status(message) is not None


def _bounce_sender(message: Message) -> str | None:
    for _name, address in parse_addresses(header_values(message, "From")):
        if address.split("@", 1)[0] in _BOUNCE_SENDERS:
            return address
    return None


def classify_auto(message: Message) -> tuple[str | None, str | None]:
    """(auto_flag, reason): bounce, auto_reply or bulk, and the header or sender that says so.

    X-Auto-Response-Suppress is deliberately ignored: Outlook sets it on ordinary mail too.
    """
    if is_delivery_report(message):
        return "bounce", "multipart/report delivery-status"
    daemon = _bounce_sender(message)
    if daemon:
        return "bounce", f"sender {daemon}"
    submitted = _first(message, "Auto-Submitted")
    if submitted is not None and submitted.split(";")[0].strip().lower() != "no":
        return "auto_reply", f"Auto-Submitted: {submitted}"[:200]
    for name in ("X-Autoreply", "X-Autorespond"):
        value = _first(message, name)
        if value is not None and value.strip().lower() not in _NEGATIVE:
            return "auto_reply", f"{name}: {value}"[:200]
    precedence = (_first(message, "Precedence") or "").strip().lower()
    if precedence in ("auto_reply", "auto-reply"):
        return "auto_reply", f"Precedence: {precedence}"
    if precedence in ("bulk", "junk", "list"):
        return "bulk", f"Precedence: {precedence}"
    return_path = _first(message, "Return-Path")
    if return_path is not None and not return_path.strip("<> \t"):
        return "bounce", "empty Return-Path"
    return None, None


def _status_blocks(part: Message) -> list[dict[str, str]]:
    if part.is_multipart():
        blocks = [{k.lower(): v for k, v in _raw_pairs(p)} for p in part.get_payload()]
    else:
        text = decode_bytes(part.get_payload(decode=True) or b"", "utf-8")
        blocks = [_fields(chunk) for chunk in re.split(r"\r?\n\s*\r?\n", text)]
    return [b for b in blocks if b]


def _raw_pairs(part: Message) -> list[tuple[str, str]]:
    if not isinstance(part, Message):
        return []
    return [(str(k), " ".join(str(v).split())) for k, v in part.raw_items()]


def _fields(chunk: str) -> dict[str, str]:
    unfolded = re.sub(r"\r?\n[ \t]+", " ", chunk)
    pairs = (line.split(":", 1) for line in unfolded.splitlines() if ":" in line)
    return {k.strip().lower(): " ".join(v.split()) for k, v in pairs}


def _after_type(value: str | None) -> str | None:
    """`rfc822; a@b` → `a@b`; `smtp; 550 ...` → `550 ...`."""
    if not value:
        return None
    return value.split(";", 1)[-1].strip() or None


def _part_text(part: Message) -> str:
    if part.is_multipart():
        return ""
    return decode_bytes(part.get_payload(decode=True) or b"", part.get_content_charset())


def _original_message_id(message: Message) -> str | None:
    """From the returned message, else its returned headers, else a `Message-ID:` line quoted
    in the text (qmail, Exim), else the report's own X-Original-Message-ID / In-Reply-To /
    References."""
    parts = list(_parts(message))
    for part in parts:
        forwarded = content_type(part) in ("message/rfc822", "message/global")
        if forwarded and part.is_multipart() and part.get_payload():
            ids = message_ids(" ".join(header_values(part.get_payload()[0], "Message-ID")))
            if ids:
                return ids[0]
    for kind in ("text/rfc822-headers", "text/plain"):
        for part in (p for p in parts if content_type(p) == kind):
            for match in _HEADER_MESSAGE_ID.finditer(_part_text(part)):
                ids = message_ids(match.group(1))
                if ids:
                    return ids[0]
    for name in ("X-Original-Message-ID", "In-Reply-To"):
        ids = message_ids(" ".join(header_values(message, name)))
        if ids:
            return ids[0]
    references = message_ids(" ".join(header_values(message, "References")))
    return references[-1] if references else None


def _human_text(message: Message) -> str:
    """The bounce's own words: its first text/plain part, cut before the returned copy."""
    for part in _parts(message):
        if content_type(part) == "text/plain" and not part.is_multipart():
            return _COPY_MARKER.split(_part_text(part).replace("\r\n", "\n"), 1)[0]
    return ""


def _summary(message: Message, report: bool, action: str | None, status: str | None) -> str:
    """A readable reason when the report gave no Diagnostic-Code: from the status, or the
    paragraph of a non-standard bounce that carries an SMTP code."""
    if report:
        summary = _STATUS_CLASSES.get((status or "5")[0], "delivery failed")
        return f"{action or 'failed'}: {summary}" + (f" ({status})" if status else "")
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", _human_text(message))]
    paragraphs = [p for p in paragraphs if p]
    with_code = [p for p in paragraphs if _SMTP_CODE.search(p)]
    return ((with_code or paragraphs or ["delivery failed"])[0])[:500]


def parse_bounce(message: Message) -> BounceReport | None:
    """What a delivery-status report (or a MAILER-DAEMON message) says about which of our
    messages failed, for whom and why; None when it is neither."""
    status_part = _delivery_status(message)
    if status_part is None and not is_delivery_report(message) and not _bounce_sender(message):
        return None
    blocks = _status_blocks(status_part) if status_part is not None else []
    recipients = [b for b in blocks if "final-recipient" in b or "original-recipient" in b]
    failed = [b for b in recipients if b.get("action", "").lower() == "failed"]
    fields = (failed or recipients or [{}])[0]
    original = _original_message_id(message)
    if not fields and original is None:
        return None
    recipient = _after_type(fields.get("final-recipient") or fields.get("original-recipient"))
    recipient = recipient or _first(message, "X-Failed-Recipients")
    if not recipient and status_part is None:
        quoted = re.search(r"^\s*<([^<>\s]+@[^<>\s]+)>:?\s*$", _human_text(message), re.M)
        recipient = quoted.group(1) if quoted else None
    recipient = recipient.strip("<> ").lower() if recipient else None
    action = (fields.get("action") or "").lower() or None
    status_text = fields.get("status", "") if status_part is not None else _human_text(message)
    status_match = _STATUS.search(status_text)
    status = status_match.group(1) if status_match else (fields.get("status") or None)
    diagnostic = _after_type(fields.get("diagnostic-code"))
    diagnostic = diagnostic or _summary(message, status_part is not None, action, status)
    # The server's words are stored and shown: no NUL, no undecodable byte left in them.
    return BounceReport(original, recipient, action, status, clean_text(diagnostic)[:2000])
