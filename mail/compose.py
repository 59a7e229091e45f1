"""Build the MIME of an agent's reply: pure, deterministic from its inputs."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import struct
from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import Address
from email.message import MIMEPart
from email.policy import SMTP
from email.utils import format_datetime

from mail.model import Person
from mail.threading import strip_prefixes

MAX_REFERENCES = 20
# RFC 5322's hard limit: long Message-IDs stay on one line (some clients mishandle folds).
_POLICY = SMTP.clone(max_line_length=998)
_RE = re.compile(r"^\s*re\s*:\s*", re.I)
# FILETIME epoch (1601) to Unix epoch (1970), in 100 ns units.
_FILETIME_OFFSET = 116444736000000000


@dataclass
class OutgoingAttachment:
    filename: str
    content_type: str
    data: bytes


@dataclass
class OutgoingEmail:
    message_id: str  # bracketless
    sender: Person  # the inbox address and display name
    to: list[Person]
    reply_to: str
    subject: str
    date: datetime
    text: str
    html: str | None = None
    cc: list[Person] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)  # envelope only, never a header
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    thread_index: str | None = None
    attachments: list[OutgoingAttachment] = field(default_factory=list)

    @property
    def envelope_recipients(self) -> list[str]:
        seen: dict[str, None] = {}
        for address in [p.address for p in self.to + self.cc] + self.bcc:
            seen.setdefault(address.strip().lower(), None)
        return [a for a in seen if a]


def reply_subject(subject: str) -> str:
    """ "Re: <subject>", never "Re: Re: ..."."""
    subject = " ".join((subject or "").split())
    if not subject:
        return "Re: (no subject)"
    return subject if _RE.match(subject) else f"Re: {subject}"


def bounded_references(references: list[str], in_reply_to: str | None) -> list[str]:
    chain = [r for r in references if r != in_reply_to]
    if in_reply_to:
        chain.append(in_reply_to)
    if len(chain) > MAX_REFERENCES:  # keep the thread's root and the most recent ids
        chain = chain[:1] + chain[-(MAX_REFERENCES - 1) :]
    return chain


def filetime(moment: datetime) -> int:
    """A Windows FILETIME: 100-nanosecond intervals since 1601-01-01 UTC."""
    return int(moment.timestamp() * 10_000_000) + _FILETIME_OFFSET


def thread_index(conversation_token: str, started: datetime, replies: list[datetime]) -> str:
    """Outlook's Thread-Index, laid out as MS-OXOMSG 2.2.1.3 (PidTagConversationIndex) has it.

    The 22-byte header is fixed per conversation: a reserved 0x01, the conversation's start
    as the 40 high bits of its FILETIME (big-endian), and a GUID (the conversation token's
    first 16 bytes). Then one 5-byte response level per message after the first (`replies`:
    their times, in order): the DC bit and 31 bits of the time since the header (bits 18-48
    of the FILETIME difference; bits 23-53, with DC set, once that no longer fits), 4 random
    bits (derived from the token, so a rebuilt message is the same) and a 4-bit sequence
    count."""
    header_time = filetime(started) >> 24
    guid = bytes.fromhex(conversation_token[:32].ljust(32, "0"))
    blocks = [b"\x01" + header_time.to_bytes(5, "big") + guid]
    for level, moment in enumerate(replies, start=1):
        delta = max(filetime(moment) - (header_time << 24), 0)
        if delta >> 18 < 1 << 31:
            first = delta >> 18
        else:
            first = (1 << 31) | ((delta >> 23) & 0x7FFFFFFF)
        random_bits = hashlib.sha256(f"{conversation_token}:{level}".encode()).digest()[0] >> 4
        blocks.append(struct.pack(">IB", first, (random_bits << 4) | (level & 0x0F)))
    return base64.b64encode(b"".join(blocks)).decode()


def _paragraphs(text: str) -> str:
    paragraphs = text.replace("\r\n", "\n").split("\n\n")
    return "".join(
        f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs if p.strip()
    )


def text_to_html(text: str) -> str:
    return f'<!doctype html><html><body><div dir="auto">{_paragraphs(text)}</div></body></html>'


def html_with_signature(text: str, signature_html: str, after: str = "") -> str:
    """A reply's HTML part: the text's paragraphs (as text_to_html draws them) and under them
    the signature block, "-- " and the signature's (already sanitised) HTML, as mail clients
    draw the text part's signature separator; then `after` (a forward's forwarded emails,
    which go under the signature, as mail clients place them)."""
    parts = [f'<div dir="auto">{_paragraphs(text)}</div>']
    if signature_html.strip():
        parts.append(f'<div class="signature">-- <br>{signature_html}</div>')
    if after.strip():
        parts.append(f'<div dir="auto">{_paragraphs(after)}</div>')
    return "<!doctype html><html><body>" + "".join(parts) + "</body></html>"


def build_mime(out: OutgoingEmail) -> bytes:
    # A MIMEPart, not an EmailMessage: set_content/add_alternative/add_attachment make each
    # new part of the root's own class, and an EmailMessage stamps MIME-Version on every part
    # it fills. MIME-Version belongs to the top level only (RFC 2045 4), so it is set once.
    message = MIMEPart(policy=_POLICY)
    message["Message-ID"] = f"<{out.message_id}>"
    message["Date"] = format_datetime(out.date)
    message["From"] = _address(out.sender)
    message["To"] = ", ".join(_address(p) for p in out.to)
    if out.cc:
        message["Cc"] = ", ".join(_address(p) for p in out.cc)
    message["Reply-To"] = out.reply_to
    message["Subject"] = out.subject
    if out.in_reply_to:
        message["In-Reply-To"] = f"<{out.in_reply_to}>"
    references = bounded_references(out.references, out.in_reply_to)
    if references:
        message["References"] = " ".join(f"<{r}>" for r in references)
    # Thread-Topic is the subject without reply prefixes, as Outlook writes it.
    message["Thread-Topic"] = strip_prefixes(out.subject) or out.subject
    if out.thread_index:
        message["Thread-Index"] = out.thread_index
    message["MIME-Version"] = "1.0"
    message.set_content(out.text)
    message.add_alternative(out.html or text_to_html(out.text), subtype="html")
    for attachment in out.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        message.add_attachment(
            attachment.data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=attachment.filename,
        )
    return message.as_bytes()


def _address(person: Person) -> str:
    local, _, domain = person.address.partition("@")
    return str(Address(display_name=person.name or "", username=local, domain=domain))
