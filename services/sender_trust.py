"""The sender verdict of an incoming message, with this server's settings: DKIM checked
through DNS_RESOLVER (the system's resolver when empty), SPF and DMARC as the servers named
in TRUSTED_AUTHSERV_IDS wrote them in Authentication-Results, or checked here through the
same resolver when the relay passed the client's address (mail/sender_trust.py, mail/spf.py).

Checked before the delivery's first write: its DNS lookups (at most a few, bounded by the
resolver's lifetime) must not hold SQLite's write lock."""

from __future__ import annotations

from extensions import get_settings
from mail.model import ParsedEmail
from mail.sender_trust import Resolver, check_sender
from mail.spf import Envelope
from models import InboundEmail

# One caching resolver per DNS_RESOLVER value, for the life of the process (a worker).
_RESOLVERS: dict[tuple[str, int] | None, Resolver] = {}


def resolver(nameserver: tuple[str, int] | None) -> Resolver:
    found = _RESOLVERS.get(nameserver)
    if found is None:
        found = _RESOLVERS[nameserver] = Resolver(nameserver, cache=True)
    return found


def forget_dns_answers() -> None:
    """Drop the cached answers (tests, whose DNS stand-in changes its records)."""
    _RESOLVERS.clear()


def verdict_for(
    raw: bytes, parsed: ParsedEmail, inbound: InboundEmail | None = None
) -> dict | None:
    """The verdict as the message stores it (JSON); None without a From address. With the
    client address the relay recorded on `inbound`, SPF is checked here when no trusted
    server reported it."""
    if parsed.from_ is None:
        return None
    settings = get_settings()
    envelope = None
    if inbound is not None and inbound.client_address:
        envelope = Envelope(inbound.client_address, inbound.helo, inbound.mail_from)
    verdict = check_sender(
        raw,
        parsed.from_.address,
        trusted_authserv_ids=settings.trusted_authserv_ids,
        resolver=resolver(settings.dns_nameserver),
        envelope=envelope,
    )
    return verdict.to_dict()
