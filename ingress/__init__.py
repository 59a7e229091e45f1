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


@dataclass
class RawEmail:
    """Raw MIME as received, plus envelope recipients to prepend as X-Original-To lines."""

    body: bytes | BinaryIO | Iterable[bytes]
    original_recipients: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Each recipient becomes a header line: a CR or LF would inject headers of its own.
        for address in self.original_recipients:
            if any(ch in address for ch in "\r\n\0"):
                raise IngressError(422, f"recipient {address!r} contains a line break")
