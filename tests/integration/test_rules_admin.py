"""The automation admin pages through their forms: an inbox's rules (create, edit, try, reorder,
disable, delete), each bad input answered 422 with what to fix, the global rules page, business
hours with the auto-acknowledgement, and agents kept out of all of it."""

from __future__ import annotations

import re
from html import unescape

import pytest
from sqlalchemy import select

from extensions import db
from models import SavedReply
from models.automations import AutoAcknowledgement, AutomationRule
from tests.conftest import csrf_token_from
from tests.support.workspace import make_team, quick_conversation


@pytest.fixture
def team(inbox, make_user):
    return make_team(inbox, make_user)


@pytest.fixture
def admin(client, auth, team):
    response = auth.login(team.ana.email, team.ana.plain_password)
    assert response.status_code in (302, 303)
    return team.ana


def token(client, path="/admin/inboxes") -> str:
    return csrf_token_from(client.get(path).get_data(as_text=True))


def rule_data(client, path, **fields) -> dict:
    """A filled-in rule form: one condition (from ends with @vip.example), one action
    (add label vip), plus `fields` (keys as the form posts them)."""
    data = {
        "csrf_token": token(client, path),
        "name": "VIP customers",
        "match": "all",
        "conditions-0-field": "from",
        "conditions-0-op": "ends_with",
        "conditions-0-value": "@vip.example",
        "actions-0-type": "add_labels",
        "actions-0-labels": "vip, priority",
        "enabled": "y",
        "go": "save",
    }
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


def text(response) -> str:
    return unescape(response.get_data(as_text=True))


def rules():
    return list(db.session.scalars(select(AutomationRule).order_by(AutomationRule.position)))


def new_rule(client, inbox, **fields):
    path = f"/admin/inboxes/{inbox.id}/rules/new"
    return client.post(path, data=rule_data(client, path, **fields))


def test_create_edit_reorder_disable_delete(client, admin, team):
    support = team.support
    page = client.get(f"/admin/inboxes/{support.id}/settings?section=rules")
    assert page.status_code == 200
    assert "No rules yet" in text(page) and "New rule" in text(page)
    form = client.get(f"/admin/inboxes/{support.id}/rules/new")
    assert form.status_code == 200
    assert 'name="conditions-0-field"' in text(form) and 'name="actions-0-type"' in text(form)

    response = new_rule(client, support)
    assert response.status_code == 303, text(response)
    assert response.headers["Location"].endswith(
        f"/admin/inboxes/{support.id}/settings?section=rules"
    )
    (rule,) = rules()
    assert (rule.inbox_id, rule.name, rule.match, rule.enabled) == (
        support.id,
        "VIP customers",
        "all",
        True,
    )
    assert rule.conditions == [{"field": "from", "op": "ends_with", "value": "@vip.example"}]
    assert rule.actions == [{"type": "add_labels", "labels": ["vip", "priority"]}]

    listing = text(client.get(f"/admin/inboxes/{support.id}/settings?section=rules"))
    assert "VIP customers" in listing
    assert (
        'From (address) ends with "@vip.example"' in listing
        and "Add labels vip, priority" in listing
    )
    assert "Not fired yet." in listing

    # Edit: the form shows the stored rule; change it to assign Bob, stop after it.
    edit_path = f"/admin/inboxes/{support.id}/rules/{rule.id}"
    edit = text(client.get(edit_path))
    assert 'value="VIP customers"' in edit and 'value="@vip.example"' in edit
    response = client.post(
        edit_path,
        data=rule_data(
            client,
            edit_path,
            name="Big customers",
            **{"actions-0-type": "assign", "actions-0-user_id": str(team.bob.id)},
            stop_after="y",
        ),
    )
    assert response.status_code == 303, text(response)
    db.session.refresh(rule)
    assert (rule.name, rule.stop_after) == ("Big customers", True)
    assert rule.actions == [{"type": "assign", "user_id": team.bob.id}]

    # A second rule goes last; moving it up puts it first.
    assert new_rule(client, support, name="Second").status_code == 303
    second = rules()[-1]
    assert [r.name for r in rules()] == ["Big customers", "Second"]
    csrf = token(client, f"/admin/inboxes/{support.id}/settings?section=rules")
    response = client.post(
        f"/admin/inboxes/{support.id}/rules/{second.id}/move",
        data={"csrf_token": csrf, "direction": "up"},
    )
    assert response.status_code == 303
    db.session.expire_all()
    assert [r.name for r in rules()] == ["Second", "Big customers"]

    # Disable, enable.
    toggle = f"/admin/inboxes/{support.id}/rules/{second.id}/toggle"
    assert client.post(toggle, data={"csrf_token": csrf}).status_code == 303
    db.session.expire_all()
    assert db.session.get(AutomationRule, second.id).enabled is False
    assert "Disabled" in text(client.get(f"/admin/inboxes/{support.id}/settings?section=rules"))
    client.post(toggle, data={"csrf_token": csrf})
    db.session.expire_all()
    assert db.session.get(AutomationRule, second.id).enabled is True

    # No token, no change.
    assert client.post(toggle).status_code == 400

    # Delete.
    response = client.post(
        f"/admin/inboxes/{support.id}/rules/{second.id}/delete", data={"csrf_token": csrf}
    )
    assert response.status_code == 303
    db.session.expire_all()
    assert [r.name for r in rules()] == ["Big customers"]


def test_rows_are_added_and_removed_without_javascript(client, admin, team):
    path = f"/admin/inboxes/{team.support.id}/rules/new"
    response = client.post(path, data=rule_data(client, path, go="add_condition"))
    assert response.status_code == 200
    page = text(response)
    assert 'name="conditions-1-field"' in page and "Condition 2" in page
    assert 'value="@vip.example"' in page, "what was typed stays"
    assert rules() == [], "adding a row saves nothing"

    data = rule_data(client, path, go="add_action")
    page = text(client.post(path, data=data))
    assert 'name="actions-1-type"' in page

    data = rule_data(
        client,
        path,
        go="remove_condition-0",
        **{"conditions-1-field": "subject", "conditions-1-op": "contains"},
        **{"conditions-1-value": "refund"},
    )
    page = text(client.post(path, data=data))
    assert 'value="refund"' in page and 'value="@vip.example"' not in page

    # Without JavaScript, "refresh" shows the chosen field's tests and values.
    data = rule_data(client, path, go="refresh", **{"conditions-0-field": "has_attachments"})
    page = text(client.post(path, data=data))
    assert re.search(
        r'<select name="conditions-0-value" id="conditions-0-value-has_attachments">', page
    )
    assert re.search(r'<option value="contains"[^>]* hidden disabled>', page)

    # Blank rows are left out; a rule of two conditions saves both.
    data = rule_data(
        client,
        path,
        match="any",
        **{"conditions-1-field": "kind", "conditions-1-op": "is", "conditions-1-value": "new"},
        **{"actions-1-type": ""},
    )
    assert client.post(path, data=data).status_code == 303
    (rule,) = rules()
    assert rule.match == "any"
    assert rule.conditions[1] == {"field": "kind", "op": "is", "value": "new"}
    assert len(rule.actions) == 1


def error_beside(page: str, row_id: str) -> str:
    """The error shown in the row (or field) with this id."""
    match = re.search(rf'id="{row_id}-error">([^<]+)<', page)
    assert match, f"no error beside {row_id}"
    return match.group(1)


@pytest.mark.parametrize(
    "fields, where, message",
    [
        ({"conditions-0-field": ""}, "conditions", "Add at least one condition."),
        ({"actions-0-type": ""}, "actions", "Add at least one action."),
        (
            {"conditions-0-op": "matches", "conditions-0-value": "([a-z"},
            "conditions-0",
            "The pattern '([a-z' is not valid",
        ),
        ({"name": ""}, "name", "Give the rule a name."),
        ({"conditions-0-value": ""}, "conditions-0", "give a value to compare with"),
    ],
)
def test_bad_rules_are_refused_beside_the_row(client, admin, team, fields, where, message):
    response = new_rule(client, team.support, **fields)
    assert response.status_code == 422
    assert message in error_beside(text(response), where)
    assert "Not saved" in text(response)
    assert rules() == []


def test_an_agent_who_is_not_a_member_cannot_be_assigned(client, admin, team):
    fields = {"actions-0-type": "assign", "actions-0-user_id": str(team.olga.id)}
    response = new_rule(client, team.support, **fields)
    assert response.status_code == 422
    assert "Olga Outsider is not a member of Support." in error_beside(text(response), "actions-0")
    # Round robin too; Bob (member) and Ana (admin) are fine.
    fields = {
        "actions-0-type": "round_robin",
        "actions-0-user_ids": [str(team.bob.id), str(team.ana.id)],
    }
    assert new_rule(client, team.support, **fields).status_code == 303
    assert rules()[0].actions == [
        {"type": "round_robin", "user_ids": sorted([team.bob.id, team.ana.id])}
    ]


def test_each_action_type_saves_its_parameters(client, admin, team):
    reply = SavedReply(name="Thanks", body="Thanks!", inbox_id=None)
    db.session.add(reply)
    db.session.commit()
    path = f"/admin/inboxes/{team.support.id}/rules/new"
    form = text(client.get(path))
    assert ">Thanks</option>" in form, "the saved reply is offered"
    assert (
        ">Olga Outsider</option>"
        not in form.split('name="actions-0-user_ids"')[0].split('name="actions-0-user_id"')[-1]
    ), "the assignee list holds members and admins only"
    actions = {
        "actions-0-type": "set_status",
        "actions-0-status": "resolved",
        "actions-1-type": "snooze",
        "actions-1-hours": "4",
        "actions-2-type": "add_note",
        "actions-2-text": "VIP: answer within the hour",
        "actions-3-type": "send_saved_reply",
        "actions-3-saved_reply_id": str(reply.id),
        "actions-4-type": "notify",
        "actions-4-user_ids": [str(team.olga.id)],
        "actions-5-type": "mark_spam",
        # Parameters of other types in a row are ignored.
        "actions-5-labels": "ignored",
    }
    response = client.post(path, data=rule_data(client, path, **actions))
    assert response.status_code == 303, text(response)
    assert rules()[0].actions == [
        {"type": "set_status", "status": "resolved"},
        {"type": "snooze", "hours": 4},
        {"type": "add_note", "text": "VIP: answer within the hour"},
        {"type": "send_saved_reply", "saved_reply_id": reply.id},
        {"type": "notify", "user_ids": [team.olga.id]},
        {"type": "mark_spam"},
    ]


def test_try_it_shows_the_verdict_and_saves_nothing(client, admin, team):
    vip = quick_conversation(team.support, "Where is my order", email="carla@vip.example")
    quick_conversation(team.support, "Unrelated", email="dan@other.example")
    path = f"/admin/inboxes/{team.support.id}/rules/new"
    form = text(client.get(path))
    assert "Where is my order — carla@vip.example" in form
    message = vip.messages[0]
    response = client.post(path, data=rule_data(client, path, go="try", sample=str(message.id)))
    assert response.status_code == 200
    page = text(response)
    assert "Would match: yes" in page
    assert "✓" in page and "Would do: " in page and "vip" in page.split("Would do:")[1]
    assert rules() == [], "trying saves nothing"
    assert "VIP customers" in page, "the form keeps what was typed"

    other = {"conditions-0-value": "@nobody.example"}
    response = client.post(
        path, data=rule_data(client, path, go="try", sample=str(message.id), **other)
    )
    page = text(response)
    assert "Would match: no" in page and "✗" in page and "Would do: nothing" in page

    # A message of another inbox is not offered and not accepted.
    elsewhere = quick_conversation(team.billing, "Billing question").messages[0]
    response = client.post(path, data=rule_data(client, path, go="try", sample=str(elsewhere.id)))
    assert "Choose one of this inbox's emails." in text(response)


def test_business_hours_and_acknowledgement(client, admin, team):
    support = team.support
    page = client.get(f"/admin/inboxes/{support.id}/settings?section=hours")
    assert page.status_code == 200 and "Weekly hours" in text(page)
    path = f"/admin/inboxes/{support.id}/hours"
    good = {
        "csrf_token": token(client, f"/admin/inboxes/{support.id}/settings?section=hours"),
        "time_zone": "europe/berlin",
        "hours": "mon-fri 09:00-17:00\nsat 10:00-13:00, 14:00-16:00",
        "holidays": "2026-12-25\n2026-12-26",
        "ack_enabled": "y",
        "ack_outside_hours_only": "y",
        "ack_subject": "",
        "ack_body": "Thanks {{contact.name}}, we got #{{conversation.number}}.",
        "ack_window": "1440",
    }
    response = client.post(path, data=good)
    assert response.status_code == 303, text(response)
    db.session.expire_all()
    assert support.time_zone == "Europe/Berlin"
    assert support.business_hours["mon"] == [["09:00", "17:00"]]
    assert support.business_hours["sat"] == [["10:00", "13:00"], ["14:00", "16:00"]]
    assert support.holidays == ["2026-12-25", "2026-12-26"]
    ack = db.session.get(AutoAcknowledgement, support.id)
    assert (ack.enabled, ack.outside_hours_only, ack.window_minutes) == (True, True, 1440)
    assert ack.body.startswith("Thanks {{contact.name}}")
    shown = text(client.get(f"/admin/inboxes/{support.id}/settings?section=hours"))
    assert "mon-fri 09:00-17:00" in shown or "mon" in shown and "09:00-17:00" in shown
    assert "2026-12-25" in shown and 'value="Europe/Berlin"' in shown

    bad_cases = [
        ({"hours": "mon 09:00-12:00, 11:00-13:00"}, "hours", "overlap"),
        ({"hours": "mon 25:00-26:00"}, "hours", ""),
        ({"holidays": "christmas"}, "holidays", ""),
        ({"ack_body": ""}, "ack_body", "Write the message to send"),
        ({"ack_window": "0"}, "ack_window", "from 1 to 43200"),
        ({"ack_window": "50000"}, "ack_window", "from 1 to 43200"),
        ({"time_zone": "Mars/Olympus"}, "timezone-input", "is not a time zone"),
    ]
    for change, field, message in bad_cases:
        response = client.post(path, data={**good, **change})
        assert response.status_code == 422, change
        assert message in error_beside(text(response), field), change
    db.session.expire_all()
    assert support.business_hours["mon"] == [["09:00", "17:00"]], "nothing bad was saved"


def test_global_rules_page(client, admin, team):
    page = client.get("/admin/inboxes")
    assert 'href="/admin/rules"' in text(page)
    assert "No global rules" in text(client.get("/admin/rules"))
    path = "/admin/rules/new"
    # A global rule assigns to admins only.
    fields = {"actions-0-type": "assign", "actions-0-user_id": str(team.bob.id)}
    response = client.post(path, data=rule_data(client, path, **fields))
    assert response.status_code == 422
    assert "a rule for every inbox can only assign to admins" in text(response)
    fields["actions-0-user_id"] = str(team.ana.id)
    response = client.post(path, data=rule_data(client, path, name="Everywhere", **fields))
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/admin/rules")
    (rule,) = rules()
    assert rule.inbox_id is None
    assert "Everywhere" in text(client.get("/admin/rules"))
    # The inbox's Rules tab shows it, read-only, with a link to manage it.
    tab = text(client.get(f"/admin/inboxes/{team.support.id}/settings?section=rules"))
    assert "Everywhere" in tab and "Manage the global rules" in tab
    assert f"/admin/rules/{rule.id}" not in tab
    # An inbox's pages do not reach a global rule, nor another inbox's.
    assert client.get(f"/admin/inboxes/{team.support.id}/rules/{rule.id}").status_code == 404
    csrf = token(client, "/admin/rules")
    response = client.post(f"/admin/rules/{rule.id}/delete", data={"csrf_token": csrf})
    assert response.status_code == 303 and rules() == []


def test_an_agent_reaches_none_of_it(client, auth, team):
    rule = AutomationRule(
        inbox_id=team.support.id, name="R", conditions=[], actions=[], match="all"
    )
    db.session.add(rule)
    db.session.commit()
    auth.login(team.bob.email, team.bob.plain_password)
    csrf = token(client, "/conversations")
    support = team.support.id
    for path in (
        f"/admin/inboxes/{support}/settings?section=rules",
        f"/admin/inboxes/{support}/settings?section=hours",
        f"/admin/inboxes/{support}/rules/new",
        f"/admin/inboxes/{support}/rules/{rule.id}",
        "/admin/rules",
        "/admin/rules/new",
    ):
        assert client.get(path).status_code == 403, path
    for path in (
        f"/admin/inboxes/{support}/rules/new",
        f"/admin/inboxes/{support}/rules/{rule.id}/move",
        f"/admin/inboxes/{support}/rules/{rule.id}/toggle",
        f"/admin/inboxes/{support}/rules/{rule.id}/delete",
        f"/admin/inboxes/{support}/hours",
        "/admin/rules/new",
    ):
        assert client.post(path, data={"csrf_token": csrf}).status_code == 403, path
    assert db.session.get(AutomationRule, rule.id) is not None
