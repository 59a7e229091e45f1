"""The signed address an agent answers a notification at: agent+<payload>.<signature>@ the
inbound domain (MAILER_INBOUND_EMAIL_DOMAIN).

The payload names the agent, the conversation, the newest message the notification showed
and the day it was made (base 36, "-" between them); the signature is an HMAC-SHA256 of it
under a key derived from SECRET_KEY for this purpose only, cut to 80 bits and written in
lower-case base 32. Everything is lower case, as mail systems may lower-case a local part,
and the local part stays within 64 characters (RFC 5321). An address is taken for
VALID_DAYS after its day; a forged or mangled one is refused with the reason.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from extensions import get_settings

PREFIX = "agent+"
VALID_DAYS = 30
MAX_LOCAL_PART = 64  # RFC 5321
_PURPOSE = b"threadline: agent reply-by-email addresses"
_SIGNATURE_BYTES = 10  # 80 bits: 16 base-32 characters
_EPOCH = date(1970, 1, 1)
_LOCAL_PART = re.compile(r"agent\+([0-9a-z]{1,13}(?:-[0-9a-z]{1,13}){3})\.([a-z2-7]{16})")


class BadAddress(ValueError):
    """An agent reply address that must not be honoured; str() says why, for the log."""


class ForgedAddress(BadAddress):
    pass


class ExpiredAddress(BadAddress):
    pass


@dataclass(frozen=True)
class AgentReply:
    user_id: int
    conversation_id: int
    last_message_id: int  # the newest message of the conversation the notification showed


def address_for(user_id: int, conversation_id: int, last_message_id: int) -> str | None:
    """The notification's Reply-To for this agent and conversation; None when no inbound
    domain is configured (mail to it could not reach Threadline)."""
    settings = get_settings()
    reply = AgentReply(user_id, conversation_id, last_message_id)
    return make_address(reply, settings.secret_key, settings.inbound_domain)


def read(address: str) -> AgentReply | None:
    """What an agent reply address says; None when `address` is not one (another local
    part, another domain). ForgedAddress or ExpiredAddress when it must be refused."""
    settings = get_settings()
    return read_address(address, settings.secret_key, settings.inbound_domain)


def make_address(
    reply: AgentReply, secret: str, domain: str, *, on: date | None = None
) -> str | None:
    if not domain:
        return None
    day = ((on or _today()) - _EPOCH).days
    numbers = (reply.user_id, reply.conversation_id, reply.last_message_id, day)
    payload = "-".join(_base36(n) for n in numbers)
    local = f"{PREFIX}{payload}.{_signature(secret, payload)}"
    if len(local) > MAX_LOCAL_PART:  # ids beyond 36**11 (about 10**17): none in practice
        raise ValueError(f"ids too large for an agent reply address: {numbers}")
    return f"{local}@{domain.lower()}"


def read_address(
    address: str, secret: str, domain: str, *, on: date | None = None
) -> AgentReply | None:
    local, _, at = address.strip().lower().rpartition("@")
    if not domain or at != domain.lower() or not local.startswith(PREFIX):
        return None
    match = _LOCAL_PART.fullmatch(local)
    if match is None:
        raise ForgedAddress(f"forged agent reply address {address}: it is not one Threadline makes")
    payload, signature = match.groups()
    if not hmac.compare_digest(signature, _signature(secret, payload)):
        raise ForgedAddress(
            f"forged agent reply address {address}: its signature does not match "
            "(not made by this Threadline, or SECRET_KEY changed since)"
        )
    user_id, conversation_id, last_message_id, day = (int(n, 36) for n in payload.split("-"))
    made = _EPOCH + timedelta(days=day)
    if (on or _today()) - made > timedelta(days=VALID_DAYS):
        raise ExpiredAddress(
            f"expired agent reply address: its notification was sent on {made.isoformat()}, "
            f"and answers by email are taken for {VALID_DAYS} days"
        )
    return AgentReply(user_id, conversation_id, last_message_id)


def _signature(secret: str, payload: str) -> str:
    key = hmac.new(secret.encode(), _PURPOSE, hashlib.sha256).digest()
    digest = hmac.new(key, payload.encode(), hashlib.sha256).digest()[:_SIGNATURE_BYTES]
    return base64.b32encode(digest).decode().lower()


def _base36(number: int) -> str:
    if number < 0:
        raise ValueError(f"an id is never negative: {number}")
    digits = ""
    while True:
        number, rest = divmod(number, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[rest] + digits
        if not number:
            return digits


def _today() -> date:
    return datetime.now(UTC).date()
