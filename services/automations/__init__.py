"""Automations on incoming email (issue 16): the rules an admin sets per inbox or for every
inbox, and the inbox's automatic acknowledgement.

The processing job calls `run` in the transaction that records an incoming message, after
threading, dedupe, contact, content and auto-assignment, and before the commit
(services/inbound_delivery.py); so rules run exactly once per delivered message. What must
happen after the commit (queued acknowledgements and replies handed to the outbound queue)
is returned, and `after_commit` does it.

- catalog.py: the conditions and actions a rule may hold, and their validation (the admin
  form and the engine read the same catalog).
- engine.py: evaluate a rule against a message, apply its actions through the same services
  an agent's actions use, the trace (activity lines, fired count), failures recorded on the
  message, the dry run against a stored email.
- acknowledgement.py: the inbox's auto-acknowledgement and its loop and flood guards.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from extensions import db
from mail.model import ParsedEmail
from models import AutoAcknowledgement, AutomationRule, Conversation, Message
from services.routing import OurAddresses


@dataclass
class Effects:
    """What the rules left for after the commit: outgoing messages (acknowledgements, saved
    replies) to hand to the outbound queue, and (message pk, user id) pairs to notify by
    email (notify.notify_by_email, queued by after_commit)."""

    outgoing: list[int] = field(default_factory=list)
    notify: list[tuple[int, int]] = field(default_factory=list)


@dataclass(frozen=True)
class Setup:
    """What the automations consult for an inbox's delivery: its rules, its acknowledgement
    settings and our own addresses (never answered). Read before the delivery's first write:
    on SQLite that write holds the database's write lock until the commit, which another
    worker's delivery waits for. `rules` is None when reading them failed: run_rules reads
    them again and records why."""

    rules: list[AutomationRule] | None
    acknowledgement: AutoAcknowledgement | None
    ours: OurAddresses


def read_setup(inbox_id: int) -> Setup:
    from services.automations import engine

    return Setup(
        engine.enabled_rules(inbox_id),
        db.session.get(AutoAcknowledgement, inbox_id),
        OurAddresses(),
    )


def run(
    message: Message,
    conversation: Conversation,
    parsed: ParsedEmail,
    is_new: bool,
    setup: Setup,
) -> Effects:
    """The inbox's and the global rules, then the auto-acknowledgement, for one incoming
    message; in the caller's transaction. Never raises for a rule's failure. `setup`: the
    inbox's, read beforehand (read_setup)."""
    from services.automations import acknowledgement, engine

    effects = Effects()
    engine.run_rules(message, conversation, parsed, is_new, effects, setup.rules)
    acknowledgement.maybe_acknowledge(
        message, conversation, parsed, is_new, effects, setup.acknowledgement, setup.ours
    )
    return effects


def after_commit(effects: Effects) -> None:
    """Hand the queued outgoing messages to the outbound queue (the sweep would find them
    too, later: jobs/sweeps.py re-enqueues stale queued replies), and queue the rules'
    notification emails."""
    from services.background import enqueue_rule_notification
    from services.replies import enqueue_send

    for message_pk in effects.outgoing:
        enqueue_send(message_pk)
    for message_pk, user_id in effects.notify:
        enqueue_rule_notification(message_pk, user_id)
