"""Raw email bytes to a ParsedEmail: headers decoded, bodies chosen, attachments listed.

`parse_email` never raises: every step is guarded and what could not be read is named in
`ParsedEmail.defects`, so the worker always has something to store and a reason to log.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.generator import BytesGenerator
from email.message import Message
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from io import BytesIO

from mail import streaming, tnef
from mail.addresses import (
    clean_text,
    content_disposition,
    content_type,
    decode_bytes,
    decode_words,
    fold,
    header_values,
    message_ids,
    parse_addresses,
    recipient_addresses,
)
from mail.filenames import safe_filename
from mail.loops import classify_auto, parse_bounce
from mail.model import ParsedAttachment, ParsedEmail, Person
from mail.streaming import StreamedBody

CONTACT_HEADERS = ("Reply-To", "X-Original-Sender", "From")
# Mailing-list mail (RFC 2919, RFC 2369): never auto-acknowledged.
LIST_HEADERS = ("List-Id", "List-Unsubscribe")
MAX_DEPTH = 30
_EML_POLICY = policy.default.clone(refold_source="none")
_FORWARD_TYPES = ("message/rfc822", "message/global")
# Unnamed parts of these types are body alternatives or report blocks, not files to keep;
# any other unnamed part (text/calendar, application/pdf, image/*) is an attachment.
_NOT_FILES = {"text/plain", "text/html", "text/enriched", "text/richtext", "text/watch-html",
              "text/x-watch-html", "text/rfc822-headers"}  # fmt: skip


def parse_email(raw: bytes, max_attachment_bytes: int) -> ParsedEmail:
    parsed = ParsedEmail(message_id=None)
    message, streamed = _parse_message(raw, parsed)
    if message is None:
        return parsed
    for step in (_read_headers, _read_content, _read_auto):
        try:
            step(message, parsed, max_attachment_bytes, streamed)
        except Exception as exc:  # noqa: BLE001 - one unreadable step must not lose the others
            _defect(parsed, f"{step.__name__.strip('_')}: {type(exc).__name__}: {exc}")
    return parsed


def _defect(parsed: ParsedEmail, text: str) -> None:
    text = clean_text(text)[:300]
    if text not in parsed.defects and len(parsed.defects) < 50:
        parsed.defects.append(text)


# {id(part): its body, still in the raw bytes} for the large bodies mail/streaming.py cut out
Streamed = dict[int, StreamedBody]


def _parse_message(raw: bytes, parsed: ParsedEmail) -> tuple[Message | None, Streamed]:
    try:
        data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else bytes(raw)
    except Exception as exc:  # noqa: BLE001
        _defect(parsed, f"not bytes: {type(exc).__name__}")
        return None, {}
    cut = _parse_skeleton(data)
    if cut is not None:
        return cut
    # compat32 is the tolerant fallback; headers alone (the body kept as text) the last one,
    # e.g. for MIME nested deeper than the parser's recursion allows.
    attempts = ((policy.default, False), (policy.compat32, False), (policy.default, True))
    for parse_policy, headers_only in attempts:
        try:
            message = BytesParser(policy=parse_policy).parsebytes(data, headersonly=headers_only)
            return message, {}
        except Exception as exc:  # noqa: BLE001
            how = "headers only" if headers_only else type(parse_policy).__name__
            _defect(parsed, f"parse ({how}): {exc!r}"[:200])
    return None, {}


def _parse_skeleton(data: bytes) -> tuple[Message, Streamed] | None:
    """The message parsed with its large bodies left in the raw; None to parse it whole."""
    cuts = streaming.plan_cuts(data, streaming.STREAM_FROM_BYTES)
    if not cuts:
        return None
    try:
        skeleton, markers = streaming.skeleton(data, cuts)
        message = BytesParser(policy=policy.default).parsebytes(skeleton)
    except Exception:  # noqa: BLE001 - the whole raw through the usual attempts instead
        return None
    streamed = streaming.attach(message, data, cuts, markers)
    return None if streamed is None else (message, streamed)


def _first(message: Message, name: str) -> str:
    values = header_values(message, name)
    return values[0] if values else ""


def _people(message: Message, name: str) -> list[Person]:
    return [Person(a, n) for n, a in parse_addresses(header_values(message, name))]


def _read_headers(message: Message, parsed: ParsedEmail, _limit: int, _streamed: Streamed):
    ids = message_ids(_first(message, "Message-ID"))
    parsed.message_id = ids[0] if ids else None
    parsed.in_reply_to = message_ids(" ".join(header_values(message, "In-Reply-To")), 10)
    parsed.references = message_ids(" ".join(header_values(message, "References")))
    parsed.subject = fold(decode_words(_first(message, "Subject")))
    parsed.date = _date(_first(message, "Date"))
    senders = _people(message, "From")
    parsed.from_ = senders[0] if senders else None
    for name in CONTACT_HEADERS:
        people = _people(message, name)
        if people:
            parsed.contact = people[0]
            break
    if parsed.contact and not parsed.contact.name:  # Google Groups names the sender here
        address = parsed.contact.address
        same = [p for p in _people(message, "X-Original-From") if p.address == address]
        parsed.contact.name = same[0].name if same else ""
    parsed.recipients = recipient_addresses(message)
    parsed.to = _people(message, "To")
    parsed.cc = _people(message, "Cc")
    parsed.reply_to = _people(message, "Reply-To")
    for name in LIST_HEADERS:
        value = _first(message, name)
        if value:
            parsed.list_header = clean_text(f"{name}: {value}")[:200]
            break


def _date(value: str) -> datetime | None:
    try:
        date = parsedate_to_datetime(value) if value.strip() else None
    except Exception:  # noqa: BLE001 - an unparsable Date is simply unknown
        return None
    if date is not None and date.tzinfo is None:
        date = date.replace(tzinfo=UTC)  # "-0000": the zone is unknown, UTC is the convention
    return date


def _children(part: Message) -> list[Message]:
    # is_multipart() first: get_payload() on a leaf can raise for odd charset parameters.
    if not part.is_multipart():
        return []
    return [p for p in part.get_payload() if isinstance(p, Message)]


def _is_attachment(part: Message, named_ok: bool) -> bool:
    return content_disposition(part) == "attachment" or bool(not named_ok and _filename(part))


def _bodies(part: Message, streamed: Streamed, depth: int = 0, named_ok: bool = True):
    """(text/plain parts, text/html parts) that make up the body: the last non-blank
    alternative of each kind, the root of multipart/related, every inline part of
    multipart/mixed (Apple Mail splits a body around inline images). A name makes a part of
    multipart/mixed an attachment; the whole message, an alternative or a related root stays
    a body. A blank part is no body at all, so it never displaces a richer alternative and a
    blank text/plain beside HTML leaves the text to be derived from the HTML."""
    kind = content_type(part)
    maintype, subtype = kind.split("/", 1)
    if depth > MAX_DEPTH or maintype == "message" or _is_attachment(part, named_ok):
        return [], []
    children = _children(part)
    if not part.is_multipart() or not children:
        body = kind in ("text/plain", "text/html") or maintype == "multipart"
        if not body or _is_blank(part, streamed.get(id(part))):
            return [], []
        # a multipart without a boundary is read as text, not lost
        return ([], [part]) if kind == "text/html" else ([part], [])
    if subtype == "related":
        start = message_ids(str(part.get_param("start", "") or ""))
        roots = [c for c in children if start and message_ids(_first(c, "Content-ID")) == start]
        return _bodies((roots or children)[0], streamed, depth + 1)
    plain: list[Message] = []
    html: list[Message] = []
    for child in children:
        child_plain, child_html = _bodies(child, streamed, depth + 1, subtype == "alternative")
        if subtype == "alternative":
            plain, html = child_plain or plain, child_html or html
        else:
            plain, html = plain + child_plain, html + child_html
    return plain, html


def _text(part: Message, parsed: ParsedEmail) -> str:
    try:
        text = _decoded(part)
    except Exception as exc:  # noqa: BLE001 - the raw email still holds the bytes
        _defect(parsed, f"body {content_type(part)}: {type(exc).__name__}: {exc}")
        return ""
    if content_type(part) == "text/plain" and _param(part, "format") == "flowed":
        text = _unflow(text, delete_space=_param(part, "delsp") == "yes")
    return text


def _decoded(part: Message) -> str:
    """A leaf's body as text, line ends normalised; raises when the payload is unreadable."""
    payload = b"" if part.is_multipart() else part.get_payload(decode=True) or b""
    return decode_bytes(payload, _charset(part)).replace("\r\n", "\n")


def _charset(part: Message) -> str | None:
    try:
        return part.get_content_charset()
    except Exception:  # noqa: BLE001 - an unreadable charset parameter means "unknown"
        return None


def _is_blank(part: Message, body: StreamedBody | None) -> bool:
    """Nothing but whitespace (no-break spaces included) once decoded. A streamed body is
    read from the raw only until its first words; one whose encoding is not streamed, or an
    unreadable payload, is not known to be blank: it stays a body and `_text` reads it."""
    try:
        if body is None:
            return not _decoded(part).strip()
        charset = _charset(part)
        words = (decode_bytes(chunk, charset).strip() for chunk in body.chunks())
        return not any(words) and body.decoded_size() is not None  # it checks the encoding
    except Exception:  # noqa: BLE001
        return False


def _param(part: Message, name: str) -> str:
    try:
        return str(part.get_param(name, "") or "").strip().lower()
    except Exception:  # noqa: BLE001 - an unreadable parameter is an absent one
        return ""


def _unflow(text: str, delete_space: bool) -> str:
    """RFC 3676 format=flowed: soft line breaks (a trailing space) joined again, per quote
    depth, so quoted text and paragraphs read as the sender wrote them."""
    lines: list[tuple[int, str]] = []
    flowing = False
    for raw in text.split("\n"):
        depth = len(raw) - len(raw.lstrip(">"))
        line = raw[depth:]
        line = line[1:] if line.startswith(" ") else line  # space-stuffing
        if flowing and lines and lines[-1][0] == depth:
            lines[-1] = (depth, lines[-1][1] + line)
        else:
            lines.append((depth, line))
        flowing = line.endswith(" ") and line != "-- "
        if flowing and delete_space:
            lines[-1] = (depth, lines[-1][1][:-1])
    return "\n".join((">" * depth + " " if depth else "") + line for depth, line in lines)


def _leaves(part: Message, depth: int = 0):
    """Every part that is not a container, attached messages included but not entered."""
    children = _children(part)
    if content_type(part).split("/")[0] == "message" or not children or depth > MAX_DEPTH:
        yield part
        return
    for child in children:
        yield from _leaves(child, depth + 1)


def _read_content(message: Message, parsed: ParsedEmail, limit: int, streamed: Streamed):
    try:
        plain, html = _bodies(message, streamed)
    except Exception as exc:  # noqa: BLE001 - attachments are still worth listing
        _defect(parsed, f"body structure: {type(exc).__name__}: {exc}")
        plain, html = [], []
    for part in plain + html:  # the text is wanted whole: back into the parsed part
        if id(part) in streamed:
            streamed.pop(id(part)).restore()
    parsed.text = "\n".join(_text(p, parsed) for p in plain)
    parsed.html = "\n".join(_text(p, parsed) for p in html) if html else None
    chosen = {id(p) for p in plain + html}
    for part in _leaves(message):
        for defect in getattr(part, "defects", [])[:5]:
            _defect(parsed, f"{content_type(part)}: {type(defect).__name__}")
        if id(part) in chosen:
            continue
        try:
            number, body = len(parsed.attachments) + 1, streamed.get(id(part))
            attachment = _attachment(part, number, limit, parsed.html, body)
        except Exception as exc:  # noqa: BLE001 - the raw email keeps what we could not read
            _defect(parsed, f"attachment {content_type(part)}: {type(exc).__name__}: {exc}")
            continue
        if attachment is not None:
            parsed.attachments.append(attachment)
    for problem in tnef.expand(parsed):  # winmail.dat: the files and body Outlook put inside
        _defect(parsed, problem)


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename() or None
    except Exception:  # noqa: BLE001 - a broken parameter is treated as no name
        return None
    return _raw_filename(part) or name if name and "\ufffd" in name else name


def _raw_filename(part: Message) -> str | None:
    """The name read again from the headers as they arrived: policy.default has turned raw
    8-bit bytes in it into U+FFFD, `header_values` decodes them."""
    holder = Message()  # compat32: parameters parsed from plain text, nothing replaced
    for name in ("Content-Disposition", "Content-Type"):
        values = header_values(part, name)
        if values:
            holder[name] = values[0]
    try:
        return holder.get_filename() or None
    except Exception:  # noqa: BLE001 - the parser's reading stands
        return None


def _attachment(
    part: Message, number: int, limit: int, html: str | None, body: StreamedBody | None = None
):
    kind = content_type(part)
    maintype = kind.split("/", 1)[0]
    disposition = content_disposition(part)
    name = _filename(part)
    forwarded = kind in _FORWARD_TYPES
    is_file = maintype not in ("multipart", "message") and kind not in _NOT_FILES
    if not (name or disposition == "attachment" or forwarded or is_file):
        return None  # an unchosen alternative, a delivery-status block: not a file
    content_ids = message_ids(_first(part, "Content-ID"), 1)
    content_id = content_ids[0] if content_ids else None
    if forwarded:
        inner = _children(part)
        data = _message_bytes(inner[0]) if inner else b""
        subject = fold(decode_words(_first(inner[0], "Subject"))) if inner else ""
        safe_subject = subject.replace("/", "-").replace("\\", "-")
        name = name or (f"{safe_subject}.eml" if subject else "forwarded-message.eml")
        size = len(data)
    else:
        size = body.decoded_size() if body is not None else None
        if size is None:  # a small body, or one whose decoding is left to the parser
            if body is not None:
                body.restore()
            data = part.get_payload(decode=True) or b""
            size = len(data)
        else:
            data = None
    referenced = bool(content_id and html and f"cid:{content_id}" in html)
    inline = maintype == "image" and (
        disposition == "inline" or referenced or (content_id is not None and disposition is None)
    )
    too_large = size > limit
    return ParsedAttachment(
        filename=safe_filename(name, kind, number),
        content_type=kind,
        size=size,
        data=None if too_large else data,
        content_id=content_id,
        inline=inline,
        too_large=too_large,
        stream=body.chunks if data is None and body is not None and not too_large else None,
    )


def _message_bytes(inner: Message) -> bytes:
    """An attached message as .eml bytes, its headers as they arrived where possible."""
    for generator_policy in (_EML_POLICY, policy.compat32):
        try:
            buffer = BytesIO()
            BytesGenerator(buffer, mangle_from_=False, policy=generator_policy).flatten(inner)
            return buffer.getvalue()
        except Exception:  # noqa: BLE001 - the tolerant generator next; else the raw email holds it
            continue
    return b""


def _read_auto(message: Message, parsed: ParsedEmail, _limit: int, streamed: Streamed):
    parsed.auto_flag, parsed.auto_reason = classify_auto(message)  # headers and types only
    if parsed.auto_flag == "bounce":
        for body in streamed.values():  # a bounce's report and text parts are read whole
            body.restore()
        parsed.bounce = parse_bounce(message)
