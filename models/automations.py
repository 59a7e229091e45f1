"""Automations on incoming email: ordered rules (conditions and actions) per inbox or for
every inbox, and each inbox's automatic acknowledgement.

A rule's conditions and actions are JSON lists whose shapes services/automations/catalog.py
defines and validates (the admin form and the engine read the same catalog):

    conditions: [{"field": "from", "op": "contains", "value": "@vip.example"}, ...]
    actions:    [{"type": "assign", "user_id": 3}, {"type": "add_labels", "labels": ["vip"]}]

Rules run inside the inbound processing job, in the transaction that records the message
(services/inbound_delivery.py), so they run exactly once per delivered message: a
reprocessed duplicate never reaches them, and a job that dies before its commit runs them
again with the message.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, TimestampMixin
from models.enums import checks_for


class AutomationRule(TimestampMixin, Base):
    """One rule. `inbox_id` NULL: a global rule, run for every inbox before the inbox's own.
    Within a scope, rules run by `position` (then id). `match`: all conditions or any.
    `stop_after`: when this rule matched, no later rule runs for the message."""

    __tablename__ = "automation_rules"
    __table_args__ = checks_for("automation_rules")

    id: Mapped[int] = mapped_column(primary_key=True)
    inbox_id: Mapped[int | None] = mapped_column(
        ForeignKey("inboxes.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(120))
    position: Mapped[int] = mapped_column(default=0)
    enabled: Mapped[bool] = mapped_column(default=True)
    stop_after: Mapped[bool] = mapped_column(default=False)
    match: Mapped[str] = mapped_column(String(8), default="all")
    conditions: Mapped[list] = mapped_column(JSON, default=list)
    actions: Mapped[list] = mapped_column(JSON, default=list)
    # The trace the rule page shows: how often it acted, and when last.
    fired_count: Mapped[int] = mapped_column(default=0, server_default="0")
    last_fired_at: Mapped[datetime | None]

    inbox = relationship("Inbox")

    def __repr__(self) -> str:
        return f"<AutomationRule {self.id} {self.name!r}>"


class AutoAcknowledgement(TimestampMixin, Base):
    """An inbox's "we got your message" answer to a new conversation: sent through the normal
    outbound path (so the customer's answer threads), never to automatic mail or our own
    addresses, at most once per sender and inbox within `window_minutes`."""

    __tablename__ = "auto_acknowledgements"

    inbox_id: Mapped[int] = mapped_column(
        ForeignKey("inboxes.id", ondelete="CASCADE"), primary_key=True
    )
    enabled: Mapped[bool] = mapped_column(default=False)
    outside_hours_only: Mapped[bool] = mapped_column(default=False)
    subject: Mapped[str] = mapped_column(String(255), default="")  # "" keeps "Re: <subject>"
    body: Mapped[str] = mapped_column(Text, default="")
    window_minutes: Mapped[int] = mapped_column(default=1440)

    inbox = relationship("Inbox")
