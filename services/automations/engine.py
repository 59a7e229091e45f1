"""The rules engine: which rules match an incoming message, and what they do to it.

`run_rules` runs in the delivery transaction (services/automations/__init__.py): global rules
first, then the inbox's, each by position. A rule's actions go through the services an
agent's actions use (so activity lines, list updates and the API see them), each activity
line naming the rule ("Rule 'VIP customers' assigned this to Ana"). Every rule runs inside
its own SAVEPOINT: a rule that fails is undone alone, its failure is written on the message
(`Message.rule_errors`) and delivery goes on. `dry_run` answers "what would this rule do to
that stored email" without writing anything.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from types import SimpleNamespace

from sqlalchemy import bindparam, select

from extensions import db
from mail.model import ParsedEmail
from models import (
    AutomationRule,
    Conversation,
    ConversationLabel,
    Inbox,
    InboxMember,
    Message,
    SavedReply,
    User,
    utcnow,
)
from services.assignment import next_among
from services.automations.acknowledgement import acknowledge, why_not_answer
from services.automations.catalog import describe_action
from services.automations.conditions import facts_of_delivery, facts_of_stored, matches
from services.automations.outgoing import queue_automatic_reply
from services.conversations import update_conversation
from services.labels import conversation_labels, get_or_create_label, key, set_labels
from services.saved_replies import render_text, variable_values

log = logging.getLogger(__name__)

SPAM_LABEL = "spam"

_RULES = (  # built once: every delivered message runs it
    select(AutomationRule)
    .where(
        AutomationRule.enabled.is_(True),
        (AutomationRule.inbox_id.is_(None)) | (AutomationRule.inbox_id == bindparam("inbox_id")),
    )
    .order_by(AutomationRule.inbox_id.is_not(None), AutomationRule.position, AutomationRule.id)
)


class RuleFailed(Exception):
    """An action that cannot be done now; the message says why, for `rule_errors`."""


@dataclass
class DryRun:
    matched: bool
    checks: list[tuple[str, bool]] = field(default_factory=list)
    would_do: list[str] = field(default_factory=list)


def enabled_rules(inbox_id: int) -> list[AutomationRule] | None:
    """The enabled rules an inbox's deliveries run, in order; None when they cannot be read
    (run_rules then reads them again and records why)."""
    try:
        return list(db.session.scalars(_RULES, {"inbox_id": inbox_id}))
    except Exception:  # noqa: BLE001 - delivery goes on; run_rules reports it
        return None


def run_rules(
    message: Message,
    conversation: Conversation,
    parsed: ParsedEmail,
    is_new: bool,
    effects,
    rules: list[AutomationRule] | None = None,
) -> None:
    """Every enabled rule for the message's inbox, in order (`rules`: as read beforehand by
    enabled_rules); never raises."""
    try:
        if rules is None:
            rules = list(db.session.scalars(_RULES, {"inbox_id": message.inbox_id}))
        if not rules:
            return
        facts = facts_of_delivery(message, conversation, parsed, is_new)
    except Exception as exc:  # delivery must go on whatever the rules' state
        log.exception("automation rules not run for message %s", message.id)
        _record_failure(message, f"Rules not run: {_why(exc)}")
        return
    for rule in rules:
        try:
            matched = matches(rule, facts)[0]
        except Exception as exc:
            log.exception("rule %s failed on message %s", rule.id, message.id)
            _record_failure(message, f"Rule '{rule.name}': {_why(exc)}")
            continue
        if not matched:
            continue
        try:
            with db.session.begin_nested():
                _apply(rule, message, conversation, parsed, effects)
                rule.fired_count = AutomationRule.fired_count + 1
                rule.last_fired_at = utcnow()
        except Exception as exc:
            if not isinstance(exc, RuleFailed):
                log.exception("rule %s failed on message %s", rule.id, message.id)
            else:
                log.warning("rule %s failed on message %s: %s", rule.id, message.id, exc)
            _record_failure(message, f"Rule '{rule.name}': {_why(exc)}")
        if rule.stop_after:  # the admin asked that nothing after it runs, even if it failed
            break


def dry_run(inbox: Inbox, rule, message: Message) -> DryRun:
    """Would `rule` (an AutomationRule or a catalog.CleanRule) match the stored `message`,
    and what would it do? Reads only."""
    with db.session.no_autoflush:
        facts = facts_of_stored(inbox, message)
        matched, checks = matches(rule, facts)
        would_do = []
        if matched:
            names = _user_names(rule.actions)
            would_do = [describe_action(action, names) for action in rule.actions]
    return DryRun(matched, checks, would_do)


# --- actions ---------------------------------------------------------------------------------


def _apply(rule: AutomationRule, message, conversation, parsed, effects) -> None:
    by = f"Rule '{rule.name}'"
    for action in rule.actions:
        kind = action["type"]
        if kind == "assign":
            user = _may_take(conversation.inbox, action["user_id"])
            update_conversation(conversation, None, assignee_id=user.id, commit=False, by=by)
        elif kind == "round_robin":
            user = next_among(conversation.inbox, action["user_ids"])
            if user is None:
                raise RuleFailed("none of the people to assign round robin can take it now")
            update_conversation(conversation, None, assignee_id=user.id, commit=False, by=by)
        elif kind in ("add_labels", "remove_labels"):
            _change_labels(conversation, kind, action["labels"], by)
        elif kind == "set_status":
            update_conversation(conversation, None, status=action["status"], commit=False, by=by)
        elif kind == "snooze":
            until = utcnow() + timedelta(hours=action["hours"])
            update_conversation(
                conversation, None, status="snoozed", snoozed_until=until, commit=False, by=by
            )
        elif kind == "add_note":
            _add_note(conversation, action["text"], by)
        elif kind == "mark_spam":
            _mark_spam(conversation, by)
        elif kind == "notify":
            _notify(conversation, message, action["user_ids"], by, effects)
        elif kind == "send_saved_reply":
            _send_saved_reply(message, conversation, parsed, action["saved_reply_id"], by, effects)
        elif kind == "acknowledge":
            acknowledge(message, conversation, parsed, effects, by_rule=rule.name)
        else:
            raise RuleFailed(f"unknown action {kind!r}")
    db.session.flush()


def _may_take(inbox: Inbox, user_id: int) -> User:
    """The user, if they may still take the inbox's conversations (the rule was saved when
    they could; people leave)."""
    user = db.session.get(User, user_id)
    if user is None:
        raise RuleFailed(f"cannot assign: user #{user_id} no longer exists")
    if not user.active:
        raise RuleFailed(f"cannot assign to {user.name}: the account is deactivated")
    if not user.is_admin and db.session.get(InboxMember, (inbox.id, user.id)) is None:
        raise RuleFailed(f"cannot assign to {user.name}: no longer a member of {inbox.name}")
    return user


def _change_labels(conversation, kind: str, labels: list[str], by: str) -> None:
    current = [label.display_name for label in conversation_labels(conversation.id)]
    if kind == "add_labels":
        wanted = current + labels
    else:
        gone = {key(name) for name in labels}
        wanted = [name for name in current if key(name) not in gone]
    set_labels(conversation, None, wanted, commit=False, by=by)


def _add_note(conversation: Conversation, text: str, by: str) -> None:
    """A private note without a sender; `from_name` names the rule, which the thread
    shows where an agent's note shows the agent."""
    db.session.add(
        Message(
            conversation_id=conversation.id,
            inbox_id=conversation.inbox_id,
            direction="note",
            from_name=by[: Message.from_name.type.length],
            subject=conversation.subject,
            text_body=text,
        )
    )


def _mark_spam(conversation: Conversation, by: str) -> None:
    """Label "spam" and resolve, as one activity line."""
    label = get_or_create_label(SPAM_LABEL)
    has_it = db.session.scalar(
        select(ConversationLabel.id).where(
            ConversationLabel.conversation_id == conversation.id,
            ConversationLabel.label_id == label.id,
        )
    )
    if has_it is None:
        db.session.add(ConversationLabel(conversation_id=conversation.id, label_id=label.id))
    if conversation.status != "resolved":
        conversation.move_to("resolved")
    db.session.add(conversation.activity(f"{by} marked this as spam"))


def _send_saved_reply(message, conversation, parsed, reply_id: int, by: str, effects) -> None:
    """Queue the saved reply to the contact (services/automations/outgoing.py), with the
    acknowledgement's loop guards: never to automatic or list mail, nor to our own address."""
    inbox, contact = conversation.inbox, conversation.contact
    reply = db.session.get(SavedReply, reply_id)
    if reply is None or reply.owner_id is not None or reply.inbox_id not in (None, inbox.id):
        raise RuleFailed(f"saved reply #{reply_id} was deleted or is no longer shared here")
    why = why_not_answer(message, parsed, contact)
    if why:
        line = f"{by} did not send the saved reply '{reply.name}': {why}"
        db.session.add(conversation.activity(line[:2000]))
        return
    # Nobody writes it: the agent's variables read as the inbox's name.
    as_agent = SimpleNamespace(name=inbox.name, email=inbox.support_address)
    text = render_text(reply.body, variable_values(as_agent, conversation))
    queue_automatic_reply(conversation, text, effects, kind="saved_reply")
    line = f"{by} sent the saved reply '{reply.name}' to {contact.email}"
    db.session.add(conversation.activity(line[:2000]))


def _notify(conversation, message, user_ids: list[int], by: str, effects) -> None:
    """Recorded for after the commit: one email per active user (`notify_by_email`)."""
    people = list(
        db.session.scalars(
            select(User).where(User.id.in_(user_ids), User.active.is_(True)).order_by(User.id)
        )
    )
    if not people:
        raise RuleFailed("nobody to notify: the chosen people are deactivated or gone")
    for user in people:
        effects.notify.append((message.id, user.id))
    names = ", ".join(user.name for user in people)
    db.session.add(conversation.activity(f"{by} notified {names} by email"))


# --- helpers ---------------------------------------------------------------------------------


def _user_names(actions: list[dict]) -> dict[int, str]:
    ids = {a["user_id"] for a in actions if "user_id" in a}
    ids |= {i for a in actions for i in a.get("user_ids", [])}
    if not ids:
        return {}
    return dict(db.session.execute(select(User.id, User.name).where(User.id.in_(ids))).all())


def _why(exc: Exception) -> str:
    if isinstance(exc, (RuleFailed, ValueError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _record_failure(message: Message, line: str) -> None:
    message.rule_errors = "\n".join(filter(None, [message.rule_errors, line[:1000]]))
