"""Auto-assignment through the real relay ingress and worker: round robin, who is skipped."""

from pathlib import Path

import pytest
from sqlalchemy import select

from extensions import db
from models import Conversation, Inbox, InboxMember, Message, User
from tests.support.inbound import post_relay, work_inbound

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "mail"


def email(
    n: int,
    sender: str | None = None,
    subject: str | None = None,
    to: str = "support@example.com",
    headers: tuple[str, ...] = (),
    in_reply_to: str | None = None,
) -> bytes:
    sender = sender or f"Customer {n} <customer{n}@customer.example>"
    lines = [
        f"Message-ID: <assign-{n}@customer.example>",
        "Date: Mon, 20 Jan 2025 10:00:00 +0000",
        f"From: {sender}",
        f"To: {to}",
        f"Subject: {subject or f'Question number {n}'}",
        *headers,
    ]
    if in_reply_to:
        lines += [f"In-Reply-To: <{in_reply_to}>", f"References: <{in_reply_to}>"]
    lines += ["MIME-Version: 1.0", 'Content-Type: text/plain; charset="UTF-8"', "", f"Body {n}."]
    return ("\r\n".join(lines) + "\r\n").encode()


@pytest.fixture
def deliver(app, client):
    """Post one raw email to the relay, run the worker, return the conversation it landed in."""

    def run(raw: bytes) -> Conversation:
        post_relay(client, raw)
        work_inbound(app)
        db.session.expire_all()
        message = db.session.scalars(
            select(Message).where(Message.direction == "incoming").order_by(Message.id.desc())
        ).first()
        assert message is not None, "the email was not delivered"
        return db.session.get(Conversation, message.conversation_id)

    return run


@pytest.fixture
def auto_inbox(inbox):
    inbox.auto_assign = True
    db.session.commit()
    return inbox


@pytest.fixture
def member(make_user):
    """Create a user with this availability and add them to the inbox."""

    def add(inbox: Inbox, name: str, availability: str = "online", active: bool = True) -> User:
        user = make_user(name=name)
        user.availability, user.active = availability, active
        db.session.add(InboxMember(inbox_id=inbox.id, user_id=user.id))
        db.session.commit()
        return user

    return add


def activity_lines(conversation: Conversation) -> list[str]:
    return list(
        db.session.scalars(
            select(Message.text_body)
            .where(Message.conversation_id == conversation.id, Message.direction == "activity")
            .order_by(Message.id)
        )
    )


def test_round_robin_gives_each_online_member_two_of_six_in_order(
    deliver, auto_inbox, member, make_user
):
    ana = member(auto_inbox, "Ana Agent")
    ben = member(auto_inbox, "Ben Agent")
    cleo = member(auto_inbox, "Cleo Agent")
    outsider = make_user(name="Online Outsider")  # online but not a member: never picked
    outsider.availability = "online"
    db.session.commit()

    assignees = [deliver(email(n)).assignee_id for n in range(1, 7)]

    assert assignees == [ana.id, ben.id, cleo.id, ana.id, ben.id, cleo.id]
    assert db.session.query(Conversation).count() == 6
    stamps = {
        m.user_id: m.last_assigned_at
        for m in db.session.scalars(
            select(InboxMember).where(InboxMember.inbox_id == auto_inbox.id)
        )
    }
    assert stamps[ana.id] < stamps[ben.id] < stamps[cleo.id]


def test_the_activity_line_follows_the_first_message(deliver, auto_inbox, member):
    member(auto_inbox, "Ana Agent")
    conversation = deliver(email(1))
    assert activity_lines(conversation) == ["Auto-assigned to Ana Agent"]
    directions = list(
        db.session.scalars(
            select(Message.direction)
            .where(Message.conversation_id == conversation.id)
            .order_by(Message.id)
        )
    )
    assert directions == ["incoming", "activity"]


def test_offline_busy_and_inactive_members_are_skipped(deliver, auto_inbox, member):
    member(auto_inbox, "Olga Offline", availability="offline")
    member(auto_inbox, "Bruno Busy", availability="busy")
    member(auto_inbox, "Ines Inactive", availability="online", active=False)
    ana = member(auto_inbox, "Ana Agent")

    assert [deliver(email(n)).assignee_id for n in range(1, 4)] == [ana.id] * 3


def test_nobody_available_leaves_the_conversation_unassigned(deliver, auto_inbox, member):
    member(auto_inbox, "Olga Offline", availability="offline")
    member(auto_inbox, "Bruno Busy", availability="busy")
    conversation = deliver(email(1))
    assert conversation.assignee_id is None
    assert activity_lines(conversation) == []


def test_inbox_with_auto_assign_off_leaves_it_unassigned(deliver, inbox, member):
    assert inbox.auto_assign is False
    member(inbox, "Ana Agent")
    conversation = deliver(email(1))
    assert conversation.assignee_id is None
    assert activity_lines(conversation) == []
    stamps = db.session.scalars(select(InboxMember.last_assigned_at)).all()
    assert stamps == [None]


def test_only_members_of_the_receiving_inbox_are_picked(deliver, auto_inbox, member, app):
    other = Inbox(name="Billing", support_address="billing@example.com", auto_assign=True)
    db.session.add(other)
    db.session.commit()
    ana = member(auto_inbox, "Ana Agent")
    bill = member(other, "Bill Billing")
    assert deliver(email(1)).assignee_id == ana.id
    assert deliver(email(2, to="billing@example.com")).assignee_id == bill.id
    assert deliver(email(3)).assignee_id == ana.id


@pytest.mark.parametrize(
    "headers",
    [
        ("Auto-Submitted: auto-replied",),
        ("X-Autoreply: yes",),
        ("Precedence: bulk",),
    ],
    ids=["auto-submitted", "x-autoreply", "bulk"],
)
def test_auto_replies_and_bulk_mail_are_not_assigned(deliver, auto_inbox, member, headers):
    ana = member(auto_inbox, "Ana Agent")
    conversation = deliver(email(1, subject="Out of office", headers=headers))
    first = db.session.scalars(
        select(Message).where(Message.conversation_id == conversation.id)
    ).first()
    assert first.auto_flag is not None  # the parser did flag it
    assert conversation.assignee_id is None
    assert activity_lines(conversation) == []
    assert db.session.get(InboxMember, (auto_inbox.id, ana.id)).last_assigned_at is None
    # ...and the round robin is not disturbed: the next real email still goes to Ana.
    assert deliver(email(2)).assignee_id == ana.id


@pytest.mark.parametrize("name", ["dsn-bounce.eml", "mailer-daemon.eml", "auto-submitted.eml"])
def test_corpus_bounces_and_auto_replies_are_not_assigned(deliver, auto_inbox, member, name):
    """No conversation has the corpus token here, so each one opens a new conversation."""
    ana = member(auto_inbox, "Ana Agent")
    conversation = deliver((CORPUS / name).read_bytes())
    first = db.session.scalars(
        select(Message).where(Message.conversation_id == conversation.id)
    ).first()
    assert first.auto_flag in ("bounce", "auto_reply") and first.threaded_by == "new"
    assert conversation.assignee_id is None
    assert activity_lines(conversation) == []
    assert db.session.get(InboxMember, (auto_inbox.id, ana.id)).last_assigned_at is None


def test_replies_into_an_existing_conversation_do_not_reassign(deliver, auto_inbox, member):
    ana = member(auto_inbox, "Ana Agent")
    ben = member(auto_inbox, "Ben Agent")
    conversation = deliver(email(1, sender="Jane Doe <jane@customer.example>"))
    assert conversation.assignee_id == ana.id

    reply = deliver(
        email(
            2,
            sender="Jane Doe <jane@customer.example>",
            subject="Re: Question number 1",
            in_reply_to="assign-1@customer.example",
        )
    )
    assert reply.id == conversation.id
    assert reply.assignee_id == ana.id
    assert activity_lines(reply) == ["Auto-assigned to Ana Agent"]
    assert db.session.get(InboxMember, (auto_inbox.id, ben.id)).last_assigned_at is None

    # Even when the conversation was unassigned meanwhile, a reply does not assign it.
    reply.assignee_id = None
    db.session.commit()
    again = deliver(
        email(
            3,
            sender="Jane Doe <jane@customer.example>",
            subject="Re: Question number 1",
            in_reply_to="assign-2@customer.example",
        )
    )
    assert again.id == conversation.id and again.assignee_id is None
    assert db.session.get(InboxMember, (auto_inbox.id, ben.id)).last_assigned_at is None
