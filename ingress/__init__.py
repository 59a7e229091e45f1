"""Inbound email ingresses: thin adapters from each provider's request to raw MIME bytes.

Each provider module exposes `extract(request, settings) -> list[RawEmail]` and raises
`IngressError` with the HTTP status users rely on; `receive.py` is the one shared path that
stores the bytes, records the InboundEmail and enqueues processing.
"""

from __future__ import annotations

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

    body: bytes | BinaryIO
    original_recipients: list[str] = field(default_factory=list)
