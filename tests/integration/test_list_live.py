"""The conversation list: unread markers, and its live updates (the 5 s poll that costs an
idle agent one Redis GET and swaps the list in only when its first page changed)."""

from __future__ import annotations

import json
import re

import pytest

from extensions import db, get_redis
from services import list_version
from services.conversations import update_conversation
from services.labels import set_labels
from tests.support.workspace import Browser, deliver, make_team, quick_conversation


@pytest.fixture
def team(app, inbox, make_user):
    return make_team(inbox, make_user)


@pytest.fixture
def bob(client, auth, team):
    return Browser(client, auth).login(team.bob)


def row(html: str, conversation) -> str:
    match = re.search(rf'<li class="conv-row[^"]*" id="row-{conversation.id}">.*?</li>', html, re.S)
    assert match, f"no row for conversation {conversation.id}"
    return match.group(0)


def unread(row_html: str) -> bool:
    return row_html.startswith('<li class="conv-row unread"')


def state(html: str) -> dict:
    found = dict(re.findall(r'<input type="hidden" name="(v|fp)" value="([^"]*)">', html))
    assert set(found) == {"v", "fp"}, html[:500]
    return found


def poll(bob, **params):
    return bob.get("/conversations/updates", htmx=True, query_string=params)


def test_unread_until_opened_and_again_after_new_activity(app, client, team, bob):
    conv = deliver(app, client, "u1@customer.example", "Hello?")
    listing = bob.get("/conversations").get_data(as_text=True)
    assert unread(row(listing, conv)) and 'aria-label="Unread"' in listing

    assert bob.get(f"/conversations/{conv.id}", htmx=True).status_code == 200
    bob.post(f"/conversations/{conv.id}/read")  # what the thread on screen asks for
    listing = bob.get("/conversations").get_data(as_text=True)
    assert not unread(row(listing, conv))

    # The customer writes again: unread for Bob once more.
    deliver(app, client, "u2@customer.example", "Anyone?", in_reply_to="u1@customer.example")
    assert unread(row(bob.get("/conversations").get_data(as_text=True), conv))
    bob.get(f"/conversations/{conv.id}")  # the full page asks to be marked read too
    bob.post(f"/conversations/{conv.id}/read")
    assert not unread(row(bob.get("/conversations").get_data(as_text=True), conv))

    # Bob's own actions do not make it unread for him; a colleague's does.
    bob.post(f"/conversations/{conv.id}/reply", {"text": "Here!", "private": "1"})
    assert not unread(row(bob.get("/conversations").get_data(as_text=True), conv))
    ana = bob.login(team.ana)
    assert unread(row(ana.get("/conversations").get_data(as_text=True), conv))  # never opened
    ana.post(f"/conversations/{conv.id}/reply", {"text": "Bob, check the invoice", "private": "1"})
    bob = ana.login(team.bob)
    assert unread(row(bob.get("/conversations").get_data(as_text=True), conv))


def test_reading_a_thread_is_a_post_and_a_get_never_writes(app, client, team, bob):
    conv = deliver(app, client, "r1@customer.example", "Read me")
    for path, htmx in [
        (f"/conversations/{conv.id}", False),
        (f"/conversations/{conv.id}", True),
        (f"/conversations/{conv.id}/messages", True),
    ]:
        html = bob.get(path, htmx=htmx).get_data(as_text=True)
        # The thread on screen asks for the POST itself (htmx, on load) ...
        assert f'hx-post="/conversations/{conv.id}/read" hx-trigger="load"' in html, path
        # ... and the GET changed nothing.
        assert unread(row(bob.get("/conversations").get_data(as_text=True), conv)), path
    assert bob.post(f"/conversations/{conv.id}/read", csrf=False).status_code == 400
    assert unread(row(bob.get("/conversations").get_data(as_text=True), conv))
    assert bob.post(f"/conversations/{conv.id}/read").status_code == 204
    assert not unread(row(bob.get("/conversations").get_data(as_text=True), conv))
    olga = bob.login(team.olga)  # not a member of Support: 404, as everywhere
    assert olga.post(f"/conversations/{conv.id}/read").status_code == 404


def test_idle_poll_is_204_and_touches_no_database(app, team, bob):
    quick_conversation(team.support, "Quiet one")
    first = bob.get("/conversations").get_data(as_text=True)
    seen = state(first)
    statements = []

    from sqlalchemy import event

    def count(*args):
        statements.append(args[2])

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        response = poll(bob, **seen)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert response.status_code == 204 and response.get_data() == b""
    # At most the signed-in user is loaded (Flask-Login); the list itself costs no query.
    assert all("FROM users" in sql for sql in statements), statements


def test_poll_swaps_in_a_new_conversation_and_the_counts(app, client, team, bob):
    seen = state(bob.get("/conversations").get_data(as_text=True))
    conv = deliver(app, client, "n1@customer.example", "Brand new", subject="Fresh")
    response = poll(bob, **seen)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<div id="conversation-list" class="ws-list" hx-swap-oob="true">' in html
    assert "Fresh" in row(html, conv) and unread(row(html, conv))
    assert '<aside id="ws-sidebar" class="ws-sidebar" hx-swap-oob="true">' in html
    # The open thread's row stays highlighted: the poll sends its id along.
    with_open = poll(bob, open=str(conv.id), **seen).get_data(as_text=True)
    assert row(with_open, conv).startswith('<li class="conv-row unread current"')
    assert 'id="count-all">1<' in html and 'id="count-unassigned">1<' in html
    newer = state(html)
    assert newer != seen
    assert poll(bob, **newer).status_code == 204  # and quiet again afterwards


def test_poll_keeps_the_list_when_the_change_is_elsewhere(app, team, bob):
    mine = quick_conversation(team.support, "Visible to Bob")
    elsewhere = quick_conversation(team.billing, "Billing business")
    seen = state(bob.get("/conversations").get_data(as_text=True))
    update_conversation(elsewhere, team.olga, status="pending")
    db.session.commit()
    response = poll(bob, **seen)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    # Only the version moves: no list swap, so Bob's scroll and "load more" pages stay put.
    assert html.lstrip().startswith('<div id="list-state" hidden hx-swap-oob="true">')
    assert "conversation-list" not in html and "ws-sidebar" not in html
    assert state(html)["fp"] == seen["fp"] and state(html)["v"] != seen["v"]
    # A label on a listed conversation is a change the list shows after the next swap.
    set_labels(mine, team.bob, ["vip"])
    db.session.commit()
    assert poll(bob, **state(html)).status_code == 200


def test_poll_follows_the_filters_it_is_sent(app, team, bob):
    quick_conversation(team.support, "Open one")
    done = quick_conversation(team.support, "Done one", status="resolved")
    seen = state(bob.get("/conversations?status=resolved").get_data(as_text=True))
    update_conversation(done, team.bob, status="open")
    db.session.commit()
    html = poll(bob, status="resolved", **seen).get_data(as_text=True)
    assert "No resolved conversations" in html and "Done one" not in html


def test_the_version_moves_on_commit_only(app, team):
    conv = quick_conversation(team.support, "Counting")
    before = list_version.current()
    conv.subject = "Renamed but rolled back"
    db.session.flush()
    db.session.rollback()
    assert list_version.current() == before
    update_conversation(conv, team.bob, status="pending")
    db.session.commit()
    assert int(list_version.current()) == int(before) + 1
    assert get_redis().get(list_version.KEY) is not None


def test_a_savepoint_moves_the_version_once_at_the_real_commit(app, team):
    """A new conversation takes its number in a savepoint: its release is not the commit
    (the rows are not visible to the list yet), so the version moves once, after it."""
    conv = quick_conversation(team.support, "Savepoints")
    before = int(list_version.current())
    with db.session.begin_nested():
        conv.subject = "Inside a savepoint"
    assert int(list_version.current()) == before  # released, not committed
    try:
        with db.session.begin_nested():
            conv.subject = "Rolled back to the savepoint"
            db.session.flush()
            raise RuntimeError
    except RuntimeError:
        pass
    db.session.commit()  # the first savepoint's change still commits: one move
    assert int(list_version.current()) == before + 1


def test_list_updates_needs_sign_in_and_only_shows_own_inboxes(app, client, team, bob):
    quick_conversation(team.billing, "Billing secret")
    html = poll(bob, v="stale", fp="stale").get_data(as_text=True)
    assert "Billing secret" not in html
    # Without htmx (typed into the address bar) it is the list page with the same filters.
    response = bob.get("/conversations/updates?status=pending&v=1&fp=x")
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/conversations?status=pending")
    bob.auth.logout()
    response = client.get("/conversations/updates")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_sidebar_lists_labels_with_their_colours(app, team, bob):
    conv = quick_conversation(team.support, "Tagged")
    set_labels(conv, team.bob, ["Billing"])
    db.session.commit()
    from models import Label

    label = db.session.query(Label).one()
    label.color = "#d92d20"
    db.session.commit()
    html = bob.get("/conversations").get_data(as_text=True)
    sidebar = html[html.index('id="ws-sidebar"') : html.index("</aside>")]
    assert "Labels" in sidebar and 'href="/conversations?label=billing"' in sidebar
    assert 'fill="#d92d20"' in sidebar and "Billing" in sidebar


def test_bulk_updates_move_the_version_too(app, team):
    from sqlalchemy import update

    from models import Conversation

    conv = quick_conversation(team.support, "Bulk")
    before = int(list_version.current())
    db.session.execute(update(Conversation).where(Conversation.id == conv.id).values(subject="X"))
    db.session.commit()
    assert int(list_version.current()) == before + 1


def test_sidebar_counts_are_cached_per_version_and_per_set_of_inboxes(app, team, bob):
    from models import InboxMember

    quick_conversation(team.support, "Support one")
    quick_conversation(team.billing, "Billing one")
    quick_conversation(team.billing, "Billing two")
    html = bob.get("/conversations").get_data(as_text=True)
    assert 'id="count-all">1<' in html
    # Joining an inbox changes no conversation (same version) but must change the counts.
    db.session.add(InboxMember(inbox_id=team.billing.id, user_id=team.bob.id))
    db.session.commit()
    html = bob.get("/conversations").get_data(as_text=True)
    assert 'id="count-all">3<' in html and "Billing" in html
    # A cached answer is served while nothing changes; a change recomputes it.
    version = list_version.current()
    kept = [
        json.loads(get_redis().get(k))
        for k in get_redis().keys(f"threadline:cache:sidebar:{team.bob.id}:*")
    ]
    assert any(entry["version"] == version for entry in kept)
    quick_conversation(team.support, "Support two")
    assert 'id="count-all">4<' in bob.get("/conversations").get_data(as_text=True)


def test_kept_sidebar_counts_are_served_only_at_the_version_they_were_counted_for(app, team, bob):
    """list_version.cached keeps the counts with the version read with them (one round trip):
    an entry left from another version is counted anew, never shown."""
    quick_conversation(team.support, "Support one")
    assert 'id="count-all">1<' in bob.get("/conversations").get_data(as_text=True)
    (key,) = get_redis().keys(f"threadline:cache:sidebar:{team.bob.id}:*")
    kept = json.loads(get_redis().get(key))
    assert kept["version"] == list_version.current()
    kept["value"]["all"] = 99  # what the kept entry says, to tell it from a recount
    get_redis().set(key, json.dumps(kept))
    assert 'id="count-all">99<' in bob.get("/conversations").get_data(as_text=True)
    kept["version"] = str(int(kept["version"]) - 1)  # counted at an older version
    get_redis().set(key, json.dumps(kept))
    html = bob.get("/conversations").get_data(as_text=True)
    assert 'id="count-all">1<' in html and 'id="list-poll"' in html
