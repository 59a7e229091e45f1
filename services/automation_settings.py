"""What the admin pages change about automations: an inbox's (or the global) rules in order,
and an inbox's business hours and auto-acknowledgement. Every change commits here; the pages
only parse the forms (blueprints/inboxes/rules.py, hours.py)."""

from __future__ import annotations

from sqlalchemy import func, select

from extensions import db
from models import Inbox
from models.automations import AutoAcknowledgement, AutomationRule


def _scope(inbox: Inbox | None):
    column = AutomationRule.inbox_id
    return column.is_(None) if inbox is None else column == inbox.id


def rules_of(inbox: Inbox | None) -> list[AutomationRule]:
    """The rules of one inbox (None: the global ones) in the order they run."""
    query = select(AutomationRule).where(_scope(inbox))
    return list(db.session.scalars(query.order_by(AutomationRule.position, AutomationRule.id)))


def rule_of(inbox: Inbox | None, rule_id: int) -> AutomationRule | None:
    """The rule, if it belongs to this scope (an inbox's page never edits another's rule)."""
    rule = db.session.get(AutomationRule, rule_id)
    if rule is None or rule.inbox_id != (inbox.id if inbox else None):
        return None
    return rule


def save_rule(inbox: Inbox | None, rule: AutomationRule | None, clean, *, enabled, stop_after):
    """Store a validated rule (catalog.CleanRule); a new one goes last."""
    if rule is None:
        last = db.session.scalar(select(func.max(AutomationRule.position)).where(_scope(inbox)))
        rule = AutomationRule(inbox_id=inbox.id if inbox else None, position=(last or 0) + 1)
        db.session.add(rule)
    rule.name, rule.match = clean.name, clean.match
    rule.conditions, rule.actions = clean.conditions, clean.actions
    rule.enabled, rule.stop_after = bool(enabled), bool(stop_after)
    db.session.commit()
    return rule


def move_rule(inbox: Inbox | None, rule: AutomationRule, step: int) -> None:
    """One place earlier (-1) or later (+1); positions are renumbered 1..n on the way."""
    rules = rules_of(inbox)
    index = rules.index(rule)
    other = index + step
    if 0 <= other < len(rules):
        rules[index], rules[other] = rules[other], rules[index]
    for position, each in enumerate(rules, start=1):
        each.position = position
    db.session.commit()


def set_enabled(rule: AutomationRule, enabled: bool) -> None:
    rule.enabled = enabled
    db.session.commit()


def delete_rule(rule: AutomationRule) -> None:
    db.session.delete(rule)
    db.session.commit()


def acknowledgement_of(inbox: Inbox) -> AutoAcknowledgement:
    """The inbox's auto-acknowledgement, a fresh (unsaved, off) one when it has none yet."""
    found = db.session.get(AutoAcknowledgement, inbox.id)
    if found is not None:
        return found
    return AutoAcknowledgement(
        inbox_id=inbox.id, enabled=False, outside_hours_only=False, subject="", body="",
        window_minutes=1440,
    )  # fmt: skip


def save_hours(inbox: Inbox, *, time_zone, hours, holidays, acknowledgement: dict) -> None:
    """Business hours (`hours` None: none set) and the auto-acknowledgement, in one commit."""
    inbox.time_zone, inbox.business_hours, inbox.holidays = time_zone, hours, holidays
    ack = db.session.get(AutoAcknowledgement, inbox.id)
    if ack is None:
        ack = AutoAcknowledgement(inbox_id=inbox.id)
        db.session.add(ack)
    for name, value in acknowledgement.items():
        setattr(ack, name, value)
    db.session.commit()
