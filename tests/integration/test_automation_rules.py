"""Automation rules on incoming email (issue 16): real mail through the relay ingress and the
worker, each condition and action, order and stop, failures, exactly once, the dry run."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from extensions import db
from models import (
    Conversation,
    InboundEmail,
    InboxMember,
    Message,
    utcnow,
)
from services.automations import catalog, engine
from services.inbound_reprocess import reprocess
from services.labels import conversation_labels
from tests.conftest import global_smtp
from tests.support.automations import rule
from tests.support.inbound import deliver, work_inbound


@pytest.fixture
def app_config(app_config, smtp):
    return {**app_config, **global_smtp(smtp)}  # the notify action's emails


def email(
    message_id="m1@customer.example",
    sender="Carla Customer <Carla@Customer.example>",
    to="support@example.com",
    subject="Printer on fire",
    body="Hello, the printer is on fire.",
    extra="",
):
    return (
        f"From: {sender}\r\nTo: {to}\r\n{extra}Subject: {subject}\r\n"
        f"Message-ID: <{message_id}>\r\n\r\n{body}\r\n"
    ).encode()


def with_attachment(message_id="att@customer.example"):
    return (
        "From: carla@customer.example\r\nTo: support@example.com\r\nSubject: Invoice\r\n"
        f"Message-ID: <{message_id}>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
        '--b1\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename="a.pdf"'
        "\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b1--\r\n"
    ).encode()


def activity(conversation_id=None) -> list[str]:
    query = select(Message.text_body).where(Message.direction == "activity")
    if conversation_id is not None:
        query = query.where(Message.conversation_id == conversation_id)
    return list(db.session.scalars(query.order_by(Message.id)))


def labels_of(message: Message) -> list[str]:
    return [label.display_name for label in conversation_labels(message.conversation_id)]


def member(make_user, inbox, name, role="agent"):
    user = make_user(name=name, role=role)
    if role == "agent":
        db.session.add(InboxMember(inbox_id=inbox.id, user_id=user.id))
        db.session.commit()
    return user


# --- conditions ------------------------------------------------------------------------------

CONDITION_CASES = [
    # (condition, raw email, matches)
    ({"field": "kind", "op": "is", "value": "new"}, email(), True),
    ({"field": "kind", "op": "is", "value": "reply"}, email(), False),
    ({"field": "from", "op": "ends_with", "value": "@CUSTOMER.example"}, email(), True),
    ({"field": "from", "op": "is", "value": "carla@customer.example"}, email(), True),
    ({"field": "from", "op": "not_contains", "value": "customer"}, email(), False),
    (
        {"field": "to", "op": "is", "value": "billing@example.com"},
        email(to="support@example.com", extra="Cc: Billing <billing@example.com>\r\n"),
        True,
    ),
    ({"field": "to", "op": "is_not", "value": "support@example.com"}, email(), False),
    ({"field": "subject", "op": "contains", "value": "FIRE"}, email(), True),
    ({"field": "subject", "op": "starts_with", "value": "urgent"}, email(), False),
    ({"field": "subject", "op": "matches", "value": r"^printer\s+on"}, email(), True),
    ({"field": "text", "op": "contains", "value": "on fire"}, email(), True),
    ({"field": "text", "op": "matches", "value": r"invoice \d+"}, email(), False),
    ({"field": "has_attachments", "op": "is", "value": "yes"}, with_attachment(), True),
    ({"field": "has_attachments", "op": "is", "value": "no"}, with_attachment(), False),
    ({"field": "has_attachments", "op": "is", "value": "no"}, email(), True),
    (
        {"field": "automatic", "op": "is", "value": "auto_reply"},
        email(extra="Auto-Submitted: auto-replied\r\n"),
        True,
    ),
    (
        {"field": "automatic", "op": "is", "value": "bulk"},
        email(extra="Precedence: bulk\r\n"),
        True,
    ),
    ({"field": "automatic", "op": "is_not", "value": "bulk"}, email(), True),
    (
        {"field": "automatic", "op": "is_not", "value": "bulk"},
        email(extra="Precedence: list\r\n"),
        False,
    ),
]


@pytest.mark.parametrize(("condition", "raw", "matches"), CONDITION_CASES)
def test_each_condition(app, client, inbox, condition, raw, matches):
    found = rule(inbox, conditions=[condition])
    message = deliver(app, client, raw)
    assert message.rule_errors is None
    assert (labels_of(message) == ["vip"]) is matches
    db.session.refresh(found)
    assert found.fired_count == (1 if matches else 0)


def test_kind_reply_matches_the_second_email_of_a_thread(app, client, inbox):
    rule(inbox, conditions=[{"field": "kind", "op": "is", "value": "reply"}])
    first = deliver(app, client, email())
    assert labels_of(first) == []
    second = deliver(
        app,
        client,
        email("m2@customer.example", extra="In-Reply-To: <m1@customer.example>\r\n"),
    )
    assert second.conversation_id == first.conversation_id
    assert labels_of(second) == ["vip"]


@pytest.mark.parametrize(
    ("within", "value", "matches"),
    [(True, "within", True), (False, "within", False), (False, "outside", True)],
)
def test_business_hours_condition(app, client, inbox, monkeypatch, within, value, matches):
    from services.automations import conditions

    seen = []

    def within_hours(the_inbox, moment):
        seen.append((the_inbox.id, moment))
        return within

    monkeypatch.setattr(conditions, "within_hours", within_hours)
    inbox.business_hours = {"mon": [["09:00", "17:00"]]}
    db.session.commit()
    rule(inbox, conditions=[{"field": "hours", "op": "is", "value": value}])
    message = deliver(app, client, email())
    assert (labels_of(message) == ["vip"]) is matches
    assert seen and seen[0][0] == inbox.id
    assert abs(seen[0][1] - message.created_at) < timedelta(seconds=5)


def test_business_hours_condition_with_the_inbox_hours(app, client, inbox):
    """The real services/business_hours.py: open all week, then the day is a holiday (in the
    inbox's zone, so yesterday, today and tomorrow to stay clear of midnight)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    inbox.time_zone = "Pacific/Auckland"
    inbox.business_hours = {day: [["00:00", "24:00"]] for day in days}
    db.session.commit()
    rule(inbox, "open", [{"field": "hours", "op": "is", "value": "within"}], position=0)
    closed = [{"type": "add_labels", "labels": ["closed"]}]
    rule(inbox, "closed", [{"field": "hours", "op": "is", "value": "outside"}], closed)
    assert labels_of(deliver(app, client, email())) == ["vip"]

    today = datetime.now(ZoneInfo("Pacific/Auckland")).date()
    inbox.holidays = [(today + timedelta(days=n)).isoformat() for n in (-1, 0, 1)]
    db.session.commit()
    message = deliver(app, client, email("m2@customer.example", subject="Another"))
    assert labels_of(message) == ["closed"]


def test_business_hours_follow_the_inbox_zone_across_a_dst_change(app, client, inbox):
    """Berlin, 09:00-17:00 on weekdays: an email received at 07:30 UTC arrived at 09:30 in
    summer (CEST, within hours) and at 08:30 in winter (CET, outside). The stored email's
    arrival moment goes through the engine (dry run) with the real business hours."""
    from datetime import UTC, datetime

    inbox.time_zone = "Europe/Berlin"
    inbox.business_hours = {
        day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")
    }
    db.session.commit()
    message = deliver(app, client, email())
    outside = rule(inbox, "after hours", [{"field": "hours", "op": "is", "value": "outside"}])
    for moment, expected in (
        (datetime(2026, 3, 27, 7, 30, tzinfo=UTC), True),  # Friday before the change: CET
        (datetime(2026, 3, 30, 7, 30, tzinfo=UTC), False),  # Monday after it: CEST
        (datetime(2026, 10, 23, 7, 30, tzinfo=UTC), False),  # Friday before going back: CEST
        (datetime(2026, 10, 26, 7, 30, tzinfo=UTC), True),  # Monday after it: CET
    ):
        message.created_at = moment
        assert engine.dry_run(inbox, outside, message).matched is expected, moment
    db.session.rollback()


def test_match_all_needs_every_condition_any_needs_one(app, client, inbox):
    conditions = [
        {"field": "subject", "op": "contains", "value": "printer"},
        {"field": "from", "op": "ends_with", "value": "@elsewhere.example"},
    ]
    rule(inbox, "all of them", conditions, [{"type": "add_labels", "labels": ["all"]}])
    rule(inbox, "any of them", conditions, [{"type": "add_labels", "labels": ["any"]}], match="any")
    message = deliver(app, client, email())
    assert labels_of(message) == ["any"]


# --- actions ---------------------------------------------------------------------------------


def test_assign_labels_note_and_the_activity_lines(app, client, inbox, make_user):
    bob = member(make_user, inbox, "Bob Agent")
    rule(
        inbox,
        actions=[
            {"type": "assign", "user_id": bob.id},
            {"type": "add_labels", "labels": ["vip", "Priority"]},
            {"type": "add_note", "text": "Call them back within the hour."},
        ],
    )
    message = deliver(app, client, email())
    conversation = db.session.get(Conversation, message.conversation_id)
    assert conversation.assignee_id == bob.id
    assert labels_of(message) == ["Priority", "vip"]
    assert activity(conversation.id) == [
        "Rule 'VIP customers' assigned this to Bob Agent",
        "Rule 'VIP customers' labelled this vip, Priority",
    ]
    note = db.session.scalars(select(Message).where(Message.direction == "note")).one()
    assert note.sender_user_id is None and note.from_name == "Rule 'VIP customers'"
    assert note.text_body == "Call them back within the hour."
    assert note.conversation_id == conversation.id
    # Activity lines of a rule have no sender: nobody clicked.
    senders = db.session.scalars(
        select(Message.sender_user_id).where(Message.direction == "activity")
    ).all()
    assert set(senders) == {None}


def test_remove_labels_set_status_and_snooze(app, client, inbox):
    rule(inbox, "tag", actions=[{"type": "add_labels", "labels": ["new", "keep"]}], position=0)
    rule(
        inbox,
        "untag and park",
        actions=[
            {"type": "remove_labels", "labels": ["NEW"]},
            {"type": "set_status", "status": "pending"},
        ],
        position=1,
    )
    message = deliver(app, client, email())
    conversation = db.session.get(Conversation, message.conversation_id)
    assert labels_of(message) == ["keep"] and conversation.status == "pending"
    assert activity(conversation.id)[-2:] == [
        "Rule 'untag and park' removed the label new",
        "Rule 'untag and park' marked this conversation as pending",
    ]


def test_snooze_for_hours(app, client, inbox):
    rule(inbox, "later", actions=[{"type": "snooze", "hours": 24}])
    message = deliver(app, client, email())
    conversation = db.session.get(Conversation, message.conversation_id)
    assert conversation.status == "snoozed"
    expected = utcnow() + timedelta(hours=24)
    assert abs(conversation.snoozed_until - expected) < timedelta(minutes=1)
    assert activity(conversation.id)[0].startswith("Rule 'later' snoozed this conversation until")


def test_mark_spam_labels_resolves_in_one_line(app, client, inbox):
    rule(
        inbox,
        "Junk",
        [{"field": "subject", "op": "contains", "value": "fire"}],
        [{"type": "mark_spam"}],
    )
    message = deliver(app, client, email())
    conversation = db.session.get(Conversation, message.conversation_id)
    assert labels_of(message) == ["spam"] and conversation.status == "resolved"
    assert activity(conversation.id) == ["Rule 'Junk' marked this as spam"]


def test_round_robin_rotates_among_the_chosen_active_people(app, client, inbox, make_user):
    ana = member(make_user, inbox, "Ana Agent")
    bob = member(make_user, inbox, "Bob Agent")
    admin = member(make_user, inbox, "Ada Admin", role="admin")  # not a member: an admin
    member(make_user, inbox, "Cid Agent")  # a member, but not among the chosen
    rule(inbox, "spread", actions=[{"type": "round_robin", "user_ids": [ana.id, bob.id, admin.id]}])
    assignees = []
    for n in range(4):
        message = deliver(app, client, email(f"rr{n}@customer.example", subject=f"Case {n}"))
        assignees.append(db.session.get(Conversation, message.conversation_id).assignee_id)
    assert assignees[:3] == [ana.id, bob.id, admin.id]  # never assigned first, then by id
    assert assignees[3] == assignees[0]
    # A deactivated person drops out of the rotation.
    bob.active = False
    db.session.commit()
    for n in range(4, 7):
        message = deliver(app, client, email(f"rr{n}@customer.example", subject=f"Case {n}"))
        assert db.session.get(Conversation, message.conversation_id).assignee_id != bob.id


def test_notify_emails_each_active_person_after_the_commit(
    app, client, inbox, make_user, monkeypatch, smtp
):
    from worker import build_worker

    ana = member(make_user, inbox, "Ana Agent")
    gone = member(make_user, inbox, "Gone Agent")
    rule(inbox, "tell Ana", actions=[{"type": "notify", "user_ids": [ana.id, gone.id]}])
    gone.active = False
    db.session.commit()
    queued = []
    from services import automations

    real_run = automations.run

    def run(*args):
        effects = real_run(*args)
        queued.append(effects)
        return effects

    monkeypatch.setattr(automations, "run", run)
    message = deliver(app, client, email())
    [effects] = queued
    assert effects.notify == [(message.id, ana.id)]
    assert activity(message.conversation_id) == ["Rule 'tell Ana' notified Ana Agent by email"]

    # After the commit, services/automations.after_commit queued one job per person.
    before = len(smtp.envelopes)
    build_worker(app, ["default"], simple=True).work(burst=True)
    [envelope] = smtp.wait_for_messages(before + 1)[before:]
    assert envelope.rcpt_tos == [ana.email]
    sent = envelope.content.decode()
    conversation = db.session.get(Conversation, message.conversation_id)
    assert f"Subject: [#{conversation.display_number}] Printer on fire" in sent
    assert "Auto-Submitted: auto-generated" in sent
    assert f"http://localhost/conversations/{conversation.id}" in sent


# --- order, stop, scope ----------------------------------------------------------------------


def test_global_rules_run_first_then_the_inbox_by_position(app, client, inbox, make_user):
    ana = member(make_user, inbox, "Ana Admin", role="admin")
    rule(inbox, "inbox second", actions=[{"type": "add_labels", "labels": ["b"]}], position=2)
    rule(inbox, "inbox first", actions=[{"type": "add_labels", "labels": ["a"]}], position=1)
    rule(None, "everywhere", actions=[{"type": "assign", "user_id": ana.id}], position=9)
    rule(inbox, "disabled", actions=[{"type": "add_labels", "labels": ["x"]}], enabled=False)
    message = deliver(app, client, email())
    assert activity(message.conversation_id) == [
        "Rule 'everywhere' assigned this to Ana Admin",
        "Rule 'inbox first' labelled this a",
        "Rule 'inbox second' labelled this b",
    ]


def test_stop_after_ends_the_run_only_when_it_matched(app, client, inbox):
    rule(
        inbox,
        "no match, stop",
        [{"field": "subject", "op": "contains", "value": "zzz"}],
        position=0,
        stop_after=True,
    )
    rule(
        inbox,
        "stop here",
        actions=[{"type": "add_labels", "labels": ["one"]}],
        position=1,
        stop_after=True,
    )
    later = rule(inbox, "never", actions=[{"type": "add_labels", "labels": ["two"]}], position=2)
    message = deliver(app, client, email())
    assert labels_of(message) == ["one"]
    db.session.refresh(later)
    assert later.fired_count == 0 and later.last_fired_at is None


# --- failures, exactly once ------------------------------------------------------------------


def test_a_failing_rule_is_undone_recorded_and_delivery_goes_on(
    app, client, auth, inbox, make_user
):
    bob = member(make_user, inbox, "Bob Agent")
    broken = rule(
        inbox,
        "to Bob",
        actions=[{"type": "add_labels", "labels": ["half"]}, {"type": "assign", "user_id": bob.id}],
        position=0,
    )
    after = rule(inbox, "after", actions=[{"type": "add_labels", "labels": ["fine"]}], position=1)
    db.session.execute(
        InboxMember.__table__.delete().where(InboxMember.user_id == bob.id)
    )  # Bob leaves the inbox after the rule was saved
    db.session.commit()
    message = deliver(app, client, email())
    assert db.session.scalars(select(InboundEmail)).one().status == "delivered"
    assert (
        message.rule_errors
        == "Rule 'to Bob': cannot assign to Bob Agent: no longer a member of Support"
    )
    assert labels_of(message) == ["fine"]  # "half" was undone with its rule
    assert activity(message.conversation_id) == ["Rule 'after' labelled this fine"]
    db.session.refresh(broken)
    db.session.refresh(after)
    assert (broken.fired_count, after.fired_count) == (0, 1)
    # The thread says so on the email, for whoever reads it.
    admin = make_user(email="root@example.com", name="Root Admin", role="admin")
    auth.login(admin.email, admin.plain_password)
    page = client.get(f"/conversations/{message.conversation_id}").get_data(as_text=True)
    assert (
        "Automation failed: Rule &#39;to Bob&#39;: cannot assign to Bob Agent: "
        "no longer a member of Support"
    ) in page


def test_reprocessing_a_delivered_message_runs_no_rule_twice(app, client, inbox):
    found = rule(inbox, actions=[{"type": "add_note", "text": "Once."}])
    message = deliver(app, client, email())
    db.session.refresh(found)
    assert found.fired_count == 1 and found.last_fired_at is not None
    fired_at = found.last_fired_at
    reprocess(db.session.scalars(select(InboundEmail)).one())
    work_inbound(app)
    db.session.expire_all()
    row = db.session.scalars(select(InboundEmail)).one()
    assert row.status == "delivered" and row.attempts == 2
    assert (found.fired_count, found.last_fired_at) == (1, fired_at)
    notes = db.session.scalar(select(func.count()).where(Message.direction == "note"))
    assert notes == 1
    assert (
        db.session.scalar(
            select(func.count())
            .select_from(Message)
            .where(
                Message.conversation_id == message.conversation_id, Message.direction == "incoming"
            )
        )
        == 1
    )


# --- dry run ---------------------------------------------------------------------------------


def test_dry_run_against_a_stored_email_writes_nothing(app, client, inbox, make_user):
    bob = member(make_user, inbox, "Bob Agent")
    message = deliver(app, client, email(extra="Cc: billing@example.com\r\n"))
    deliver(
        app, client, email("m2@customer.example", extra="In-Reply-To: <m1@customer.example>\r\n")
    )
    clean = catalog.validate_rule(
        inbox,
        "Billing",
        "all",
        [
            {"field": "to", "op": "is", "value": "billing@example.com"},
            {"field": "kind", "op": "is", "value": "new"},
            {"field": "from", "op": "ends_with", "value": "@customer.example"},
        ],
        [{"type": "assign", "user_id": bob.id}, {"type": "add_labels", "labels": ["billing"]}],
    )
    before = db.session.scalar(select(func.count()).select_from(Message))
    result = engine.dry_run(inbox, clean, message)
    assert result.matched is True
    assert result.checks == [
        ('To or Cc (any address) is "billing@example.com"', True),
        ("The email is a new conversation", True),
        ('From (address) ends with "@customer.example"', True),
    ]
    assert result.would_do == ["Assign to Bob Agent", "Add labels billing"]
    reply = db.session.scalars(
        select(Message).where(Message.message_id == "m2@customer.example")
    ).one()
    second = engine.dry_run(inbox, clean, reply)
    assert second.matched is False and second.would_do == []
    assert [held for _, held in second.checks] == [False, False, True]
    assert not db.session.new and not db.session.dirty
    assert db.session.scalar(select(func.count()).select_from(Message)) == before
    assert labels_of(message) == []


def test_dry_run_of_a_saved_rule_with_match_any(app, client, inbox):
    message = deliver(app, client, email())
    saved = rule(
        inbox,
        "Either",
        [
            {"field": "subject", "op": "contains", "value": "nothing like it"},
            {"field": "automatic", "op": "is", "value": "bounce"},
        ],
        match="any",
    )
    result = engine.dry_run(inbox, saved, message)
    assert result.matched is False and result.would_do == []
    assert result.checks == [
        ('Subject contains "nothing like it"', False),
        ("Sent automatically is a bounce", False),
    ]
    db.session.refresh(saved)
    assert saved.fired_count == 0


# --- mail the rules send ---------------------------------------------------------------------


def outgoing() -> list[Message]:
    return list(
        db.session.scalars(
            select(Message).where(Message.direction == "outgoing").order_by(Message.id)
        )
    )


def test_send_saved_reply_queues_it_rendered_and_never_to_automatic_mail(app, client, inbox):
    from models import SavedReply

    reply = SavedReply(name="Thanks", body="Hello {{contact.name}}, see #{{conversation.number}}.")
    db.session.add(reply)
    db.session.commit()
    rule(inbox, "Thank", actions=[{"type": "send_saved_reply", "saved_reply_id": reply.id}])
    message = deliver(app, client, email())
    conversation = db.session.get(Conversation, message.conversation_id)
    [sent] = outgoing()
    assert sent.text_body == f"Hello Carla Customer, see #{conversation.display_number}."
    assert (sent.auto_flag, sent.delivery_status) == ("saved_reply", "queued")
    assert (
        sent.to_addresses.addresses() == ["carla@customer.example"] and sent.sender_user_id is None
    )
    assert activity(conversation.id) == [
        "Rule 'Thank' sent the saved reply 'Thanks' to carla@customer.example"
    ]

    auto = deliver(
        app,
        client,
        email("ooo@customer.example", subject="Away", extra="Auto-Submitted: auto-replied\r\n"),
    )
    assert len(outgoing()) == 1
    assert activity(auto.conversation_id) == [
        "Rule 'Thank' did not send the saved reply 'Thanks': it was sent automatically"
    ]


def test_a_deleted_saved_reply_fails_the_rule_only(app, client, inbox):
    from models import SavedReply

    reply = SavedReply(name="Gone soon", body="x")
    db.session.add(reply)
    db.session.commit()
    rule(inbox, "Reply", actions=[{"type": "send_saved_reply", "saved_reply_id": reply.id}])
    db.session.delete(reply)
    db.session.commit()
    message = deliver(app, client, email())
    assert outgoing() == []
    assert message.rule_errors == (
        f"Rule 'Reply': saved reply #{reply.id} was deleted or is no longer shared here"
    )


def test_acknowledge_action_sends_the_inbox_acknowledgement(app, client, inbox):
    rule(inbox, "Ack", actions=[{"type": "acknowledge"}])
    message = deliver(app, client, email())
    [sent] = outgoing()
    assert sent.auto_flag == "acknowledgement" and sent.conversation_id == message.conversation_id
    assert activity(message.conversation_id) == [
        "Rule 'Ack' sent the auto-acknowledgement to carla@customer.example"
    ]
