"""What a rule may hold: its conditions and actions, and how each is checked.

The admin form (blueprints/inboxes, the rules section) and the engine (engine.py) read this
one catalog, so a rule the form accepts is a rule the engine can run. A condition is
`{"field": ..., "op": ..., "value": ...}`, an action `{"type": ..., <its parameters>}`;
`validate_rule` returns them cleaned (trimmed, typed, lower-cased where matching ignores
case) or raises RuleError naming what to fix.

Sender verdicts and spam scores are not conditions yet: nothing computes them (issue 21).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select

from extensions import db
from models import Inbox, InboxMember, SavedReply, User
from models.enums import ConversationStatus, RuleMatch, values

NAME_MAX = 120
VALUE_MAX = 500
PATTERN_MAX = 200
NOTE_MAX = 5_000
LABELS_MAX = 10
SNOOZE_HOURS_MAX = 24 * 90
MAX_CONDITIONS = 20
MAX_ACTIONS = 20

TEXT_OPS = {
    "contains": "contains",
    "not_contains": "does not contain",
    "is": "is",
    "is_not": "is not",
    "starts_with": "starts with",
    "ends_with": "ends with",
    "matches": "matches the pattern",
}


@dataclass(frozen=True)
class ConditionSpec:
    label: str
    ops: dict[str, str]  # op -> how it reads
    choices: dict[str, str] | None = None  # for a choice value: value -> how it reads
    help: str = ""


CONDITIONS: dict[str, ConditionSpec] = {
    "kind": ConditionSpec(
        "The email", {"is": "is"}, {"new": "a new conversation", "reply": "a reply"}
    ),
    "from": ConditionSpec("From (address)", TEXT_OPS, help='e.g. ends with "@bigcustomer.example"'),
    "to": ConditionSpec(
        "To or Cc (any address)", TEXT_OPS, help="which of the inbox's addresses it was sent to"
    ),
    "subject": ConditionSpec("Subject", TEXT_OPS),
    "text": ConditionSpec("Text of the email", TEXT_OPS),
    "has_attachments": ConditionSpec(
        "Attachments", {"is": "are"}, {"yes": "present", "no": "absent"}
    ),
    "automatic": ConditionSpec(
        "Sent automatically",
        {"is": "is", "is_not": "is not"},
        {"auto_reply": "an auto-reply", "bounce": "a bounce", "bulk": "bulk or list mail"},
    ),
    "hours": ConditionSpec(
        "Arrived",
        {"is": "is"},
        {"within": "within business hours", "outside": "outside business hours"},
    ),
}

ACTIONS: dict[str, str] = {
    "assign": "Assign to",
    "round_robin": "Assign round robin among",
    "add_labels": "Add labels",
    "remove_labels": "Remove labels",
    "set_status": "Set the status",
    "snooze": "Snooze for",
    "add_note": "Add a private note",
    "send_saved_reply": "Send a saved reply",
    "acknowledge": "Send the inbox's auto-acknowledgement",
    "mark_spam": "Mark as spam",
    "notify": "Notify by email",
}
STATUSES = (ConversationStatus.PENDING.value, ConversationStatus.RESOLVED.value)


class RuleError(ValueError):
    """What to fix; `where` names the part ("name", "conditions", "actions", or
    "conditions.2" / "actions.0" for one row), so the form shows it beside that row."""

    def __init__(self, where: str, message: str):
        super().__init__(message)
        self.where = where


@dataclass
class CleanRule:
    name: str
    match: str
    conditions: list[dict]
    actions: list[dict]


def validate_rule(
    inbox: Inbox | None, name: str, match: str, conditions: list, actions: list
) -> CleanRule:
    """The rule as it will be stored, or RuleError. `inbox` None: a global rule (assignees
    must then be admins, who may take a conversation in any inbox)."""
    name = " ".join((name or "").split())
    if not name:
        raise RuleError("name", "Give the rule a name.")
    if len(name) > NAME_MAX:
        raise RuleError("name", f"A name has at most {NAME_MAX} characters.")
    if match not in values(RuleMatch):
        raise RuleError("match", "Choose whether all or any of the conditions must hold.")
    if not conditions:
        raise RuleError("conditions", "Add at least one condition.")
    if not actions:
        raise RuleError("actions", "Add at least one action.")
    if len(conditions) > MAX_CONDITIONS:
        raise RuleError("conditions", f"A rule has at most {MAX_CONDITIONS} conditions.")
    if len(actions) > MAX_ACTIONS:
        raise RuleError("actions", f"A rule has at most {MAX_ACTIONS} actions.")
    clean_conditions = [
        _condition(f"conditions.{i}", raw, inbox) for i, raw in enumerate(conditions)
    ]
    clean_actions = [_action(f"actions.{i}", raw, inbox) for i, raw in enumerate(actions)]
    return CleanRule(name, match, clean_conditions, clean_actions)


# --- conditions -----------------------------------------------------------------------------


def _condition(where: str, raw, inbox: Inbox | None) -> dict:
    if not isinstance(raw, dict):
        raise RuleError(where, "A condition needs a field, a test and a value.")
    field, op = str(raw.get("field") or ""), str(raw.get("op") or "")
    spec = CONDITIONS.get(field)
    if spec is None:
        raise RuleError(where, "Choose what the condition looks at.")
    if op not in spec.ops:
        raise RuleError(where, f"{spec.label}: choose one of {', '.join(spec.ops.values())}.")
    value = raw.get("value")
    value = "" if value is None else str(value).strip()
    if spec.choices is not None:
        if value not in spec.choices:
            raise RuleError(where, f"{spec.label}: choose {', '.join(spec.choices.values())}.")
        if field == "hours" and inbox is not None and not inbox.business_hours:
            raise RuleError(
                where, "Set the inbox's business hours first (Settings › Business hours)."
            )
        return {"field": field, "op": op, "value": value}
    if not value:
        raise RuleError(where, f"{spec.label}: give a value to compare with.")
    if op == "matches":
        if len(value) > PATTERN_MAX:
            raise RuleError(where, f"A pattern has at most {PATTERN_MAX} characters.")
        try:
            re.compile(value, re.IGNORECASE)
        except re.error as exc:
            raise RuleError(where, f"The pattern {value!r} is not valid: {exc}.") from None
        return {"field": field, "op": op, "value": value}
    if len(value) > VALUE_MAX:
        raise RuleError(where, f"A value has at most {VALUE_MAX} characters.")
    return {"field": field, "op": op, "value": value.casefold()}


def describe_condition(condition: dict) -> str:
    """One condition in words: 'From (address) ends with "@vip.example"'."""
    spec = CONDITIONS.get(condition.get("field", ""))
    if spec is None:
        return "(unknown condition)"
    op = spec.ops.get(condition.get("op", ""), condition.get("op", ""))
    value = condition.get("value", "")
    shown = spec.choices.get(value, value) if spec.choices else f'"{value}"'
    return f"{spec.label} {op} {shown}"


# --- actions --------------------------------------------------------------------------------


def _action(where: str, raw, inbox: Inbox | None) -> dict:
    if not isinstance(raw, dict) or raw.get("type") not in ACTIONS:
        raise RuleError(where, "Choose what the action does.")
    kind = raw["type"]
    if kind == "assign":
        return {"type": kind, "user_id": _assignee(where, raw.get("user_id"), inbox).id}
    if kind in ("round_robin", "notify"):
        ids = raw.get("user_ids") or []
        if not isinstance(ids, list) or not ids:
            raise RuleError(where, f"{ACTIONS[kind]}: choose at least one person.")
        if kind == "round_robin":
            people = [_assignee(where, user_id, inbox) for user_id in ids]
        else:
            people = [_active_user(where, user_id) for user_id in ids]
        return {"type": kind, "user_ids": sorted({user.id for user in people})}
    if kind in ("add_labels", "remove_labels"):
        from services.labels import LabelError, clean_names, split_names

        raw_labels = raw.get("labels") or []
        if not isinstance(raw_labels, str | list | tuple):
            raise RuleError(where, f"{ACTIONS[kind]}: name the labels, separated by commas.")
        names = split_names(raw_labels) if isinstance(raw_labels, str) else list(raw_labels)
        try:
            names = clean_names(names)
        except LabelError as exc:
            raise RuleError(where, str(exc)) from None
        if not names:
            raise RuleError(where, f"{ACTIONS[kind]}: name at least one label.")
        if len(names) > LABELS_MAX:
            raise RuleError(where, f"At most {LABELS_MAX} labels per action.")
        return {"type": kind, "labels": names}
    if kind == "set_status":
        status = str(raw.get("status") or "")
        if status not in STATUSES:
            raise RuleError(where, f"Set the status to {' or '.join(STATUSES)}.")
        return {"type": kind, "status": status}
    if kind == "snooze":
        try:
            hours = int(raw.get("hours"))
        except (TypeError, ValueError):
            hours = 0
        if not 1 <= hours <= SNOOZE_HOURS_MAX:
            raise RuleError(where, f"Snooze for 1 to {SNOOZE_HOURS_MAX} hours.")
        return {"type": kind, "hours": hours}
    if kind == "add_note":
        text = str(raw.get("text") or "").strip()
        if not text:
            raise RuleError(where, "Write the note.")
        if len(text) > NOTE_MAX:
            raise RuleError(where, f"A note has at most {NOTE_MAX:,} characters.")
        return {"type": kind, "text": text}
    if kind == "send_saved_reply":
        reply = _saved_reply(where, raw.get("saved_reply_id"), inbox)
        return {"type": kind, "saved_reply_id": reply.id}
    return {"type": kind}  # acknowledge, mark_spam: nothing to choose


def _user_id(where: str, raw) -> int:
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise RuleError(where, "Choose a person from the list.") from None


def _active_user(where: str, raw) -> User:
    user = db.session.get(User, _user_id(where, raw))
    if user is None or not user.active:
        raise RuleError(where, "Choose an active person from the list.")
    return user


def _assignee(where: str, raw, inbox: Inbox | None) -> User:
    """Someone who may take the inbox's conversations: a member of it, or an admin."""
    user = _active_user(where, raw)
    if user.is_admin:
        return user
    if inbox is None:
        raise RuleError(
            where, f"{user.name} is an agent: a rule for every inbox can only assign to admins."
        )
    member = db.session.get(InboxMember, (inbox.id, user.id))
    if member is None:
        raise RuleError(where, f"{user.name} is not a member of {inbox.name}.")
    return user


def _saved_reply(where: str, raw, inbox: Inbox | None) -> SavedReply:
    """A shared saved reply the inbox may use: one for every inbox, or this inbox's own."""
    try:
        reply_id = int(raw)
    except (TypeError, ValueError):
        raise RuleError(where, "Choose a saved reply from the list.") from None
    reply = db.session.get(SavedReply, reply_id)
    usable = reply is not None and reply.owner_id is None
    if usable and reply.inbox_id is not None:
        usable = inbox is not None and reply.inbox_id == inbox.id
    if not usable:
        raise RuleError(where, "Choose a shared saved reply of this inbox or of every inbox.")
    return reply


def usable_saved_replies(inbox: Inbox | None) -> list[SavedReply]:
    """The saved replies a rule of `inbox` (None: global) may send, by name."""
    query = select(SavedReply).where(SavedReply.owner_id.is_(None))
    if inbox is None:
        query = query.where(SavedReply.inbox_id.is_(None))
    else:
        query = query.where((SavedReply.inbox_id.is_(None)) | (SavedReply.inbox_id == inbox.id))
    return list(db.session.scalars(query.order_by(SavedReply.name)))


def describe_action(action: dict, names: dict[int, str] | None = None) -> str:
    """One action in words; `names`: user ids to names, when known."""
    names = names or {}
    kind = action.get("type", "")
    label = ACTIONS.get(kind, kind)
    if kind == "assign":
        return f"{label} {names.get(action.get('user_id'), 'someone')}"
    if kind in ("round_robin", "notify"):
        people = ", ".join(names.get(i, f"#{i}") for i in action.get("user_ids", []))
        return f"{label} {people}"
    if kind in ("add_labels", "remove_labels"):
        return f"{label} {', '.join(action.get('labels', []))}"
    if kind == "set_status":
        return f"{label} to {action.get('status')}"
    if kind == "snooze":
        return f"{label} {action.get('hours')} h"
    return label
