"""Automation rules in a real headless Chromium: an admin builds a rule with the mouse and the
keyboard (the field's tests and the action's parameters follow the choices), tries it against
an email, saves it and finds it on the Rules tab; then sets business hours and the
auto-acknowledgement.

Screenshots (1280 and 390 px, with the no-sideways-scroll and axe checks), in $TEST_ARTIFACTS
or the test's tmp_path: admin-rule-edit-*.png (the form with a dry run), admin-rules-*.png,
admin-global-rules-*.png and admin-hours-*.png.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from extensions import db
from models import Conversation, Inbox
from models.automations import AutoAcknowledgement, AutomationRule
from tests.support.screens import check_both_widths
from tests.support.workspace import make_team, quick_conversation

pytestmark = pytest.mark.e2e


@pytest.fixture
def team(app, make_user):
    support = Inbox(name="Support", support_address="support@example.com")
    db.session.add(support)
    db.session.commit()
    team = make_team(support, make_user)
    quick_conversation(support, "Where is my order?", email="carla@vip.example")
    quick_conversation(support, "Newsletter", email="news@lists.example")
    return team


def test_an_admin_builds_tries_and_saves_a_rule(page, sign_in, team, tmp_path):
    support = team.support
    sign_in(team.ana.email, team.ana.plain_password)
    page.goto(f"/admin/inboxes/{support.id}/settings")
    nav = page.get_by_role("navigation", name="Settings sections")
    nav.get_by_role("link", name="Rules").click()
    expect(page.get_by_role("heading", name="No rules yet")).to_be_visible()
    page.get_by_role("link", name="New rule").click()

    # The name by keyboard, the condition with the mouse.
    page.get_by_label("Name", exact=True).focus()
    page.keyboard.type("VIP customers")
    page.get_by_label("Condition 1: Looks at").select_option(label="From (address)")
    test = page.get_by_label("Condition 1: Test")
    test.select_option(label="ends with")
    page.locator("#conditions-0-value").fill("@vip.example")

    # A choice field offers its values in a select instead of the text box.
    page.get_by_role("button", name="Add condition").click()
    second = page.get_by_label("Condition 2: Looks at")
    expect(second).to_be_focused()
    expect(page.locator("#conditions-0-value")).to_have_value("@vip.example")
    second.select_option(label="The email")
    expect(page.locator("#conditions-1-value")).to_be_hidden()
    page.locator("#conditions-1-value-kind").select_option(label="a new conversation")

    # The action: choosing "Assign to" shows the assignee (members and admins only).
    page.get_by_label("Action 1: Does").select_option(label="Assign to")
    assignee = page.get_by_label("Action 1: Assignee")
    expect(assignee).to_be_visible()
    expect(page.get_by_label("Action 1: Labels")).to_be_hidden()
    assert "Olga Outsider" not in assignee.inner_text()
    assignee.select_option(label="Bob Agent")

    # A second action added and filled by keyboard alone.
    page.get_by_role("button", name="Add action").focus()
    page.keyboard.press("Enter")
    does = page.get_by_label("Action 2: Does")
    expect(does).to_be_focused()
    does.select_option(label="Add labels")  # a select's own keys differ per platform
    labels = page.get_by_label("Action 2: Labels")
    expect(labels).to_be_visible()  # as a keyboard user sees it appear before tabbing on
    page.keyboard.press("Tab")
    expect(labels).to_be_focused()
    page.keyboard.type("vip")

    # Try it against the VIP email: it would match, nothing is saved.
    page.get_by_label("Email to try it on").select_option(
        label="Where is my order? — carla@vip.example"
    )
    page.get_by_role("button", name="Try it").click()
    result = page.get_by_role("status").filter(has_text="Would match")
    expect(result).to_contain_text("Would match: yes")
    expect(result).to_contain_text("✓")
    expect(result).to_contain_text("Would do:")
    expect(result).to_contain_text("Bob Agent")
    assert db.session.scalar(select(AutomationRule.id)) is None
    check_both_widths(page, tmp_path, "admin-rule-edit")

    # Against the newsletter: no.
    page.get_by_label("Email to try it on").select_option(label="Newsletter — news@lists.example")
    page.get_by_role("button", name="Try it").click()
    expect(page.get_by_role("status").filter(has_text="Would match")).to_contain_text(
        "Would match: no"
    )

    page.get_by_role("button", name="Save rule").click()
    expect(page.get_by_text("The rule “VIP customers” is saved.")).to_be_visible()
    item = page.locator(".rule-item").filter(has_text="VIP customers")
    expect(item).to_contain_text('From (address) ends with "@vip.example"')
    expect(item).to_contain_text("Assign to Bob Agent")
    expect(item).to_contain_text("Enabled")
    check_both_widths(page, tmp_path, "admin-rules")
    rule = db.session.scalar(select(AutomationRule))
    assert rule.actions == [
        {"type": "assign", "user_id": team.bob.id},
        {"type": "add_labels", "labels": ["vip"]},
    ]

    # Disable it from the list.
    item.get_by_role("button", name="Disable “VIP customers”").click()
    expect(page.locator(".rule-item").filter(has_text="VIP customers")).to_contain_text("Disabled")

    page.goto("/admin/inboxes")
    page.get_by_role("link", name="Global rules").click()
    expect(page.get_by_role("heading", name="Global rules", exact=True)).to_be_visible()
    check_both_widths(page, tmp_path, "admin-global-rules")


def test_a_choice_made_before_the_page_script_ran_still_shows_its_fields(page, sign_in, team):
    """The form comes back from "Add action" with the new row focused: an admin can choose
    before the deferred admin.js has run. When it runs, each row shows what its choice needs
    (the change event it missed is not needed)."""
    sign_in(team.ana.email, team.ana.plain_password)
    held = []

    def hold(route):  # the script waits until released
        held.append(route)

    page.route("**/static/admin.js*", hold)
    page.goto(f"/admin/inboxes/{team.support.id}/rules/new", wait_until="commit")
    does = page.get_by_label("Action 1: Does")
    does.select_option(label="Add labels")
    page.get_by_label("Condition 1: Looks at").select_option(label="The email")
    labels = page.get_by_label("Action 1: Labels")
    expect(labels).to_be_hidden()  # nothing has reacted yet
    assert len(held) == 1
    held[0].continue_()
    expect(labels).to_be_visible()
    expect(page.get_by_label("Action 1: Assignee")).to_be_hidden()
    expect(page.locator("#conditions-0-value")).to_be_hidden()  # the email: a choice instead


def test_business_hours_and_acknowledgement(page, sign_in, team, tmp_path):
    support = team.support
    sign_in(team.ana.email, team.ana.plain_password)
    page.goto(f"/admin/inboxes/{support.id}/settings?section=hours")
    zone = page.get_by_label("Time zone")
    zone.fill("Europe/Lisbon")
    page.get_by_label("Weekly hours").fill("mon-fri 09:00-12:00, 11:00-17:00")
    page.get_by_label("Send an auto-acknowledgement").check()
    page.get_by_role("button", name="Save business hours").click()
    # Two mistakes, each beside its field.
    expect(page.locator("#hours-error")).to_contain_text("overlap")
    expect(page.locator("#ack_body-error")).to_contain_text("Write the message to send")
    check_both_widths(page, tmp_path, "admin-hours-errors")

    page.get_by_label("Weekly hours").fill("mon-fri 09:00-17:00")
    page.get_by_label("Holidays").fill("2026-12-25")
    page.get_by_label("Message").fill("We got your message (#{{conversation.number}}).")
    page.get_by_label("Message").press("Tab")
    expect(page.get_by_label("At most one per sender every (minutes)")).to_be_focused()
    page.keyboard.press("Control+A")
    page.keyboard.type("14400")
    page.get_by_role("button", name="Save business hours").click()
    expect(page.get_by_text("Business hours and auto-acknowledgement saved.")).to_be_visible()
    expect(page.get_by_label("Time zone")).to_have_value("Europe/Lisbon")
    check_both_widths(page, tmp_path, "admin-hours")
    db.session.expire_all()
    inbox = db.session.get(Inbox, support.id)
    assert inbox.time_zone == "Europe/Lisbon" and inbox.holidays == ["2026-12-25"]
    ack = db.session.get(AutoAcknowledgement, support.id)
    assert ack.enabled and ack.window_minutes == 14400


def test_a_thread_shows_what_the_automations_did(app, page, sign_in, team, tmp_path):
    """An email that a rule assigned, labelled and annotated, that the inbox acknowledged, and
    on which a second rule failed: the thread names each, calmly."""
    from tests.support.inbound import post_relay, work_inbound

    support = team.support
    db.session.add(
        AutoAcknowledgement(
            inbox_id=support.id,
            enabled=True,
            body="Thanks {{contact.name}}, we got it: #{{conversation.number}}.",
        )
    )
    db.session.add_all(
        [
            AutomationRule(
                inbox_id=support.id,
                name="VIP customers",
                position=0,
                conditions=[{"field": "from", "op": "ends_with", "value": "@vip.example"}],
                actions=[
                    {"type": "assign", "user_id": team.bob.id},
                    {"type": "add_labels", "labels": ["vip"]},
                    {"type": "add_note", "text": "VIP: answer within the hour."},
                ],
            ),
            AutomationRule(
                inbox_id=support.id,
                name="Gone saved reply",
                position=1,
                conditions=[{"field": "kind", "op": "is", "value": "new"}],
                actions=[{"type": "send_saved_reply", "saved_reply_id": 999_999}],
            ),
        ]
    )
    db.session.commit()
    raw = (
        b"From: Carla Customer <carla@vip.example>\r\nTo: support@example.com\r\n"
        b"Subject: Printer on fire\r\nMessage-ID: <fire@vip.example>\r\n\r\nHelp!\r\n"
    )
    post_relay(app.test_client(), raw)
    work_inbound(app)
    conversation = db.session.scalars(
        select(Conversation).where(Conversation.subject == "Printer on fire")
    ).one()

    sign_in(team.ana.email, team.ana.plain_password)
    page.goto(f"/conversations/{conversation.id}")
    thread = page.locator("#thread-messages")
    activity = thread.locator(".msg-activity")
    expect(activity.filter(has_text="Rule 'VIP customers' assigned this to Bob")).to_have_count(1)
    expect(activity.filter(has_text="Rule 'VIP customers' labelled this vip")).to_have_count(1)
    note = thread.locator(".msg-note", has_text="VIP: answer within the hour.")
    expect(note.locator(".msg-sender")).to_have_text("Automation")
    ack = thread.locator(".msg-outgoing", has_text="we got it")
    expect(ack.locator(".msg-sender")).to_have_text("Automatic acknowledgement")
    expect(thread.locator(".msg-rule-errors")).to_contain_text(
        "Automation failed: Rule 'Gone saved reply'"
    )
    # The list row shows the customer's words, not the automatic answer.
    expect(page.locator(f"#row-{conversation.id} .conv-snippet")).to_have_text("Help!")
    check_both_widths(page, tmp_path, "thread-automations")
