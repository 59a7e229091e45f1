"""Telling an inbox's members of a new conversation costs a fixed number of SQL statements,
however many members there are (services/notifications/events.record reads the members,
their choices and their email threads in one query each). Counted through the path mail
takes: the relay ingress and the worker."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from extensions import db
from models import Inbox, InboxMember, Notification, NotificationThread
from services.notifications.events import set_preferences
from tests.conftest import global_smtp
from tests.support.inbound import deliver
from tests.support.statements import sql_statements

# Each member's choice for a new conversation, in turn: email and the app, the default
# (the app only), email only, nothing.
CHOICES = [(True, True), None, (True, False), (False, False)]


@pytest.fixture
def app_config(app_config, smtp):
    return {**app_config, **global_smtp(smtp)}


def inbox_with_members(make_user, name: str, how_many: int) -> Inbox:
    inbox = Inbox(name=name, support_address=f"{name.lower()}@example.com")
    db.session.add(inbox)
    db.session.commit()
    for number in range(how_many):
        user = make_user(email=f"{name.lower()}-{number}@example.org", name=f"{name} {number}")
        db.session.add(InboxMember(inbox_id=inbox.id, user_id=user.id))
        choice = CHOICES[number % len(CHOICES)]
        if choice is not None:
            set_preferences(user, {"new_conversation": choice})
    db.session.commit()
    return inbox


def customer_email(to: str, sender: str) -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: Printer on fire\r\n"
        f"Message-ID: <{sender}>\r\n\r\nHelp, it burns.\r\n"
    ).encode()


def delivered_to(app, client, inbox: Inbox, how_many: int, sender: str) -> int:
    """Statements run to deliver one new customer email to `inbox` (whose `how_many`
    members chose as CHOICES says); checks that each was told as they chose."""
    with sql_statements() as statements:
        message = deliver(app, client, customer_email(inbox.support_address, sender))
    assert message.conversation.inbox_id == inbox.id
    choices = [CHOICES[number % len(CHOICES)] or (False, True) for number in range(how_many)]
    notes = db.session.scalars(
        select(Notification).where(Notification.conversation_id == message.conversation_id)
    ).all()
    assert sorted((n.email == "pending", n.in_app) for n in notes) == sorted(
        choice for choice in choices if any(choice)
    )
    due = db.session.scalars(
        select(NotificationThread).where(
            NotificationThread.conversation_id == message.conversation_id,
            NotificationThread.due_at.is_not(None),
        )
    ).all()
    assert len(due) == sum(email for email, _ in choices)
    return len(statements)


def test_telling_members_of_a_new_conversation_does_not_grow_with_their_number(
    app, client, inbox, make_user
):
    deliver(app, client, customer_email(inbox.support_address, "warm@customer.example"))
    two = inbox_with_members(make_user, "Two", 2)
    ten = inbox_with_members(make_user, "Ten", 10)

    statements_for_two = delivered_to(app, client, two, 2, "carla@customer.example")
    statements_for_ten = delivered_to(app, client, ten, 10, "carlo@customer.example")

    assert statements_for_two == statements_for_ten
