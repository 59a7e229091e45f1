"""What a rule's conditions look at (Facts: from a message being delivered, or a stored one
for a dry run) and whether they hold. services/automations/engine.py runs the rules; the
catalog (catalog.py) says which conditions exist and how they read."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from extensions import db
from mail.model import ParsedEmail
from models import Inbox, Message, utcnow
from services.automations.catalog import describe_condition
from services.business_hours import within_hours

TEXT_LIMIT = 100_000  # a `text` condition reads this much of the body
NEGATIVE_OPS = {"not_contains": "contains", "is_not": "is"}


@dataclass
class Facts:
    """What conditions look at, from a message being delivered or a stored one."""

    kind: str  # new | reply
    sender: str  # lower-case address
    recipients: list[str]  # every To and Cc address, lower-case
    subject: str
    text: str
    has_attachments: bool
    auto_flag: str | None
    inbox: Inbox
    arrived_at: datetime


def facts_of_delivery(message, conversation, parsed: ParsedEmail, is_new: bool) -> Facts:
    person = parsed.from_ or parsed.contact
    sender = person.address if person else message.from_address
    return Facts(
        kind="new" if is_new else "reply",
        sender=sender.lower(),
        recipients=[p.address.lower() for p in [*parsed.to, *parsed.cc]],
        subject=message.subject or "",
        text=(message.text_body or "")[:TEXT_LIMIT],
        has_attachments=any(not a.inline for a in parsed.attachments),
        auto_flag=message.auto_flag,
        inbox=conversation.inbox,
        arrived_at=message.created_at or utcnow(),
    )


def facts_of_stored(inbox: Inbox, message: Message) -> Facts:
    first_incoming = db.session.scalar(
        select(func.min(Message.id)).where(
            Message.conversation_id == message.conversation_id, Message.direction == "incoming"
        )
    )
    return Facts(
        kind="new" if first_incoming == message.id else "reply",
        sender=(message.from_address or "").lower(),
        recipients=[p.address.lower() for p in [*message.to_addresses, *message.cc_addresses]],
        subject=message.subject or "",
        text=(message.text_body or "")[:TEXT_LIMIT],
        has_attachments=any(not a.inline for a in message.attachments),
        auto_flag=message.auto_flag,
        inbox=inbox,
        arrived_at=message.created_at,
    )


def matches(rule, facts: Facts) -> tuple[bool, list[tuple[str, bool]]]:
    checks = [(describe_condition(c), _holds(c, facts)) for c in rule.conditions]
    results = [held for _, held in checks]
    matched = any(results) if rule.match == "any" else bool(results) and all(results)
    return matched, checks


def _holds(condition: dict, facts: Facts) -> bool:
    field_, op, value = condition["field"], condition["op"], condition["value"]
    if field_ == "kind":
        return facts.kind == value
    if field_ == "has_attachments":
        return facts.has_attachments == (value == "yes")
    if field_ == "automatic":
        return (facts.auto_flag == value) == (op == "is")
    if field_ == "hours":
        return within_hours(facts.inbox, facts.arrived_at) == (value == "within")
    candidates = {
        "from": [facts.sender],
        "to": facts.recipients,
        "subject": [facts.subject],
        "text": [facts.text],
    }[field_]
    # "To does not contain x": none of the addresses does (the opposite of "any does").
    if op in NEGATIVE_OPS:
        return not any(_text_holds(NEGATIVE_OPS[op], value, text) for text in candidates)
    return any(_text_holds(op, value, text) for text in candidates)


def _text_holds(op: str, value: str, text: str) -> bool:
    if op == "matches":
        return re.search(value, text, re.IGNORECASE) is not None
    text = text.casefold()  # the catalog stores values casefolded
    if op == "contains":
        return value in text
    if op == "is":
        return text == value
    if op == "starts_with":
        return text.startswith(value)
    if op == "ends_with":
        return text.endswith(value)
    raise ValueError(f"unknown test {op!r}")
