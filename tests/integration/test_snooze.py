"""Snooze until a date and time: the service rule, the thread's snooze action, the API and the
periodic sweep that reopens a conversation when its snooze ends."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from extensions import db, get_queue
from jobs.sweeps import wake_snoozed
from models import Conversation, utcnow
from services.conversation_list import list_conversations
from services.conversations import ConversationError, update_conversation
from tests.support.workspace import (
    Browser,
    activity,
    api,
    links_to,
    make_team,
    messages_poll,
    poll_fingerprint,
    quick_conversation,
)


@pytest.fixture
def team(app, inbox, make_user):
    return make_team(inbox, make_user)


@pytest.fixture
def browser(client, auth):
    return Browser(client, auth)


def fresh(conversation) -> Conversation:
    db.session.expire_all()
    return db.session.get(Conversation, conversation.id)


def snoozed(conversation, until):
    """Straight to the database: a snooze whose end may already have passed."""
    conversation.status, conversation.snoozed_until = "snoozed", until
    db.session.commit()
    return conversation


# --- the service -----------------------------------------------------------------------------


def test_snooze_sets_status_and_time_with_an_activity_line(team):
    conv = quick_conversation(team.support)
    until = datetime(2099, 1, 2, 9, 30, tzinfo=UTC)
    update_conversation(conv, team.bob, status="snoozed", snoozed_until=until)

    conv = fresh(conv)
    assert (conv.status, conv.snoozed_until) == ("snoozed", until)
    assert activity(conv) == ["Bob Agent snoozed this conversation until 2099-01-02 09:30 UTC"]

    later = until + timedelta(days=1)  # a new end while snoozed: one more line
    update_conversation(conv, team.bob, status="snoozed", snoozed_until=later)
    update_conversation(conv, team.bob, status="snoozed", snoozed_until=later)  # no change
    assert activity(conv)[1:] == ["Bob Agent snoozed this conversation until 2099-01-03 09:30 UTC"]

    update_conversation(conv, team.bob, status="open")
    conv = fresh(conv)
    assert (conv.status, conv.snoozed_until) == ("open", None)
    assert activity(conv)[-1] == "Bob Agent reopened this conversation"


def test_a_time_zone_other_than_utc_is_the_same_moment(team):
    conv = quick_conversation(team.support)
    until = datetime.fromisoformat("2099-01-02T10:30:00+01:00")
    update_conversation(conv, team.bob, status="snoozed", snoozed_until=until)
    assert fresh(conv).snoozed_until == datetime(2099, 1, 2, 9, 30, tzinfo=UTC)
    assert activity(conv) == ["Bob Agent snoozed this conversation until 2099-01-02 09:30 UTC"]


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"status": "snoozed"}, "needs snoozed_until"),
        ({"status": "snoozed", "snoozed_until": "PAST"}, "must be in the future"),
        ({"status": "snoozed", "snoozed_until": "NOW"}, "must be in the future"),
        ({"status": "snoozed", "snoozed_until": "NAIVE"}, "time zone"),
        ({"status": "snoozed", "snoozed_until": "2099-01-01"}, "time zone"),
        ({"status": "resolved", "snoozed_until": "FUTURE"}, 'goes with status "snoozed"'),
        ({"snoozed_until": "FUTURE"}, 'goes with status "snoozed"'),
    ],
)
def test_snooze_needs_a_future_time_and_nothing_changes_otherwise(team, changes, needle):
    conv = quick_conversation(team.support)
    now = utcnow()
    moments = {
        "PAST": now - timedelta(minutes=1),
        "NOW": now,
        "NAIVE": datetime(2099, 1, 1, 9, 0),
        "FUTURE": now + timedelta(hours=1),
    }
    changes = {k: moments.get(v, v) for k, v in changes.items()}
    with pytest.raises(ConversationError, match=needle) as caught:
        update_conversation(conv, team.bob, **changes)
    assert caught.value.field == "snoozed_until"
    conv = fresh(conv)
    assert (conv.status, conv.snoozed_until) == ("open", None)
    assert activity(conv) == []


def test_the_snoozed_filter_lists_snoozed_conversations(team):
    conv = quick_conversation(team.support)
    quick_conversation(team.support)
    update_conversation(conv, team.bob, status="snoozed", snoozed_until=utcnow() + timedelta(1))
    rows = list_conversations(team.bob, status="snoozed").rows
    assert [row.conversation.id for row in rows] == [conv.id]
    assert list_conversations(team.olga, status="snoozed").rows == []


# --- the sweep -------------------------------------------------------------------------------


def test_the_sweep_reopens_only_conversations_whose_snooze_ended(team):
    now = utcnow()
    due = snoozed(quick_conversation(team.support, at=now - timedelta(days=2)), now - timedelta(1))
    also_due = snoozed(quick_conversation(team.billing), now - timedelta(seconds=1))
    later = snoozed(quick_conversation(team.support), now + timedelta(hours=1))
    resolved = quick_conversation(team.support, status="resolved")

    assert wake_snoozed() == 2

    for conv in (due, also_due):
        conv = fresh(conv)
        assert (conv.status, conv.snoozed_until) == ("open", None)
        assert conv.last_activity_at >= now  # back at the top of the list
        assert activity(conv) == ["Snooze ended"]
        line = conv.messages[-1]
        assert line.direction == "activity" and line.sender_user_id is None
    assert fresh(later).status == "snoozed" and activity(later) == []
    assert fresh(resolved).status == "resolved"

    assert wake_snoozed() == 0  # nothing twice
    assert activity(due) == ["Snooze ended"]
    assert [row.conversation.id for row in list_conversations(team.bob, status="open").rows][
        0
    ] == due.id


def test_the_sweep_leaves_a_conversation_an_agent_already_reopened(team):
    conv = snoozed(quick_conversation(team.support), utcnow() - timedelta(minutes=5))
    update_conversation(conv, team.bob, status="open")
    assert wake_snoozed() == 0
    assert activity(conv) == ["Bob Agent reopened this conversation"]


def test_the_sweep_runs_as_an_rq_job(app, team):
    from worker import build_worker

    conv = snoozed(quick_conversation(team.support), utcnow() - timedelta(minutes=1))
    job = get_queue("default").enqueue(wake_snoozed)
    build_worker(app, ["default"], simple=True).work(burst=True)
    assert job.get_status(refresh=True) == "finished" and job.return_value() == 1
    assert fresh(conv).status == "open"
    assert activity(conv) == ["Snooze ended"]


# --- the web workspace -----------------------------------------------------------------------


def test_snooze_for_a_preset_with_htmx_answers_with_the_snooze_component(team, browser):
    conv = quick_conversation(team.support)
    browser.login(team.bob)
    page = browser.get(f"/conversations/{conv.id}").get_data(as_text=True)
    before = utcnow()

    response = browser.post(
        f"/conversations/{conv.id}/snooze", {"for": "4h", "fp": poll_fingerprint(page)}
    )
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="thread-snooze"') and "Snoozed until" in html
    assert "<html" not in html and 'id="thread"' not in html and 'class="msg ' not in html
    # Out of band: the status line, the status buttons and the label chips' links show the
    # new status; the activity line is appended to the messages.
    for part in ("thread-meta", "thread-controls", "thread-labels"):
        assert re.search(rf'id="{part}"[^>]*hx-swap-oob="true"', html), part
    assert "status-snoozed" in html and ">Reopen</button>" in html
    assert 'hx-swap-oob="beforeend:#thread-messages"' in html
    assert "Bob Agent snoozed this conversation until" in html
    assert browser.get(messages_poll(html), htmx=True).status_code == 204
    conv = fresh(conv)
    assert conv.status == "snoozed"
    assert before + timedelta(hours=4) <= conv.snoozed_until <= utcnow() + timedelta(hours=4)
    assert activity(conv)[0].startswith("Bob Agent snoozed this conversation until ")

    page = browser.get(f"/conversations/{conv.id}").get_data(as_text=True)
    assert "<html" in page and 'id="thread-snooze"' in page and "Snoozed until" in page
    assert "status-snoozed" in page and "Bob Agent snoozed this conversation until" in page
    listing = browser.get("/conversations?status=snoozed", htmx=True).get_data(as_text=True)
    assert links_to(listing, conv) is True
    assert links_to(browser.get("/conversations").get_data(as_text=True), conv) is False


def test_snooze_until_a_utc_date_and_time_without_htmx_redirects(team, browser):
    conv = quick_conversation(team.support)
    browser.login(team.bob)
    response = browser.post(
        f"/conversations/{conv.id}/snooze", {"until": "2099-03-04T08:15"}, htmx=False
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/conversations/{conv.id}")
    conv = fresh(conv)
    assert (conv.status, conv.snoozed_until) == ("snoozed", datetime(2099, 3, 4, 8, 15, tzinfo=UTC))


def test_snooze_until_is_read_and_shown_in_the_agents_time_zone(team, browser):
    conv = quick_conversation(team.support)
    browser.login(team.bob)
    profile = browser.get("/profile").get_data(as_text=True)
    assert '<option value="Asia/Tokyo">' in profile and "Time zone" in profile
    response = browser.post("/profile/timezone", {"timezone": "Asia/Tokyo"}, htmx=False)
    assert response.status_code == 302
    assert "Times are now shown in Asia/Tokyo." in browser.get("/profile").get_data(as_text=True)

    thread = browser.get(f"/conversations/{conv.id}").get_data(as_text=True)
    assert "or until (Asia/Tokyo)" in thread
    response = browser.post(f"/conversations/{conv.id}/snooze", {"until": "2099-03-04T09:00"})
    assert response.status_code == 200
    # 09:00 in Tokyo (UTC+9, no daylight saving) is midnight UTC.
    assert fresh(conv).snoozed_until == datetime(2099, 3, 4, 0, 0, tzinfo=UTC)
    assert "Snoozed until" in response.get_data(as_text=True)
    assert "2099-03-04 09:00 JST" in response.get_data(as_text=True)


def test_an_unknown_time_zone_is_refused_with_what_to_do(team, browser):
    browser.login(team.bob)
    response = browser.post("/profile/timezone", {"timezone": "Mars/Olympus"}, htmx=False)
    assert response.status_code == 422
    assert "is not a time zone this server knows" in response.get_data(as_text=True)
    assert browser.post("/profile/timezone", {"timezone": "UTC"}, csrf=False).status_code == 400
    db.session.refresh(team.bob)
    assert team.bob.timezone == "UTC"


@pytest.mark.parametrize(
    ("form", "needle"),
    [
        ({}, "Choose how long to snooze"),
        ({"for": "forever"}, "Choose how long to snooze"),
        ({"until": "next tuesday"}, "YYYY-MM-DD HH:MM"),
        ({"until": "2001-01-01T00:00"}, "must be in the future"),
    ],
)
def test_bad_snooze_input_shows_the_error_and_changes_nothing(team, browser, form, needle):
    conv = quick_conversation(team.support)
    browser.login(team.bob)
    response = browser.post(f"/conversations/{conv.id}/snooze", form)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'role="alert"' in html and needle in html
    assert fresh(conv).status == "open" and activity(conv) == []


def test_snooze_needs_csrf(team, browser):
    conv = quick_conversation(team.support)
    browser.login(team.bob)
    response = browser.post(f"/conversations/{conv.id}/snooze", {"for": "1h"}, csrf=False)
    assert response.status_code == 400
    assert fresh(conv).status == "open"


def test_other_inboxes_conversations_are_404_for_snooze(team, browser):
    conv = quick_conversation(team.support)
    browser.login(team.olga)
    for htmx in (True, False):
        response = browser.post(f"/conversations/{conv.id}/snooze", {"for": "1h"}, htmx=htmx)
        assert response.status_code == 404
    assert browser.post("/conversations/999999/snooze", {"for": "1h"}).status_code == 404
    assert fresh(conv).status == "open"


# --- the API ---------------------------------------------------------------------------------


def test_api_snooze_needs_a_future_time_with_a_zone(team, client):
    conv = quick_conversation(team.support)
    path = f"/conversations/{conv.id}"
    for body, needle in [
        ({"status": "snoozed"}, "needs snoozed_until"),
        ({"status": "snoozed", "snoozed_until": "2001-01-01T00:00:00Z"}, "in the future"),
        ({"status": "snoozed", "snoozed_until": "2099-01-01T00:00:00"}, "time zone"),
        ({"status": "snoozed", "snoozed_until": "soon"}, "ISO 8601"),
        ({"status": "snoozed", "snoozed_until": 5}, "ISO 8601"),
        ({"snoozed_until": "2099-01-01T00:00:00Z"}, 'goes with status "snoozed"'),
    ]:
        response = api(client, "PATCH", path, team.bob, body)
        assert response.status_code == 422, body
        assert needle in response.get_json()["error"], body
    assert fresh(conv).status == "open" and activity(conv) == []

    body = {"status": "snoozed", "snoozed_until": "2099-01-01T10:00:00+01:00"}
    response = api(client, "PATCH", path, team.bob, body)
    assert response.status_code == 200, response.get_json()
    data = response.get_json()
    assert data["status"] == "snoozed"
    assert data["snoozed_until"] == "2099-01-01T09:00:00+00:00"
    listed = api(client, "GET", "/conversations?status=snoozed", team.bob).get_json()
    assert [row["id"] for row in listed["conversations"]] == [conv.id]

    assert api(client, "PATCH", path, team.olga, body).status_code == 404
