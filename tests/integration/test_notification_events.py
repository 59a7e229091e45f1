"""Who hears of what (services/notifications/events.py), through the paths that make it
happen: customer email through the relay ingress and the worker, an agent's assignment,
auto-assignment and rules, a note's @mention, a reply the SMTP server refuses."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from markupsafe import Markup
from sqlalchemy import select

from extensions import db
from jobs.send_message import send_message
from models import (
    Conversation,
    InboxMember,
    Notification,
    NotificationThread,
    User,
    utcnow,
)
from services.conversations import update_conversation
from services.notifications import events, mentions
from services.replies import create_reply
from tests.conftest import global_smtp
from tests.support.automations import rule
from tests.support.inbound import post_relay, work_inbound


@pytest.fixture
def app_config(app_config, smtp):
    return {**app_config, **global_smtp(smtp)}


@pytest.fixture
def team(inbox, make_user):
    """Two members of the inbox, an admin who is not a member, an agent of another inbox."""
    ana = make_user(email="ana@example.com", name="Ana Agent")
    bob = make_user(email="bob@example.com", name="Bob Builder")
    admin = make_user(email="ada@example.com", name="Ada Admin", role="admin")
    outsider = make_user(email="out@example.com", name="Otto Outsider")
    db.session.add_all([InboxMember(inbox_id=inbox.id, user_id=u.id) for u in (ana, bob)])
    db.session.commit()
    return {"ana": ana, "bob": bob, "admin": admin, "outsider": outsider}


def customer_email(message_id="m1@customer.example", extra="", subject="Printer on fire"):
    return (
        "From: Carla Customer <carla@customer.example>\r\nTo: support@example.com\r\n"
        f"Subject: {subject}\r\nMessage-ID: <{message_id}>\r\n{extra}\r\nHelp, it burns.\r\n"
    ).encode()


def deliver(app, client, **kwargs) -> Conversation:
    post_relay(client, customer_email(**kwargs))
    work_inbound(app)
    return db.session.scalars(select(Conversation).order_by(Conversation.id.desc())).first()


def told(event=None) -> list[tuple[str, str, str | None, bool]]:
    """(person, event, email state, in app) of every notification, in order."""
    db.session.expire_all()
    query = select(Notification).order_by(Notification.id)
    if event:
        query = query.where(Notification.event == event)
    return [(n.user.email, n.event, n.email, n.in_app) for n in db.session.scalars(query)]


def test_a_new_conversation_tells_the_inboxs_members_in_the_app(app, client, team):
    conversation = deliver(app, client)
    assert sorted(told()) == [
        ("ana@example.com", "new_conversation", None, True),
        ("bob@example.com", "new_conversation", None, True),
    ]
    note = db.session.scalars(select(Notification)).first()
    assert note.conversation_id == conversation.id and note.actor_id is None
    assert note.message.direction == "incoming"
    # In the app only by default: no email is due.
    assert db.session.scalars(select(NotificationThread)).all() == []


def test_deactivated_people_and_lost_access_hear_nothing(app, client, team):
    team["bob"].active = False
    db.session.commit()
    deliver(app, client)
    assert [who for who, *_ in told()] == ["ana@example.com"]


def test_being_assigned_by_a_colleague_is_emailed_and_shown(app, client, team):
    conversation = deliver(app, client)
    update_conversation(conversation, team["ana"], assignee_id=team["bob"].id)
    assert told("assigned") == [("bob@example.com", "assigned", "pending", True)]
    note = db.session.scalars(select(Notification).where(Notification.event == "assigned")).one()
    assert note.actor_id == team["ana"].id
    [thread] = db.session.scalars(select(NotificationThread)).all()
    assert thread.user_id == team["bob"].id and thread.due_at is not None
    assert thread.due_at <= utcnow() + events.FIRST_DELAY


def test_nobody_hears_of_their_own_action(app, client, team):
    conversation = deliver(app, client)
    update_conversation(conversation, team["ana"], assignee_id=team["ana"].id)
    assert told("assigned") == []


def test_auto_assignment_and_rules_tell_the_assignee(app, client, inbox, team):
    inbox.auto_assign = True
    team["ana"].availability = team["bob"].availability = "online"
    db.session.commit()
    conversation = deliver(app, client)
    assignee = conversation.assignee
    assert told("assigned") == [(assignee.email, "assigned", "pending", True)]

    rule(
        inbox,
        "Toner to Bob",
        [{"field": "subject", "op": "contains", "value": "toner"}],
        [{"type": "assign", "user_id": team["bob"].id}],
    )
    deliver(app, client, message_id="m2@customer.example", subject="Out of toner")
    assigned = [n for n in told("assigned") if n[0] == "bob@example.com"]
    assert assigned == [("bob@example.com", "assigned", "pending", True)]


def test_a_customer_answer_tells_the_assignee_or_else_the_inbox(app, client, team):
    conversation = deliver(app, client)
    reference = "In-Reply-To: <m1@customer.example>\r\n"
    deliver(app, client, message_id="m2@customer.example", extra=reference)
    assert sorted(told("unassigned_reply")) == [
        ("ana@example.com", "unassigned_reply", None, True),
        ("bob@example.com", "unassigned_reply", None, True),
    ]
    update_conversation(conversation, team["ana"], assignee_id=team["bob"].id)
    deliver(app, client, message_id="m3@customer.example", extra=reference)
    assert told("customer_reply") == [("bob@example.com", "customer_reply", "pending", True)]


def test_preferences_choose_email_and_the_app_per_event(app, client, team):
    events.set_preferences(team["ana"], {"new_conversation": (True, False)})
    events.set_preferences(team["bob"], {"new_conversation": (False, False)})
    assert events.preferences(team["ana"])["new_conversation"] == (True, False)
    assert events.preferences(team["ana"])["mention"] == events.DEFAULTS["mention"]
    deliver(app, client)
    assert told() == [("ana@example.com", "new_conversation", "pending", False)]
    assert events.unread_count(team["ana"]) == 0  # not in the app
    with pytest.raises(ValueError, match="unknown notification event"):
        events.set_preferences(team["ana"], {"coffee": (True, True)})
    events.set_email_preference(team["ana"].id, "new_conversation", False)
    assert events.preferences(team["ana"])["new_conversation"] == (False, False)


def test_later_events_fold_into_the_pending_email(app, client, team):
    conversation = deliver(app, client)
    update_conversation(conversation, team["ana"], assignee_id=team["bob"].id)
    [thread] = db.session.scalars(select(NotificationThread)).all()
    due = thread.due_at
    reference = "In-Reply-To: <m1@customer.example>\r\n"
    deliver(app, client, message_id="m2@customer.example", extra=reference)
    db.session.refresh(thread)
    assert thread.due_at == due  # folded into the pending one
    assert [e for _, e, state, _ in told() if state == "pending"] == ["assigned", "customer_reply"]

    # After an email went out, the next one waits out the fold window.
    thread.due_at, thread.last_sent_at = None, utcnow()
    db.session.commit()
    deliver(app, client, message_id="m3@customer.example", extra=reference)
    db.session.refresh(thread)
    assert thread.due_at >= thread.last_sent_at + events.FOLD - timedelta(seconds=1)


def test_a_notes_mentions_tell_the_people_named_once(app, client, team):
    conversation = deliver(app, client)
    text = "@bob builder and @Ada Admin, see this. @Ana Agent (me) and @Otto Outsider; @Bob Builder"
    create_reply(conversation, team["ana"], text, private=True)
    assert told("mention") == [
        ("bob@example.com", "mention", "pending", True),
        ("ada@example.com", "mention", "pending", True),
    ]
    note = db.session.scalars(select(Notification).where(Notification.event == "mention")).first()
    assert note.actor_id == team["ana"].id and note.message.direction == "note"
    # An email reply mentions nobody.
    create_reply(conversation, team["ana"], "Thanks @Bob Builder")
    assert len(told("mention")) == 2


def test_mentions_match_whole_names_longest_first_and_highlight_escaped(app, inbox, make_user):
    ana = make_user(email="a1@example.com", name="Ana")
    ana_agent = make_user(email="a2@example.com", name="Ana Agent")
    db.session.add_all([InboxMember(inbox_id=inbox.id, user_id=u.id) for u in (ana, ana_agent)])
    db.session.commit()
    conversation = SimpleNamespace(inbox_id=inbox.id)
    found = mentions._spans("hi @ana agent, @Ana! x@Ana @Anatole", [ana, ana_agent])
    assert [(p.name, s, e) for s, e, p in found] == [("Ana Agent", 3, 13), ("Ana", 15, 19)]
    marked = mentions.highlight("<b>@Ana</b> & co", [ana])
    assert marked == Markup('&lt;b&gt;<mark class="mention">@Ana</mark>&lt;/b&gt; &amp; co')
    assert {u.id for u in mentions.mentionable(conversation)} == {ana.id, ana_agent.id}


def test_a_refused_reply_tells_its_author(app, client, team, smtp):
    conversation = deliver(app, client)
    smtp.data_replies[:] = ["554 5.7.1 Message rejected as spam"]
    reply = create_reply(conversation, team["ana"], "Buy now")
    send_message(reply.id)
    assert told("send_failed") == [("ana@example.com", "send_failed", "pending", True)]
    note = db.session.scalars(select(Notification).where(Notification.event == "send_failed")).one()
    assert note.message_id == reply.id and note.actor_id is None


def test_reading_marks_and_counts(app, client, team):
    first = deliver(app, client)
    deliver(app, client, message_id="m9@customer.example", subject="Another")
    ana = db.session.get(User, team["ana"].id)
    assert events.unread_count(ana) == 2
    assert [n.conversation_id for n in events.recent(ana)][-1] == first.id
    assert events.recent(ana, mentions_only=True) == []
    assert events.mark_read(ana, conversation_id=first.id) == 1
    assert events.unread_count(ana) == 1
    assert events.mark_read(ana) == 1
    assert events.unread_count(ana) == 0
    assert events.unread_count(team["bob"]) == 2  # only her own
