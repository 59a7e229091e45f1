"""Inbound email ingresses: thin adapters from each provider's request to raw MIME bytes.

Each provider module exposes `extract(request, settings) -> list[RawEmail]` and raises
`IngressError` with the HTTP status users rely on; `receive.py` is the one shared path that
stores the bytes, records the InboundEmail and enqueues processing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import BinaryIO


class IngressError(Exception):
    """A request refused with a specific status (401, 415, 422 ...) and a reason."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass(frozen=True)
class Connection:
    """The SMTP connection the relaying MTA received a message on, as the relay command
    passes it (relay ingress only): enough to check SPF here. Validated by ingress/relay.py.
    mail_from "" is the null sender (<>, a delivery report); None = not given."""

    client_address: str | None = None
    helo: str | None = None
    mail_from: str | None = None

    def columns(self) -> dict[str, str | None]:
        """The InboundEmail columns that record it."""
        return {
            "client_address": self.client_address,
            "helo": self.helo,
            "mail_from": self.mail_from,
        }


@dataclass
class RawEmail:
    """Raw MIME as received, plus envelope recipients to prepend as X-Original-To lines, and
    the relaying MTA's connection when the relay ingress was told it."""

    body: bytes | BinaryIO | Iterable[bytes]
    original_recipients: list[str] = field(default_factory=list)
    connection: Connection | None = None

    def __post_init__(self) -> None:
        # Each recipient becomes a header line: a CR or LF would inject headers of its own.
        for address in self.original_recipients:
            if any(ch in address for ch in "\r\n\0"):
                raise IngressError(422, f"recipient {address!r} contains a line break")
