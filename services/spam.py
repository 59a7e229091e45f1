"""Spam: what keeps a message out of the open queue, and the agents' say on it.

A new conversation whose first email is spam (the inbox's block list, else the upstream
filter's headers: mail/spam_headers.py) gets the status "spam": the Spam view lists it, and
it is never auto-assigned, notified, answered or run through the rules
(services/inbound_delivery.py asks `on_arrival`). Agents mark a conversation as spam, block
its sender (which also marks it) or say "Not spam" (back to open, the sender unblocked).
Each of these writes an activity line naming the reason, which the thread's banner shows
(`reason_shown`). Mail from a spam sender in a conversation that is not spam is delivered
there as any other: the agents already talk to that person.

Callers check that the user may see the conversation's inbox (services/access.py) or is an
admin (the settings' block list). Committing a conversation's change moves the list version
(services/list_version.py), so open lists and the sidebar's counts follow.
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from extensions import db, get_settings
from mail.model import ParsedEmail
from mail.spam_headers import headers_of, upstream_verdict
from models import BlockedSender, Conversation, Inbox, Message, User
from models.enums import ConversationStatus, Direction
from services.conversations import acting

SPAM = ConversationStatus.SPAM
MARKED = "marked this as spam"  # every line that sets a conversation aside says this
ON_ARRIVAL = "Threadline"  # who the line names when the spam check caught it
MAX_PATTERN = 320  # BlockedSender.pattern


class SpamError(ValueError):
    """A block-list entry that cannot be accepted; the message says what to type instead."""


# --- on arrival ------------------------------------------------------------------------------


def spam_reason(inbox: Inbox, parsed: ParsedEmail, raw: bytes) -> str | None:
    """Why this email is spam for this inbox, or None: a blocked sender first ("blocked
    sender a@b.example", "blocked domain b.example"), then the upstream filter's verdict."""
    blocked = blocked_match(inbox.id, _sender_addresses(parsed))
    if blocked is not None:
        return blocked
    return upstream_verdict(headers_of(raw), get_settings().spam_score_threshold)


def on_arrival(conversation: Conversation, is_new: bool, reason: str | None) -> bool:
    """After the email's message is added: a new conversation that is spam is set aside (with
    its activity line); True when the conversation is spam now, new or already: then nobody is
    told, nothing is assigned, no rule runs and nothing is answered."""
    if is_new and reason:
        conversation.move_to(SPAM)
        db.session.add(conversation.activity(f"{ON_ARRIVAL} {MARKED}: {reason}"))
        return True
    return conversation.status == SPAM


def _sender_addresses(parsed: ParsedEmail) -> list[str]:
    """From, and who the conversation's contact is (Reply-To, X-Original-Sender)."""
    people = (parsed.from_, parsed.contact)
    return list(dict.fromkeys(p.address.lower() for p in people if p is not None and p.address))


def blocked_match(inbox_id: int, addresses: list[str]) -> str | None:
    """The first block-list entry of this inbox covering one of these addresses, as a reason."""
    if not addresses:
        return None
    domains = [address.rpartition("@")[2] for address in addresses]
    found = db.session.scalars(
        select(BlockedSender.pattern).where(
            BlockedSender.inbox_id == inbox_id,
            BlockedSender.pattern.in_(set(addresses) | set(domains)),
        )
    ).all()
    for address, domain in zip(addresses, domains, strict=True):
        if address in found:
            return f"blocked sender {address}"
        if domain in found:
            return f"blocked domain {domain}"
    return None


# --- the agents' actions ---------------------------------------------------------------------


def mark_spam(
    conversation: Conversation, by_user: User, reason: str | None = None, *, commit: bool = True
) -> bool:
    """Set it aside as spam ("Mark as spam"); False when it already was (nothing changes)."""
    if conversation.status == SPAM:
        return False
    who, actor_id = acting(by_user, None)
    conversation.move_to(SPAM)
    line = f"{who} {MARKED}" + (f": {reason}" if reason else "")
    db.session.add(conversation.activity(line, actor_id))
    if commit:
        db.session.commit()
    return True


def block_sender(conversation: Conversation, user: User) -> str:
    """Block the conversation's contact's address in its inbox and mark it as spam; returns
    the address blocked. Blocking someone already blocked only marks the conversation."""
    address = conversation.contact.email.lower()
    _add_pattern(conversation.inbox_id, address, user)
    if not mark_spam(conversation, user, f"blocked sender {address}", commit=False):
        who, actor_id = acting(user, None)
        db.session.add(conversation.activity(f"{who} blocked {address}", actor_id))
    db.session.commit()
    return address


def not_spam(conversation: Conversation, by_user: User) -> list[str]:
    """Back to open, and the contact's address and domain off the inbox's block list (their
    next email lands in the open queue); returns the entries removed."""
    address = conversation.contact.email.lower()
    covering = (address, address.rpartition("@")[2])
    listed = db.session.scalars(
        select(BlockedSender.pattern).where(
            BlockedSender.inbox_id == conversation.inbox_id,
            BlockedSender.pattern.in_(covering),
        )
    ).all()
    removed = [pattern for pattern in covering if pattern in listed]  # the address first
    if removed:
        db.session.execute(
            delete(BlockedSender).where(
                BlockedSender.inbox_id == conversation.inbox_id,
                BlockedSender.pattern.in_(removed),
            )
        )
    who, actor_id = acting(by_user, None)
    line = f"{who} marked this as not spam"
    if removed:
        line += f" and unblocked {', '.join(removed)}"
    if conversation.status == SPAM:
        conversation.reopen()
    db.session.add(conversation.activity(line, actor_id))
    db.session.commit()
    return removed


def reason_shown(conversation: Conversation) -> str | None:
    """What the thread's banner says a spam conversation is there for: the reason its latest
    "marked this as spam" line names, else who marked it. None when it is not spam."""
    if conversation.status != SPAM:
        return None
    line = db.session.scalar(
        select(Message.text_body)
        .where(
            Message.conversation_id == conversation.id,
            Message.direction == Direction.ACTIVITY,
            Message.text_body.contains(MARKED),
        )
        .order_by(Message.id.desc())
        .limit(1)
    )
    if not line:
        return "marked as spam"
    who, _, reason = line.partition(f" {MARKED}")
    reason = reason.removeprefix(":").strip()
    if reason:
        return reason
    return "marked by " + who if who != ON_ARRIVAL else "marked as spam"


# --- the block list (inbox settings) ---------------------------------------------------------


def blocked_senders(inbox: Inbox) -> list[BlockedSender]:
    """The inbox's block list: domains first, then addresses, each alphabetically."""
    entries = db.session.scalars(select(BlockedSender).where(BlockedSender.inbox_id == inbox.id))
    return sorted(entries, key=lambda entry: (not entry.is_domain, entry.pattern))


def clean_pattern(raw: str) -> str:
    """An address (a@b.example) or a domain (b.example or @b.example) as stored: lower-case,
    the domain without its "@". SpamError says what to type otherwise."""
    text = (raw or "").strip().lower()
    if not text:
        raise SpamError("Enter an email address (spammer@example.com) or a domain (example.com).")
    if len(text) > MAX_PATTERN:
        raise SpamError(f"That is longer than an address can be ({MAX_PATTERN} characters).")
    domain_only = text.startswith("@") or "@" not in text
    candidate = "blocked@" + text.lstrip("@") if domain_only else text
    try:
        address = validate_email(candidate, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        what = "a domain such as example.com" if domain_only else "an address such as a@b.com"
        why = str(exc).replace("The part after the @-sign", "The domain") if domain_only else exc
        raise SpamError(f"“{raw.strip()}” is not {what}: {why}") from None
    return address.rpartition("@")[2] if domain_only else address


def add_block(inbox: Inbox, pattern: str, user: User | None) -> BlockedSender:
    """Block an address or a domain in this inbox; SpamError when it is not one, or listed."""
    cleaned = clean_pattern(pattern)
    if _existing(inbox.id, cleaned) is not None:
        raise SpamError(f"{cleaned} is already blocked in this inbox.")
    entry = _add_pattern(inbox.id, cleaned, user)
    db.session.commit()
    return entry


def remove_block(inbox: Inbox, entry_id: int) -> str | None:
    """Unblock one entry of this inbox; its pattern, or None when the inbox has no such entry.
    Conversations already in Spam stay there ("Not spam" moves each back)."""
    entry = db.session.get(BlockedSender, entry_id) if 0 < entry_id < 2**31 else None
    if entry is None or entry.inbox_id != inbox.id:
        return None
    pattern = entry.pattern
    db.session.delete(entry)
    db.session.commit()
    return pattern


def _existing(inbox_id: int, pattern: str) -> BlockedSender | None:
    return db.session.scalar(
        select(BlockedSender).where(
            BlockedSender.inbox_id == inbox_id, BlockedSender.pattern == pattern
        )
    )


def _add_pattern(inbox_id: int, pattern: str, user: User | None) -> BlockedSender:
    """The entry, added (flushed, not committed) unless it is listed already; two agents
    blocking the same sender at once end with one entry."""
    found = _existing(inbox_id, pattern)
    if found is not None:
        return found
    entry = BlockedSender(
        inbox_id=inbox_id,
        pattern=pattern[:MAX_PATTERN],
        created_by_user_id=user.id if user is not None else None,
    )
    try:
        with db.session.begin_nested():
            db.session.add(entry)
    except IntegrityError:
        return _existing(inbox_id, pattern)
    return entry
