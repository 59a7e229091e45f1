"""The list's bulk bar (POST /conversations/bulk), the row an action answers with, "resolve
and open the next one" and the home page (the agent's queue, or the setup checklist)."""

from __future__ import annotations

import re

import pytest

from services.labels import conversation_labels, set_labels
from tests.integration.conftest import fresh
from tests.support.workspace import Browser, activity, quick_conversation


def bulk(who, ids, action, current="/conversations", **fields):
    headers = {"X-CSRFToken": who.token, "HX-Request": "true", "HX-Current-URL": current}
    data = {"ids": [c.id for c in ids], "action": action, **fields}
    return who.client.post("/conversations/bulk", data=data, headers=headers)


def test_bulk_assign_then_bulk_resolve(app, team, bob):
    first, second, other = (quick_conversation(team.support, f"Case {n}") for n in (1, 2, 3))

    answer = bulk(bob, [first, second], "assign", assignee_id=str(team.bob.id))
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert "Assigned 2 conversations." in html
    # The list and the counts come back out of band: the rows show the new assignee.
    assert '<div id="conversation-list" class="ws-list" hx-swap-oob="true">' in html
    assert '<aside id="ws-sidebar" class="ws-sidebar" hx-swap-oob="true">' in html
    assert html.count("Assigned to Bob Agent") == 2
    assert [fresh(c).assignee_id for c in (first, second, other)] == [team.bob.id] * 2 + [None]
    assert activity(first) == ["Bob Agent assigned this to Bob Agent"]

    answer = bulk(bob, [first, second], "resolved", current="/conversations?status=open")
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert "Resolved 2 conversations." in html
    assert [fresh(c).status for c in (first, second, other)] == ["resolved", "resolved", "open"]
    # The open list it redraws no longer holds them.
    assert f'id="row-{other.id}"' in html and f'id="row-{first.id}"' not in html
    assert activity(second)[-1] == "Bob Agent resolved this conversation"

    # Again: nothing changes, and the message says so.
    html = bulk(bob, [first], "resolved").get_data(as_text=True)
    assert "Resolved 1 conversation. 1 already were." in html


def test_a_refusal_names_the_conversation_and_changes_nothing(app, client, auth, team):
    ana = Browser(client, auth).login(team.ana)  # an admin sees both inboxes
    ours = quick_conversation(team.support, "Ours")
    theirs = quick_conversation(team.billing, "Refund please")

    # Bob is no member of Billing: the whole action is refused, Support's one included.
    answer = bulk(ana, [ours, theirs], "assign", assignee_id=str(team.bob.id))
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert (
        f"#{theirs.display_number} “Refund please”: Bob Agent is not a member of this "
        "conversation&#39;s inbox. Nothing was changed." in html
    )
    assert "hx-swap-oob" not in html  # nothing changed: the list stays as it is
    assert fresh(ours).assignee_id is None and fresh(theirs).assignee_id is None
    assert activity(ours) == []


def test_conversations_outside_ones_inboxes_are_refused(app, client, auth, team):
    olga = Browser(client, auth).login(team.olga)
    mine = quick_conversation(team.billing, "Billing one")
    hidden = quick_conversation(team.support, "Support one")
    answer = bulk(olga, [mine, hidden], "resolved")
    assert answer.status_code == 422
    assert f"Conversation {hidden.id} is not in any of your inboxes." in answer.get_data(
        as_text=True
    )
    assert fresh(mine).status == "open" and fresh(hidden).status == "open"


def test_bulk_label_adds_to_the_labels_each_has(app, team, bob):
    first, second = quick_conversation(team.support, "A"), quick_conversation(team.support, "B")
    set_labels(first, team.bob, ["Billing"])
    answer = bulk(bob, [first, second], "label", labels="Urgent")
    assert answer.status_code == 200
    assert [x.display_name for x in conversation_labels(first.id)] == ["Billing", "Urgent"]
    assert [x.display_name for x in conversation_labels(second.id)] == ["Urgent"]
    assert "Labelled 2 conversations." in answer.get_data(as_text=True)


@pytest.mark.parametrize(
    ("ids", "fields", "why"),
    [
        (False, {"action": "resolved"}, "Select at least one conversation first."),
        (True, {"action": "explode"}, "Choose what to do with the selected conversations."),
        (True, {"action": "label", "labels": " , "}, "Type the label to add."),
        (True, {"action": "assign", "assignee_id": "bob"}, "Choose a person from the list."),
    ],
)
def test_what_cannot_be_done_says_why(app, team, bob, ids, fields, why):
    conversation = quick_conversation(team.support)
    action = fields.pop("action")
    answer = bulk(bob, [conversation] if ids else [], action, **fields)
    assert answer.status_code == 422
    assert why in answer.get_data(as_text=True)
    assert fresh(conversation).status == "open" and activity(conversation) == []


def test_bulk_needs_the_csrf_token_and_a_plain_form_is_redirected(app, team, bob):
    conversation = quick_conversation(team.support)
    refused = bob.post(
        "/conversations/bulk", {"ids": [conversation.id], "action": "resolved"}, csrf=False
    )
    assert refused.status_code == 400 and fresh(conversation).status == "open"

    answer = bob.client.post(
        "/conversations/bulk?status=open",
        data={"ids": [conversation.id], "action": "pending", "csrf_token": bob.token},
    )
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/conversations"
    assert fresh(conversation).status == "pending"
    assert "Marked as pending 1 conversation." in bob.get("/conversations").get_data(as_text=True)


def test_the_list_page_draws_tick_boxes_status_and_initials(app, team, bob):
    conversation = quick_conversation(team.support, "Where is my order", assignee=team.bob)
    html = bob.get("/conversations").get_data(as_text=True)
    assert '<form id="bulk-form"' in html
    assert re.search(
        rf'<input type="checkbox" class="row-select" name="ids" value="{conversation.id}" '
        r'form="bulk-form"',
        html,
    )
    row = re.search(rf'id="row-{conversation.id}">.*?</li>', html, re.S).group(0)
    assert '<span class="avatar sm" title="Bob Agent" aria-hidden="true">BA</span>' in row
    assert "data-row-status>Open</span>" in row


@pytest.mark.parametrize("action", ["assign", "status", "labels", "snooze"])
def test_every_thread_action_answers_with_its_row(app, team, bob, action):
    conversation = quick_conversation(team.support, "Row please")
    data = {
        "assign": {"assignee_id": str(team.bob.id)},
        "status": {"status": "pending"},
        "labels": {"labels": "vip"},
        "snooze": {"for": "1h"},
    }[action]
    headers = {"X-CSRFToken": bob.token, "HX-Request": "true"}
    answer = bob.client.post(
        f"/conversations/{conversation.id}/{action}", data=data, headers=headers
    )
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    row = re.search(
        rf'<li class="conv-row[^"]*" id="row-{conversation.id}" hx-swap-oob="true">.*?</li>',
        html,
        re.S,
    )
    assert row, html[-1500:]
    shown = {
        "assign": "Assigned to Bob Agent",
        "status": "data-row-status>Pending<",
        "labels": '<span class="badge label">vip</span>',
        "snooze": "data-row-status>Snoozed<",
    }[action]
    assert shown in row.group(0)
    assert "current" in row.group(0).split(">")[0]  # the open thread's row stays highlighted


def test_a_refused_action_sends_no_row(app, team, bob):
    conversation = quick_conversation(team.support)
    headers = {"X-CSRFToken": bob.token, "HX-Request": "true"}
    answer = bob.client.post(
        f"/conversations/{conversation.id}/assign", data={"assignee_id": "x"}, headers=headers
    )
    assert answer.status_code == 422 and f'id="row-{conversation.id}"' not in answer.get_data(
        as_text=True
    )


def resolve_next(who, conversation, current):
    headers = {"X-CSRFToken": who.token, "HX-Request": "true", "HX-Current-URL": current}
    return who.client.post(
        f"/conversations/{conversation.id}/status",
        data={"status": "resolved", "next": "1"},
        headers=headers,
    )


def opened(html: str) -> int:
    """The conversation whose thread the answer draws."""
    return int(re.search(r'id="open-conversation" name="open" value="(\d+)"', html).group(1))


def test_resolve_opens_the_next_conversation_of_the_same_list(app, team, bob):
    from datetime import timedelta

    from models import utcnow

    now = utcnow()
    oldest, middle, newest = (
        quick_conversation(team.support, f"Number {n}", at=now - timedelta(minutes=n))
        for n in (3, 2, 1)
    )
    vip = quick_conversation(team.support, "Not in the list", at=now - timedelta(minutes=5))
    for conversation in (oldest, middle, newest):
        set_labels(conversation, team.bob, ["Billing"])

    here = f"http://localhost/conversations/{middle.id}?label=billing"
    answer = resolve_next(bob, middle, here)
    assert answer.status_code == 200
    assert answer.headers["HX-Retarget"] == "#thread-pane"
    assert answer.headers["HX-Push-Url"] == f"/conversations/{oldest.id}?label=billing"
    html = answer.get_data(as_text=True)
    assert opened(html) == oldest.id  # the one below it
    assert fresh(middle).status == "resolved"
    # The list comes along, without the resolved one, the next one's row current.
    assert '<div id="conversation-list" class="ws-list" hx-swap-oob="true">' in html
    assert f'id="row-{middle.id}"' not in html
    assert re.search(rf'<li class="conv-row[^"]* current" id="row-{oldest.id}">', html)

    # At the bottom of the list: back to its top.
    answer = resolve_next(bob, oldest, here)
    assert opened(answer.get_data(as_text=True)) == newest.id
    # The last one: the empty state, and the list's own address.
    answer = resolve_next(bob, newest, here)
    assert "All done here" in answer.get_data(as_text=True)
    assert answer.headers["HX-Push-Url"] == "/conversations?label=billing"
    assert fresh(vip).status == "open"


def test_resolve_without_next_stays_on_the_thread(app, team, bob):
    conversation = quick_conversation(team.support)
    quick_conversation(team.support, "Another")
    headers = {"X-CSRFToken": bob.token, "HX-Request": "true"}
    answer = bob.client.post(
        f"/conversations/{conversation.id}/status", data={"status": "resolved"}, headers=headers
    )
    assert answer.status_code == 200 and "HX-Retarget" not in answer.headers
    assert fresh(conversation).status == "resolved"


# --- home -------------------------------------------------------------------------------------


def test_home_is_the_agents_queue(app, team, bob):
    mine = quick_conversation(team.support, "Mine to answer", assignee=team.bob)
    quick_conversation(team.support, "Nobody's yet")
    quick_conversation(team.support, "Done already", assignee=team.bob, status="resolved")
    html = bob.get("/").get_data(as_text=True)
    assert "<h1>Your queue</h1>" in html
    assert re.search(r'id="queue-mine">1<', html) and re.search(r'id="queue-unassigned">1<', html)
    assert re.search(r'id="queue-all">2<', html)
    assert f'href="/conversations/{mine.id}?assignee=me"' in html
    assert "Nobody&#39;s yet" not in html and "Done already" not in html
    assert 'form="bulk-form"' not in html  # plain rows: no tick boxes on home


def test_home_with_nothing_assigned_points_at_unassigned(app, team, bob):
    quick_conversation(team.support, "Nobody's yet")
    html = bob.get("/").get_data(as_text=True)
    assert "Nothing assigned to you" in html and "Pick up unassigned" in html


def test_a_fresh_install_shows_the_setup_checklist(app, client, auth, make_user):
    admin = make_user(email="root@staff.example", name="Root Admin", role="admin")
    agent = make_user(email="new@staff.example", name="New Agent")
    browser = Browser(client, auth).login(admin)
    html = browser.get("/").get_data(as_text=True)
    assert "Setup checklist" in html and 'href="/admin/inboxes/new"' in html
    assert "Start the setup wizard" in html
    browser.login(agent)
    html = browser.get("/").get_data(as_text=True)
    assert "Ask your admin" in html and "/admin/inboxes/new" not in html
