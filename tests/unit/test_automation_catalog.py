"""validate_rule: what a rule may hold, and the form errors that say what to fix."""

import pytest

from extensions import db
from models import InboxMember, SavedReply
from services.automations.catalog import (
    RuleError,
    describe_action,
    describe_condition,
    validate_rule,
)

NEW = {"field": "kind", "op": "is", "value": "new"}
LABEL = {"type": "add_labels", "labels": "vip, Urgent"}


def error(inbox, name="Rule", match="all", conditions=(NEW,), actions=(LABEL,)) -> RuleError:
    with pytest.raises(RuleError) as caught:
        validate_rule(inbox, name, match, list(conditions), list(actions))
    return caught.value


def test_a_valid_rule_comes_back_cleaned(app, inbox):
    clean = validate_rule(
        inbox,
        "  VIP   customers ",
        "any",
        [NEW, {"field": "from", "op": "ends_with", "value": " @VIP.Example "}],
        [LABEL, {"type": "snooze", "hours": "4"}],
    )
    assert clean.name == "VIP customers" and clean.match == "any"
    assert clean.conditions[1] == {"field": "from", "op": "ends_with", "value": "@vip.example"}
    assert clean.actions == [
        {"type": "add_labels", "labels": ["vip", "Urgent"]},
        {"type": "snooze", "hours": 4},
    ]


def test_a_pattern_is_kept_as_typed(app, inbox):
    condition = {"field": "subject", "op": "matches", "value": r"Order #\d+"}
    clean = validate_rule(inbox, "Orders", "all", [condition], [LABEL])
    assert clean.conditions[0]["value"] == r"Order #\d+"


@pytest.mark.parametrize(
    ("options", "where", "says"),
    [
        ({"name": "  "}, "name", "Give the rule a name."),
        ({"name": "x" * 121}, "name", "at most 120 characters"),
        ({"match": "some"}, "match", "all or any"),
        ({"conditions": ()}, "conditions", "at least one condition"),
        ({"actions": ()}, "actions", "at least one action"),
        ({"conditions": ["nope"]}, "conditions.0", "needs a field"),
        (
            {"conditions": [{"field": "size", "op": "is", "value": "1"}]},
            "conditions.0",
            "Choose what",
        ),
        (
            {"conditions": [{"field": "from", "op": "sounds_like", "value": "x"}]},
            "conditions.0",
            "choose one of",
        ),
        (
            {"conditions": [{"field": "from", "op": "is", "value": " "}]},
            "conditions.0",
            "give a value",
        ),
        (
            {"conditions": [{"field": "kind", "op": "is", "value": "old"}]},
            "conditions.0",
            "choose a new",
        ),
        (
            {"conditions": [NEW, {"field": "subject", "op": "matches", "value": "(unclosed"}]},
            "conditions.1",
            "is not valid",
        ),
        (
            {"conditions": [{"field": "hours", "op": "is", "value": "within"}]},
            "conditions.0",
            "business hours first",
        ),
        ({"actions": [{"type": "explode"}]}, "actions.0", "Choose what the action does."),
        ({"actions": [{"type": "add_labels", "labels": []}]}, "actions.0", "at least one label"),
        ({"actions": [{"type": "add_labels", "labels": 7}]}, "actions.0", "name the labels"),
        (
            {"actions": [{"type": "set_status", "status": "open"}]},
            "actions.0",
            "pending or resolved",
        ),
        ({"actions": [{"type": "snooze", "hours": 0}]}, "actions.0", "Snooze for 1 to"),
        ({"actions": [{"type": "add_note", "text": " "}]}, "actions.0", "Write the note."),
        ({"actions": [{"type": "assign", "user_id": "abc"}]}, "actions.0", "Choose a person"),
        ({"actions": [{"type": "assign", "user_id": 999999}]}, "actions.0", "active person"),
        (
            {"actions": [{"type": "round_robin", "user_ids": []}]},
            "actions.0",
            "at least one person",
        ),
        (
            {"actions": [{"type": "send_saved_reply", "saved_reply_id": 999999}]},
            "actions.0",
            "shared saved reply",
        ),
    ],
)
def test_what_to_fix(app, inbox, options, where, says):
    found = error(inbox, **options)
    assert found.where == where and says in str(found), str(found)


def test_an_agent_must_be_a_member_of_the_inbox(app, inbox, make_user):
    ana = make_user(name="Ana Agent")
    found = error(inbox, actions=[{"type": "assign", "user_id": ana.id}])
    assert str(found) == "Ana Agent is not a member of Support."
    db.session.add(InboxMember(inbox_id=inbox.id, user_id=ana.id))
    db.session.commit()
    clean = validate_rule(inbox, "r", "all", [NEW], [{"type": "assign", "user_id": ana.id}])
    assert clean.actions == [{"type": "assign", "user_id": ana.id}]
    # A rule for every inbox assigns only to admins.
    found = error(None, actions=[{"type": "round_robin", "user_ids": [ana.id]}])
    assert "a rule for every inbox can only assign to admins" in str(found)


def test_a_deactivated_person_cannot_be_chosen(app, inbox, make_user):
    admin = make_user(name="Ada Admin", role="admin")
    admin.active = False
    db.session.commit()
    found = error(inbox, actions=[{"type": "notify", "user_ids": [admin.id]}])
    assert found.where == "actions.0" and "active person" in str(found)


def test_a_saved_reply_of_another_inbox_or_a_personal_one_is_refused(app, inbox, make_user):
    from models import Inbox

    other = Inbox(name="Sales", support_address="sales@example.com")
    db.session.add(other)
    db.session.flush()
    ana = make_user()
    theirs = SavedReply(name="Theirs", body="x", inbox_id=other.id)
    personal = SavedReply(name="Mine", body="x", owner_id=ana.id)
    shared = SavedReply(name="Thanks", body="x")
    db.session.add_all([theirs, personal, shared])
    db.session.commit()
    for reply in (theirs, personal):
        found = error(inbox, actions=[{"type": "send_saved_reply", "saved_reply_id": reply.id}])
        assert "shared saved reply" in str(found)
    clean = validate_rule(
        inbox, "r", "all", [NEW], [{"type": "send_saved_reply", "saved_reply_id": shared.id}]
    )
    assert clean.actions[0]["saved_reply_id"] == shared.id


def test_descriptions_read_as_sentences():
    assert describe_condition({"field": "from", "op": "ends_with", "value": "@vip.example"}) == (
        'From (address) ends with "@vip.example"'
    )
    assert describe_condition({"field": "hours", "op": "is", "value": "outside"}) == (
        "Arrived is outside business hours"
    )
    assert describe_action({"type": "assign", "user_id": 3}, {3: "Ana"}) == "Assign to Ana"
    assert describe_action({"type": "round_robin", "user_ids": [3, 4]}, {3: "Ana"}) == (
        "Assign round robin among Ana, #4"
    )
    assert describe_action({"type": "snooze", "hours": 4}) == "Snooze for 4 h"
    assert describe_action({"type": "mark_spam"}) == "Mark as spam"
