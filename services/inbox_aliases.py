"""An inbox's aliases (send-as addresses): more addresses that are the same inbox.

Mail to an alias is routed to its inbox (services/routing.py), a reply goes out from the
address the customer wrote to (`reply_from`), and an alias is verified once a test email sent
to it has come back in through it (`send_test`, then `note_arrival` from the delivery). One
address belongs to one inbox: as its support address or as one alias, never both.

This module imports no sending code at its top: services/replies.py and the delivery use it,
and the test email's sending path (services/inbox_test_mail.py) imports services/replies.py.
"""

from __future__ import annotations

import re
from datetime import datetime

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select

from extensions import db, get_settings
from mail.addresses import normalise
from mail.model import ParsedEmail
from models import Conversation, Inbox, InboxAddress, Message, utcnow
from services.conversations import latest_email

# inbox_test_mail.message_id_for writes "threadline-test.<token>@<domain>"; a provider that
# rewrites Message-IDs keeps the subject, which carries the token too.
TEST_MESSAGE_ID = re.compile(r"^threadline-test\.\d+\.[0-9a-f]+@", re.I)
TEST_SUBJECT = "Threadline alias test"


class AliasError(ValueError):
    """The address cannot be an alias of this inbox; the message says what to fix."""


def addresses_of(inbox: Inbox) -> list[str]:
    """The addresses a reply may go out from: the primary first, then each alias."""
    return [inbox.support_address.lower(), *(a.address for a in inbox.aliases)]


def inbox_ids_for(addresses: set[str]) -> set[int]:
    """The inboxes having one of these (normalised) addresses as an alias."""
    if not addresses:
        return set()
    rows = db.session.execute(select(InboxAddress.inbox_id, InboxAddress.address))
    return {inbox_id for inbox_id, address in rows if normalise(address) in addresses}


def alias_of(address: str) -> InboxAddress | None:
    return db.session.scalar(select(InboxAddress).where(InboxAddress.address == address))


def owner(address: str, except_inbox_id: int | None = None) -> tuple[Inbox, str] | None:
    """Which inbox (other than `except_inbox_id`) uses `address`, and as what: ("support
    address" or "alias"); None when it is free."""
    found = db.session.scalar(
        select(Inbox).where(
            func.lower(Inbox.support_address) == address, Inbox.id != except_inbox_id
        )
    )
    if found is not None:
        return found, "support address"
    alias = alias_of(address)
    if alias is not None and alias.inbox_id != except_inbox_id:
        return alias.inbox, "alias"
    return None


def clean_address(inbox: Inbox, raw: str) -> str:
    """The lower-cased address, or AliasError naming what to fix: not an address, the
    inbound domain's (Threadline's own), this inbox's already, or another inbox's."""
    raw = (raw or "").strip()
    if not raw:
        raise AliasError("Enter the address customers also write to, e.g. sales@example.com.")
    try:
        address = validate_email(raw, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise AliasError(f"Enter an email address such as sales@example.com: {exc}") from None
    domain = (get_settings().inbound_domain or "").lower()
    if domain and address.endswith("@" + domain):
        raise AliasError(
            f"Addresses at {domain} are Threadline's own (forwarding and conversation "
            "addresses); add the address customers write to instead."
        )
    if address in addresses_of(inbox):
        raise AliasError(f"{address} is already an address of this inbox.")
    taken = owner(address, except_inbox_id=inbox.id)
    if taken is not None:
        other, role = taken
        raise AliasError(
            f"{address} is already the {role} of the inbox “{other.name}”. Each address "
            "belongs to one inbox: remove it there first, or choose another address."
        )
    return address


def add(inbox: Inbox, raw: str) -> InboxAddress:
    alias = InboxAddress(inbox_id=inbox.id, address=clean_address(inbox, raw))
    db.session.add(alias)
    db.session.commit()
    return alias


def find(inbox: Inbox, alias_id: int) -> InboxAddress | None:
    return next((a for a in inbox.aliases if a.id == alias_id), None)


def remove(alias: InboxAddress) -> None:
    """Mail to it is no longer routed here; replies already sent from it keep their From."""
    db.session.delete(alias)
    db.session.commit()


# --- replies ------------------------------------------------------------------------------


def sending_address(inbox: Inbox, chosen: str) -> str | None:
    """`chosen` as stored on the reply when it is one of the inbox's addresses ("" for the
    primary, whose From needs nothing stored), else None (refused by the caller)."""
    wanted = (chosen or "").strip().lower()
    if wanted == inbox.support_address.lower():
        return ""
    return wanted if wanted in addresses_of(inbox) else None


def reply_from(conversation: Conversation, latest: Message | None = None) -> str:
    """The alias the customer's latest email was written to (its To, then its Cc), or ""
    (the primary address). `latest`: that email when the caller has it."""
    aliases = {normalise(a.address): a.address for a in conversation.inbox.aliases}
    if not aliases:
        return ""
    if latest is None:
        latest = latest_email(conversation.id)
    if latest is None:
        return ""
    for person in [*latest.to_addresses, *latest.cc_addresses]:
        if normalise(person.address) in aliases:
            return aliases[normalise(person.address)]
    return ""


# --- verification -------------------------------------------------------------------------


def send_test(inbox: Inbox, alias: InboxAddress, admin_email: str) -> str:
    """A test email To the alias through the inbox's outbound path (the wizard's, reused;
    Reply-To the admin); records when it was sent. The token; TestMailError when it could
    not be sent."""
    from services.inbox_test_mail import send_test_email  # see the module docstring

    token = send_test_email(inbox, admin_email, to=alias.address, subject=TEST_SUBJECT)
    alias.test_sent_at = utcnow()
    db.session.commit()
    return token


def is_test_email(parsed: ParsedEmail) -> bool:
    return bool(TEST_MESSAGE_ID.match(parsed.message_id or "")) or parsed.subject.startswith(
        TEST_SUBJECT + " "
    )


def note_arrival(inbox: Inbox, parsed: ParsedEmail) -> None:
    """The delivery's hook: a test email that came in through one of the inbox's aliases (the
    alias among its recipients) verifies that alias, in the delivery's transaction."""
    if not is_test_email(parsed) or not inbox.aliases:  # the aliases are read for a test only
        return
    recipients = {normalise(r) for r in parsed.recipients}
    for alias in inbox.aliases:
        if alias.test_sent_at is not None and normalise(alias.address) in recipients:
            alias.verified_at = utcnow()


def status(alias: InboxAddress) -> tuple[str, datetime | None]:
    """("verified", when) | ("waiting", sent when) | ("unverified", None), for the list. A
    test sent after the last verification is waiting."""
    if alias.verified_at is not None and (
        alias.test_sent_at is None or alias.verified_at >= alias.test_sent_at
    ):
        return "verified", alias.verified_at
    if alias.test_sent_at is not None:
        return "waiting", alias.test_sent_at
    return "unverified", None
