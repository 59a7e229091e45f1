"""Labels: set through the service, the thread's labels action and the API; the list filter."""

from __future__ import annotations

import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from extensions import db
from models import ConversationLabel, InboxMember, Label, Message, utcnow
from services.conversation_list import list_conversations
from services.labels import LabelError, conversation_labels, labels_visible_to, set_labels
from tests.support.workspace import (
    Browser,
    activity,
    api,
    links_to,
    make_team,
    messages_of,
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


def names(conversation) -> list[str]:
    return [label.display_name for label in conversation_labels(conversation.id)]


def listed(user, **filters) -> list[int]:
    return [row.conversation.id for row in list_conversations(user, **filters).rows]


# --- the service -----------------------------------------------------------------------------


def test_labels_are_created_on_the_fly_and_reused_ignoring_case(team):
    first = quick_conversation(team.support, "Invoice wrong")
    second = quick_conversation(team.support, "Refund")

    assert [label.display_name for label in set_labels(first, team.bob, ["billing", "Urgent"])] == [
        "billing",
        "Urgent",
    ]
    set_labels(second, team.bob, ["BILLING", "  refund   request "])

    assert names(second) == ["billing", "refund request"]  # the first spelling is kept
    assert db.session.scalar(select(func.count(Label.id))) == 3
    assert db.session.scalars(select(Label.name).order_by(Label.name)).all() == [
        "billing",
        "refund request",
        "urgent",
    ]
    assert activity(first) == ["Bob Agent labelled this billing, Urgent"]
    assert activity(second) == ["Bob Agent labelled this billing, refund request"]


def test_adding_and_removing_write_one_line_each_and_no_change_writes_none(team):
    conv = quick_conversation(team.support)
    set_labels(conv, team.bob, ["billing", "urgent"])
    set_labels(conv, team.ana, ["Billing", "vip"])  # case-only difference: no change
    set_labels(conv, team.ana, ["billing", "vip"])
    set_labels(conv, team.bob, [])

    assert names(conv) == []
    assert activity(conv) == [
        "Bob Agent labelled this billing, urgent",
        "Ana Admin labelled this vip",
        "Ana Admin removed the label urgent",
        "Bob Agent removed the labels billing, vip",
    ]
    # The labels themselves stay for the filter and for reuse.
    assert db.session.scalar(select(func.count(Label.id))) == 3
    assert db.session.scalar(select(func.count(ConversationLabel.id))) == 0


def test_duplicates_in_one_request_are_one_label(team):
    conv = quick_conversation(team.support)
    set_labels(conv, team.bob, ["urgent", "URGENT", "urgent "])
    assert names(conv) == ["urgent"]
    assert db.session.scalar(select(func.count(ConversationLabel.id))) == 1


@pytest.mark.parametrize(
    ("given", "needle"),
    [
        ([""], "cannot be empty"),
        (["   "], "cannot be empty"),
        (["x" * 41], "at most 40 characters"),
        (["a,b"], "contains a comma"),
        ([3], "strings"),
        ("billing", "must be a list"),
        ([f"label{i}" for i in range(21)], "at most 20 labels"),
    ],
)
def test_bad_names_are_refused_and_nothing_changes(team, given, needle):
    conv = quick_conversation(team.support)
    set_labels(conv, team.bob, ["keep"])
    with pytest.raises(LabelError, match=needle) as caught:
        set_labels(conv, team.bob, given)
    assert caught.value.field == "labels"
    db.session.rollback()
    assert names(conv) == ["keep"]
    assert activity(conv) == ["Bob Agent labelled this keep"]
    assert db.session.scalar(select(func.count(Label.id))) == 1


def test_forty_characters_are_fine(team):
    conv = quick_conversation(team.support)
    set_labels(conv, team.bob, ["x" * 40])
    assert names(conv) == ["x" * 40]


def test_list_filter_by_label_any_case_and_only_visible_inboxes(team):
    billing_a = quick_conversation(team.support, "A")
    urgent = quick_conversation(team.support, "B")
    plain = quick_conversation(team.support, "C")
    elsewhere = quick_conversation(team.billing, "D")
    set_labels(billing_a, team.ana, ["Billing"])
    set_labels(urgent, team.ana, ["urgent"])
    set_labels(elsewhere, team.ana, ["billing"])

    assert listed(team.bob, label="billing") == [billing_a.id]
    assert listed(team.bob, label=" BILLING ") == [billing_a.id]
    assert listed(team.olga, label="billing") == [elsewhere.id]
    assert sorted(listed(team.ana, label="billing")) == sorted([billing_a.id, elsewhere.id])
    assert listed(team.bob, label="nonexistent") == []
    assert sorted(listed(team.bob, label="")) == sorted([billing_a.id, urgent.id, plain.id])
    assert listed(team.bob, label="urgent", status="resolved") == []


def test_deleting_a_conversation_drops_its_labels(team):
    conv = quick_conversation(team.support)
    set_labels(conv, team.bob, ["billing"])
    db.session.delete(conv)
    db.session.commit()
    assert db.session.scalar(select(func.count(ConversationLabel.id))) == 0


# --- the web workspace -----------------------------------------------------------------------


def html_conversation(inbox, subject="Invoice wrong"):
    """A conversation whose email is HTML: the thread draws it in a frame."""
    conversation = quick_conversation(inbox, subject)
    (email,) = messages_of(conversation)
    email.html_body = "<p>The <b>invoice</b> is wrong.</p>"
    db.session.commit()
    return conversation


def test_labels_action_with_htmx_answers_with_the_labels_component_only(team, browser):
    conv = html_conversation(team.support)
    browser.login(team.bob)
    page = browser.get(f"/conversations/{conv.id}").get_data(as_text=True)
    assert "<iframe" in page

    response = browser.post(
        f"/conversations/{conv.id}/labels",
        {"labels": "billing, Urgent", "fp": poll_fingerprint(page)},
    )
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<div id="thread-labels"')
    assert ">Urgent</a>" in html and 'value="billing, Urgent"' in html
    # Nothing else of the thread is drawn again: no message, no frame, no other control.
    assert "<html" not in html and 'id="thread"' not in html
    assert "<iframe" not in html and 'class="msg ' not in html
    for other in ("thread-messages", "thread-meta", "thread-controls", "thread-snooze", "composer"):
        assert f'id="{other}"' not in html, other
    # The activity line is appended to the messages out of band, and the poll learns the new
    # fingerprint: the page is up to date, so the next poll changes nothing.
    (line,) = re.findall(r'<div hx-swap-oob="beforeend:#thread-messages">(.*?)</div>', html, re.S)
    assert "Bob Agent labelled this billing, Urgent" in line and 'class="msg-activity"' in line
    assert 'hx-swap-oob="true"' in re.search(r'<input [^>]*id="thread-fp"[^>]*>', html).group(0)
    assert browser.get(messages_poll(html), htmx=True).status_code == 204
    assert names(conv) == ["billing", "Urgent"]

    # The page shows the same as after the change: the labels and the activity line.
    page = browser.get(f"/conversations/{conv.id}").get_data(as_text=True)
    assert "<html" in page and 'id="thread-labels"' in page and ">billing</a>" in page
    assert "Bob Agent labelled this billing, Urgent" in page and "<iframe" in page


def test_a_label_change_keeps_remote_images_the_agent_loaded(team, browser):
    conv = html_conversation(team.support)
    browser.login(team.bob)
    page = browser.get(f"/conversations/{conv.id}?images=1").get_data(as_text=True)
    assert '<input type="hidden" id="thread-images" name="images" value="1"' in page
    response = browser.post(
        f"/conversations/{conv.id}/labels",
        {"labels": "billing", "fp": poll_fingerprint(page), "images": "1"},
    )
    assert response.status_code == 200
    assert "images=1" in messages_poll(response.get_data(as_text=True))


def test_a_label_change_brings_a_page_that_missed_something_up_to_date(team, browser):
    """Only what the page lacks is appended (an email the poll had not fetched yet, too); when
    a message it shows changed, the whole list is drawn again, as the poll would."""
    conv = quick_conversation(team.support)
    browser.login(team.bob)
    page = browser.get(f"/conversations/{conv.id}").get_data(as_text=True)
    (first,) = messages_of(conv)
    db.session.add(
        Message(
            conversation_id=conv.id,
            inbox_id=conv.inbox_id,
            direction="incoming",
            contact_id=first.contact_id,
            text_body="One more thing",
            delivery_status="received",
            threaded_by="in_reply_to",
        )
    )
    db.session.commit()

    form = {"labels": "vip", "fp": poll_fingerprint(page)}
    html = browser.post(f"/conversations/{conv.id}/labels", form).get_data(as_text=True)
    (news,) = re.findall(r'<div hx-swap-oob="beforeend:#thread-messages">(.*?)\n</div>', html, re.S)
    assert "One more thing" in news and "Bob Agent labelled this vip" in news
    assert 'id="thread-messages"' not in html
    assert browser.get(messages_poll(html), htmx=True).status_code == 204

    first.text_body = "Hello there (edited)"  # a message the page shows changes
    db.session.commit()
    form = {"labels": "", "fp": poll_fingerprint(html)}
    html = browser.post(f"/conversations/{conv.id}/labels", form).get_data(as_text=True)
    assert html.lstrip().startswith('<div id="thread-labels"')
    assert '<div id="thread-messages" class="thread-messages" hx-swap-oob="true">' in html
    assert "Hello there (edited)" in html and "Bob Agent removed the label vip" in html
    assert "beforeend:#thread-messages" not in html
    assert browser.get(messages_poll(html), htmx=True).status_code == 204


def test_labels_action_without_htmx_redirects_to_the_thread(team, browser):
    conv = quick_conversation(team.support)
    browser.login(team.bob)
    response = browser.post(f"/conversations/{conv.id}/labels", {"labels": "vip"}, htmx=False)
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/conversations/{conv.id}")
    assert names(conv) == ["vip"]


def test_empty_field_removes_every_label(team, browser):
    conv = quick_conversation(team.support)
    set_labels(conv, team.bob, ["vip"])
    browser.login(team.bob)
    assert browser.post(f"/conversations/{conv.id}/labels", {"labels": " , "}).status_code == 200
    assert names(conv) == []


def test_bad_label_shows_the_error_and_keeps_the_input(team, browser):
    conv = quick_conversation(team.support)
    browser.login(team.bob)
    too_long = "x" * 41
    response = browser.post(f"/conversations/{conv.id}/labels", {"labels": f"ok, {too_long}"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'role="alert"' in html and "at most 40 characters" in html
    assert f'value="ok, {too_long}"' in html
    assert names(conv) == [] and activity(conv) == []


def test_labels_action_needs_csrf_and_sign_in(team, browser, client):
    conv = quick_conversation(team.support)
    response = client.post(f"/conversations/{conv.id}/labels", data={"labels": "x"})
    assert response.status_code in (302, 400, 401)
    browser.login(team.bob)
    response = browser.post(f"/conversations/{conv.id}/labels", {"labels": "x"}, csrf=False)
    assert response.status_code == 400
    assert names(conv) == []


def test_other_inboxes_conversations_are_404_for_labels(team, browser):
    conv = quick_conversation(team.support)
    browser.login(team.olga)
    for htmx in (True, False):
        response = browser.post(f"/conversations/{conv.id}/labels", {"labels": "x"}, htmx=htmx)
        assert response.status_code == 404
    assert browser.post("/conversations/999999/labels", {"labels": "x"}).status_code == 404
    assert names(conv) == [] and db.session.scalar(select(func.count(Label.id))) == 0


def test_admin_may_label_anywhere(team, browser):
    conv = quick_conversation(team.billing)
    browser.login(team.ana)
    assert browser.post(f"/conversations/{conv.id}/labels", {"labels": "vip"}).status_code == 200
    assert names(conv) == ["vip"]


def test_list_page_filters_by_label_and_shows_row_labels(team, browser):
    tagged = quick_conversation(team.support, "Tagged one")
    untagged = quick_conversation(team.support, "Untagged one")
    set_labels(tagged, team.bob, ["Billing"])
    browser.login(team.bob)

    page = browser.get("/conversations?label=billing").get_data(as_text=True)
    assert links_to(page, tagged) is True
    assert links_to(page, untagged) is False
    assert 'name="label"' in page and '<option value="billing" selected>Billing</option>' in page
    assert '<span class="badge label">Billing</span>' in page

    fragment = browser.get("/conversations?label=BILLING", htmx=True)
    html = fragment.get_data(as_text=True)
    assert "<html" not in html and 'id="conversation-list"' in html
    assert links_to(html, tagged) is True
    assert links_to(html, untagged) is False

    both = browser.get("/conversations").get_data(as_text=True)
    assert links_to(both, untagged) is True


def test_load_more_keeps_the_label_filter(team, browser):
    start = utcnow()
    for n in range(40):
        conv = quick_conversation(team.support, f"S{n}", at=start - timedelta(minutes=n))
        if n % 4 != 3:  # 30 of the 40 are labelled
            set_labels(conv, team.bob, ["even"])
    browser.login(team.bob)
    page = browser.get("/conversations?label=even").get_data(as_text=True)
    assert page.count('<li class="conv-row') == 25
    more = re.search(r'hx-get="([^"]+)"[^>]*>Load more', page)
    assert more and "label=even" in more.group(1)
    rest = browser.get(more.group(1).replace("&amp;", "&"), htmx=True).get_data(as_text=True)
    assert rest.count('<li class="conv-row') == 5 and "Load more" not in rest


# --- the API ---------------------------------------------------------------------------------


def test_api_lists_labels_and_filters_by_label(team, client):
    tagged = quick_conversation(team.support, "Tagged")
    plain = quick_conversation(team.support, "Plain")
    set_labels(tagged, team.bob, ["vip", "Billing"])

    response = api(client, "GET", "/conversations?label=billing", team.bob)
    assert response.status_code == 200, response.get_json()
    rows = response.get_json()["conversations"]
    assert [row["id"] for row in rows] == [tagged.id]
    assert rows[0]["labels"] == ["Billing", "vip"]

    every = api(client, "GET", "/conversations", team.bob).get_json()["conversations"]
    assert {row["id"]: row["labels"] for row in every} == {
        tagged.id: ["Billing", "vip"],
        plain.id: [],
    }
    detail = api(client, "GET", f"/conversations/{tagged.id}", team.bob).get_json()
    assert detail["labels"] == ["Billing", "vip"]
    assert api(client, "GET", "/conversations?label=billing", team.olga).get_json() == {
        "conversations": [],
        "next_cursor": None,
    }


def test_api_patch_sets_labels(team, client):
    conv = quick_conversation(team.support)
    response = api(client, "PATCH", f"/conversations/{conv.id}", team.bob, {"labels": ["a", "B"]})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["labels"] == ["a", "B"]
    assert response.get_json()["messages"][-1]["text"] == "Bob Agent labelled this a, B"

    response = api(
        client,
        "PATCH",
        f"/conversations/{conv.id}",
        team.bob,
        {"labels": ["a,b"], "status": "resolved"},
    )
    assert response.status_code == 422 and "comma" in response.get_json()["error"]
    db.session.expire_all()
    assert names(conv) == ["a", "B"] and conv.status == "open"  # nothing half-done

    response = api(client, "PATCH", f"/conversations/{conv.id}", team.olga, {"labels": ["x"]})
    assert response.status_code == 404
    assert names(conv) == ["a", "B"]


# --- who sees which labels: only those used in one's own inboxes ------------------------------

SECRET = "Merger-Talks"  # used only on a Support conversation; Olga is only in Billing


def visible_names(user) -> list[str]:
    return [label.display_name for label in labels_visible_to(user)]


def workspace_regions(html: str) -> list[str]:
    """The parts of a list page that name labels: the filter, the sidebar, the empty list."""
    found = [
        re.search(r'<select name="label".*?</select>', html, re.S),
        re.search(r'<aside id="ws-sidebar".*?</aside>', html, re.S),
        re.search(r'<div id="conversation-list".*?</div>', html, re.S),
    ]
    assert all(found), html
    return [match.group(0) for match in found]


@pytest.fixture
def secret_label(team):
    """Bob labels a Support conversation SECRET; Olga labels a Billing one "refund"."""
    support_conv = quick_conversation(team.support, "Acquisition")
    set_labels(support_conv, team.bob, [SECRET, "shared"])
    billing_conv = quick_conversation(team.billing, "Invoice")
    set_labels(billing_conv, team.olga, ["Shared", "refund"])
    return SimpleNamespace(support_conv=support_conv, billing_conv=billing_conv)


def test_an_agent_sees_only_labels_used_in_their_inboxes_and_an_admin_all(team, secret_label):
    unused = quick_conversation(team.support)
    set_labels(unused, team.bob, ["retired"])
    set_labels(unused, team.bob, [])  # the label row stays, on no conversation

    assert visible_names(team.bob) == [SECRET, "shared"]
    assert visible_names(team.olga) == ["refund", "shared"]
    assert visible_names(team.ana) == [SECRET, "refund", "retired", "shared"]

    set_labels(secret_label.billing_conv, team.olga, ["shared", "refund", "merger-talks"])
    assert visible_names(team.olga) == [SECRET, "refund", "shared"]  # used in Billing now


def test_another_inboxes_label_is_not_on_the_list_page_sidebar_or_filter(
    team, secret_label, browser
):
    browser.login(team.olga)
    page = browser.get("/conversations").get_data(as_text=True)
    assert '<option value="refund">refund</option>' in page  # her own labels are offered
    assert "merger" not in page.lower()

    fragment = browser.get("/conversations?status=resolved", htmx=True).get_data(as_text=True)
    assert 'id="conversation-list"' in fragment and "merger" not in fragment.lower()

    poll = browser.get("/conversations/updates?v=stale", htmx=True).get_data(as_text=True)
    assert 'id="ws-sidebar"' in poll and "refund" in poll  # the sidebar, swapped in by the poll
    assert "merger" not in poll.lower()

    for path in ("/conversations?label=merger-talks", "/conversations?label=never-used"):
        html = browser.get(path).get_data(as_text=True)
        assert links_to(html, secret_label.support_conv) is False
        assert links_to(html, secret_label.billing_conv) is False
        assert SECRET not in html  # its spelling would confirm it exists
    # Filtering by the hidden label looks exactly like filtering by one that never existed.
    hidden = browser.get("/conversations?label=merger-talks").get_data(as_text=True)
    unknown = browser.get("/conversations?label=never-used").get_data(as_text=True)
    assert workspace_regions(hidden) == workspace_regions(unknown)


def test_the_label_appears_once_used_in_the_agents_inbox_or_on_joining_its_inbox(
    team, secret_label, browser
):
    browser.login(team.olga)
    assert SECRET not in browser.get("/conversations").get_data(as_text=True)

    db.session.add(InboxMember(inbox_id=team.support.id, user_id=team.olga.id))
    db.session.commit()
    page = browser.get("/conversations").get_data(as_text=True)
    assert f'<option value="merger-talks">{SECRET}</option>' in page  # no stale cached sidebar

    db.session.execute(
        InboxMember.__table__.delete().where(
            InboxMember.inbox_id == team.support.id, InboxMember.user_id == team.olga.id
        )
    )
    db.session.commit()
    assert SECRET not in browser.get("/conversations").get_data(as_text=True)

    set_labels(secret_label.billing_conv, team.olga, ["merger-talks"])
    page = browser.get("/conversations?label=merger-talks").get_data(as_text=True)
    assert f'<option value="merger-talks" selected>{SECRET}</option>' in page
    assert links_to(page, secret_label.billing_conv) is True
    assert links_to(page, secret_label.support_conv) is False


def test_admin_sees_every_label_in_the_workspace(team, secret_label, browser):
    browser.login(team.ana)
    page = browser.get("/conversations").get_data(as_text=True)
    for name in (SECRET, "refund", "shared"):
        assert f">{name}</option>" in page


def test_api_labels_lists_only_the_labels_visible_to_the_token_owner(team, secret_label, client):
    def listed_labels(user) -> list[dict]:
        response = api(client, "GET", "/labels", user)
        assert response.status_code == 200, response.get_json()
        return response.get_json()["labels"]

    assert listed_labels(team.olga) == [
        {"name": "refund", "display_name": "refund", "color": None},
        {"name": "shared", "display_name": "shared", "color": None},
    ]
    assert [row["display_name"] for row in listed_labels(team.bob)] == [SECRET, "shared"]
    assert [row["display_name"] for row in listed_labels(team.ana)] == [SECRET, "refund", "shared"]

    hidden = api(client, "GET", "/conversations?label=merger-talks", team.olga)
    unknown = api(client, "GET", "/conversations?label=never-used", team.olga)
    assert hidden.get_json() == unknown.get_json() == {"conversations": [], "next_cursor": None}
    assert client.get("/api/v1/labels").status_code == 401

    set_labels(secret_label.billing_conv, team.olga, ["Merger-talks"])
    assert [row["name"] for row in listed_labels(team.olga)] == ["merger-talks"]
