"""From, To and Subject of a header block as one line each, for lists and logs.

Read raw and decoded by mail/addresses.py, so a broken header degrades to replacement
characters (or blank) instead of raising, and the text holds no NUL or lone surrogate a
database would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32

from mail.addresses import decode_words, fold, header_values

MAX_LENGTH = 500


@dataclass
class Summary:
    from_: str = ""
    to: str = ""
    subject: str = ""

    def columns(self) -> dict[str, str]:
        """As InboundEmail stores it."""
        return {"from_address": self.from_, "to_addresses": self.to, "subject": self.subject}


def summary_of(headers: Message) -> Summary:
    """The first From, To and Subject of parsed headers, encoded words decoded, whitespace
    collapsed, each cut to MAX_LENGTH; a header that cannot be read is blank."""
    return Summary(_line(headers, "From"), _line(headers, "To"), _line(headers, "Subject"))


def header_block(raw: bytes) -> bytes:
    """A raw message's header block (all of it when no blank line ends one): a header is
    found without reading a 30 MB body."""
    end = raw.find(b"\r\n\r\n")
    end = raw.find(b"\n\n") if end < 0 else end
    return raw if end < 0 else raw[:end]


def summary_of_bytes(head: bytes) -> Summary:
    """The same from a raw message's first bytes (its header block, or all of it)."""
    try:
        headers = BytesHeaderParser(policy=compat32).parsebytes(header_block(head))
    except Exception:  # noqa: BLE001 - a header block too broken to parse shows blank
        return Summary()
    return summary_of(headers)


def _line(headers: Message, name: str) -> str:
    try:
        values = header_values(headers, name)
        return fold(decode_words(values[0]))[:MAX_LENGTH] if values else ""
    except Exception:  # noqa: BLE001 - one unreadable header must not hide the others
        return ""
