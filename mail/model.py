"""What the parser extracts from one raw email: plain dataclasses, shared by mail/ and services/."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

# Values of ParsedEmail.auto_flag: kept and shown, never auto-answered or auto-assigned.
AUTO_FLAGS = ("auto_reply", "bounce", "bulk")


# A display name with any of these (RFC 5322 "specials") is quoted, so a comma in it never
# splits it in two when the string is read back as an address list.
_SPECIALS = set('()<>[]:;@\\,."')


@dataclass
class Person:
    address: str  # lower-cased bare address
    name: str = ""  # decoded display name, "" when absent

    def formatted(self) -> str:
        """As a person reads it and as an address list holds it: `"Bounine, Alexandre"
        <a@idt.com>`; names stay as written (Unicode), quoted only where needed."""
        if not self.name:
            return self.address
        name = self.name
        if _SPECIALS.intersection(name) or name != name.strip():
            name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return f"{name} <{self.address}>"

    def as_json(self) -> dict:
        return {"name": self.name, "address": self.address}


class People(list):
    """The people of one header (From, To, Cc, Bcc, Reply-To) as stored: a list of Person,
    kept structured in the database (models/base.py PeopleType), so a name is never split
    from its address. str() is the display string, names quoted where they must be."""

    def __str__(self) -> str:
        return ", ".join(person.formatted() for person in self)

    def addresses(self) -> list[str]:
        return [person.address for person in self]

    def as_json(self) -> list[dict]:
        return [person.as_json() for person in self]


@dataclass
class ParsedAttachment:
    filename: str  # safe: no path separators, control characters or leading dots
    content_type: str  # lower-case maintype/subtype
    size: int  # decoded size in bytes
    data: bytes | None  # None when too_large, or when a large body is read by `stream`
    content_id: str | None = None  # without angle brackets
    inline: bool = False  # an inline image (referenced by cid: or disposition inline)
    too_large: bool = False
    # A large body's decoded bytes in blocks, read from the raw message (mail/streaming.py)
    # so no whole decoded copy is held; None when `data` holds them or too_large.
    stream: Callable[[], Iterator[bytes]] | None = field(default=None, repr=False, compare=False)

    @property
    def has_content(self) -> bool:
        return not self.too_large and (self.data is not None or self.stream is not None)

    def chunks(self) -> Iterator[bytes]:
        """The decoded bytes, in one piece or in blocks."""
        if self.data is not None:
            yield self.data
        elif self.stream is not None and not self.too_large:
            yield from self.stream()

    def content(self) -> bytes:
        """All the decoded bytes at once: for small parts and tests."""
        return b"".join(self.chunks())


@dataclass
class BounceReport:
    """A delivery-status notification (multipart/report) about a message we sent."""

    original_message_id: str | None  # bracketless Message-ID of the message that bounced
    recipient: str | None  # Final-Recipient / Original-Recipient address
    action: str | None  # failed | delayed | ...
    status: str | None  # e.g. 5.1.1
    diagnostic: str  # the receiving server's words, or a readable summary


@dataclass
class ParsedEmail:
    message_id: str | None  # bracketless; None when absent or unusable
    in_reply_to: list[str] = field(default_factory=list)  # bracketless Message-IDs
    references: list[str] = field(default_factory=list)  # bracketless, oldest first
    subject: str = ""  # RFC 2047-decoded, whitespace folded
    date: datetime | None = None  # timezone-aware, None when missing or unparsable
    from_: Person | None = None
    contact: Person | None = None  # Reply-To, else X-Original-Sender, else From
    recipients: list[str] = field(default_factory=list)  # every routing header, lower-cased
    to: list[Person] = field(default_factory=list)
    cc: list[Person] = field(default_factory=list)
    reply_to: list[Person] = field(default_factory=list)
    text: str = ""  # the text/plain body (or text derived from the HTML when there is none)
    html: str | None = None  # the text/html body, NOT sanitised
    attachments: list[ParsedAttachment] = field(default_factory=list)
    auto_flag: str | None = None  # one of AUTO_FLAGS
    auto_reason: str | None = None  # which header or sender made it auto, for agents
    list_header: str | None = None  # "List-Id: <...>" when it came through a mailing list
    bounce: BounceReport | None = None
    defects: list[str] = field(default_factory=list)  # what could not be read, for the log
