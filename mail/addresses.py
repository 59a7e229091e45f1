"""Address parsing and normalisation for routing: pure functions over header values."""

from __future__ import annotations

import re
from email.message import EmailMessage
from email.utils import getaddresses

# Every header a recipient can hide in: forwarding rules and MTAs add the last four.
RECIPIENT_HEADERS = (
    "To",
    "Cc",
    "Bcc",
    "X-Original-To",
    "X-Forwarded-To",
    "X-Forwarded-For",
    "Delivered-To",
)
_TOKEN = re.compile(r"^reply\+([0-9a-f]{32,64})$")


def _header_values(message: EmailMessage, name: str) -> list[str]:
    values = []
    for value in message.get_all(name, []) or []:
        try:
            values.append(str(value))
        except Exception:  # noqa: BLE001 - a header the parser cannot render is skipped
            continue
    return values


def addresses_in(message: EmailMessage, names: tuple[str, ...]) -> list[str]:
    """Lower-cased bare addresses found in the headers, in order, without duplicates."""
    found: dict[str, None] = {}
    for name in names:
        raw_values = _header_values(message, name)
        # X-Forwarded-For may list "a@x b@y" separated by spaces rather than commas.
        pairs = getaddresses([v.replace(" ", ",") if "<" not in v else v for v in raw_values])
        for _display, address in pairs:
            address = address.strip().strip("<>").lower()
            if "@" in address and " " not in address:
                found[address] = None
    return list(found)


def recipient_addresses(message: EmailMessage) -> list[str]:
    return addresses_in(message, RECIPIENT_HEADERS)


def normalise(address: str) -> str:
    """Comparison form: lower-case, `+tag` removed from the local part."""
    local, _, domain = address.strip().lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}" if local else address.strip().lower()


def reply_token(address: str, inbound_domain: str) -> str | None:
    """The conversation token of reply+<token>@<inbound domain>, else None."""
    if not inbound_domain:
        return None
    local, _, domain = address.lower().rpartition("@")
    match = _TOKEN.match(local)
    return match.group(1) if match and domain == inbound_domain.lower() else None


def sender(message: EmailMessage) -> tuple[str, str] | None:
    """(address, display name) of who the customer is: Reply-To, X-Original-Sender, From."""
    for name in ("Reply-To", "X-Original-Sender", "From"):
        for value in _header_values(message, name):
            for display, address in getaddresses([value]):
                address = address.strip().lower()
                if "@" in address:
                    return address, display.strip() or address.split("@", 1)[0]
    return None
