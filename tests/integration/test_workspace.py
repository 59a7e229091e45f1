"""The agent workspace in the browser: list, thread, actions, polling, and who may see what."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy import select

from extensions import db, get_queue, get_redis
from models import Conversation, Message, utcnow
from tests.support.workspace import (
    HX,
    Browser,
    deliver,
    make_team,
    messages_of,
    messages_poll,
)
from tests.support.workspace import quick_conversation as shared_quick_conversation


@pytest.fixture
def team(app, inbox, make_user):
    return make_team(inbox, make_user)


@pytest.fixture
def browser(client, auth):
    return Browser(client, auth)


def quick_conversation(inbox, number, subject, text, *, at, status="open", assignee=None):
    """Direct inserts for the list tests: thirty relay round trips would be slow."""
    return shared_quick_conversation(
        inbox,
        subject,
        text=text,
        at=at,
        status=status,
        assignee=assignee,
        email=f"person{number}@customer.example",
        name=f"Person {number}",
        commit=False,
    )


def rows_in(html: str) -> list[str]:
    return re.findall(r'href="/conversations/(\d+)[?"]', html)


def is_fragment(response) -> bool:
    return "<html" not in response.get_data(as_text=True)


def job_exists(message_pk: int) -> bool:
    try:
        Job.fetch(f"send-message-{message_pk}", connection=get_redis())
    except NoSuchJobError:
        return False
    return True


# --- pages and fragments ---------------------------------------------------------------------


def test_list_page_and_fragment(app, client, team, browser):
    conv = deliver(app, client, "m1@customer.example", "The printer is smoking badly.")
    browser.login(team.bob)

    page = browser.get("/conversations")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in html
    assert "HX-Request" in page.vary
    assert 'id="conversation-list"' in html
    assert "Printer on fire" in html and "Carla Customer" in html
    assert "The printer is smoking badly." in html  # snippet of the last message
    assert 'id="count-all">1<' in html and 'id="count-unassigned">1<' in html
    assert 'id="count-mine">0<' in html
    assert "Support" in html and "Billing" not in html  # only Bob's inboxes in the sidebar
    assert rows_in(html) == [str(conv.id)]

    fragment = browser.get("/conversations", htmx=True)
    assert fragment.status_code == 200 and is_fragment(fragment)
    assert "HX-Request" in fragment.vary
    assert fragment.get_data(as_text=True).lstrip().startswith('<div id="conversation-list"')
    assert rows_in(fragment.get_data(as_text=True)) == [str(conv.id)]


def test_thread_page_and_fragments(app, client, team, browser):
    conv = deliver(app, client, "m1@customer.example", "It is smoking.")
    deliver(app, client, "m2@customer.example", "Now flames.", in_reply_to="m1@customer.example")
    browser.login(team.bob)
    for path, region in [
        (f"/conversations/{conv.id}", '<article id="thread"'),
        (f"/conversations/{conv.id}/messages", '<div id="thread-messages"'),
    ]:
        full = browser.get(path)
        html = full.get_data(as_text=True)
        assert full.status_code == 200 and "<html" in html, path
        assert "HX-Request" in full.vary
        # The full page is the workspace: the list with this conversation, the thread beside.
        assert 'id="conversation-list"' in html and 'id="row-' + str(conv.id) + '"' in html
        html = html[html.index('<article id="thread"') :]
        assert "It is smoking." in html and "Now flames." in html
        assert html.index("It is smoking.") < html.index("Now flames.")  # in order
        assert "new conversation" in html and "joined by In-Reply-To" in html
        part = browser.get(path, htmx=True)
        assert part.status_code == 200 and is_fragment(part), path
        assert "HX-Request" in part.vary
        assert part.get_data(as_text=True).lstrip().startswith(region)
    assert 'hx-trigger="every 5s"' in browser.get(f"/conversations/{conv.id}").get_data(
        as_text=True
    )


def test_filters_search_and_load_more(app, team, browser):
    now = utcnow()
    created = []
    for n in range(30):
        created.append(
            quick_conversation(
                team.support, n, f"Question {n}", f"body text {n}", at=now - timedelta(minutes=n)
            )
        )
    quick_conversation(team.support, 90, "Refund please", "zebra", at=now, status="resolved")
    quick_conversation(
        team.support, 91, "Mine", "assigned one", at=now - timedelta(hours=3), assignee=team.bob
    )
    quick_conversation(team.billing, 92, "Billing only", "invoice", at=now)
    db.session.commit()
    browser.login(team.bob)

    first = browser.get("/conversations").get_data(as_text=True)
    newest_first = [str(c.id) for c in created]
    assert rows_in(first) == newest_first[:25]
    more = re.search(r'hx-get="(/conversations\?cursor=[^"]+)"', first)
    assert more, "no load-more control"
    second = browser.get(more.group(1).replace("&amp;", "&"), htmx=True)
    html = second.get_data(as_text=True)
    assert second.status_code == 200 and is_fragment(second)
    assert html.lstrip().startswith('<li class="conv-row')  # rows only, appended in place
    assert rows_in(html) == newest_first[25:] + [
        str(db.session.scalar(select(Conversation.id).where(Conversation.subject == "Mine")))
    ]
    assert "Load more" not in html

    def subjects(query):
        html = browser.get("/conversations?" + query, htmx=True).get_data(as_text=True)
        return re.findall(r'class="conv-subject">#\d+ ([^<]+)<', html)

    assert subjects("status=resolved") == ["Refund please"]
    assert subjects("assignee=me") == ["Mine"]
    assert "Mine" not in subjects("assignee=unassigned")
    assert subjects("q=zebra&status=resolved") == ["Refund please"]
    assert subjects("q=body+text+7") == ["Question 7"]
    assert subjects("q=person12%40customer") == ["Question 12"]
    assert subjects(f"inbox_id={team.billing.id}") == []  # not Bob's inbox: nothing leaks
    assert len(subjects(f"inbox_id={team.support.id}")) == 25
    # The load-more link keeps the filters.
    filtered = browser.get(f"/conversations?inbox_id={team.support.id}&q=Question")
    assert f"inbox_id={team.support.id}" in re.search(
        r'hx-get="(/conversations\?cursor=[^"]+)"', filtered.get_data(as_text=True)
    ).group(1)
    assert browser.get("/conversations?cursor=garbage").status_code == 400

    browser.login(team.ana)
    assert subjects(f"inbox_id={team.billing.id}") == ["Billing only"]


# --- access ------------------------------------------------------------------------------------


def test_outsiders_get_404_everywhere_and_admins_see_all(app, client, team, browser):
    conv = deliver(app, client, "m1@customer.example", "Secret support matter.")
    outgoing = Message(
        conversation_id=conv.id,
        inbox_id=conv.inbox_id,
        direction="outgoing",
        sender_user_id=team.bob.id,
        text_body="we are on it",
        delivery_status="failed",
        delivery_error="550 no such user",
    )
    db.session.add(outgoing)
    db.session.commit()
    before = len(messages_of(conv))

    browser.login(team.olga)
    assert rows_in(browser.get("/conversations?status=open").get_data(as_text=True)) == []
    for htmx in (False, True):
        for path in (f"/conversations/{conv.id}", f"/conversations/{conv.id}/messages"):
            assert browser.get(path, htmx=htmx).status_code == 404, path
        for path, data in [
            (f"/conversations/{conv.id}/reply", {"text": "hi"}),
            (f"/conversations/{conv.id}/assign", {"assignee_id": str(team.olga.id)}),
            (f"/conversations/{conv.id}/status", {"status": "resolved"}),
            (f"/conversations/{conv.id}/messages/{outgoing.id}/retry", {}),
            (f"/conversations/{conv.id}/messages/{outgoing.id}/mark-sent", {}),
        ]:
            assert browser.post(path, data, htmx=htmx).status_code == 404, path
    db.session.expire_all()
    assert len(messages_of(conv)) == before
    assert db.session.get(Conversation, conv.id).status == "open"
    assert db.session.get(Message, outgoing.id).delivery_status == "failed"

    browser.login(team.ana)
    assert rows_in(browser.get("/conversations").get_data(as_text=True)) == [str(conv.id)]
    assert browser.get(f"/conversations/{conv.id}").status_code == 200
    assert browser.get(f"/conversations/{conv.id}/messages", htmx=True).status_code == 200


def test_signed_out_and_no_csrf_are_refused(app, client, team, browser):
    conv = deliver(app, client, "m1@customer.example", "Hello")
    assert client.get("/conversations").status_code == 302
    assert client.get(f"/conversations/{conv.id}").status_code == 302
    browser.login(team.bob)
    response = client.post(f"/conversations/{conv.id}/reply", data={"text": "hi"}, headers=HX)
    assert response.status_code == 400
    assert messages_of(conv, "outgoing") == []


# --- actions -----------------------------------------------------------------------------------


def test_reply_is_queued_and_enqueued_and_note_is_not(app, client, team, browser):
    conv = deliver(app, client, "m1@customer.example", "Help!")
    browser.login(team.bob)
    response = browser.post(
        f"/conversations/{conv.id}/reply",
        {"text": "Unplug it now.", "cc": "boss@customer.example", "bcc": ""},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and is_fragment(response)
    assert html.lstrip().startswith('<article id="thread"')
    assert "Unplug it now." in html and "queued" in html and "boss@customer.example" in html
    (reply,) = messages_of(conv, "outgoing")
    assert reply.delivery_status == "queued" and reply.cc_addresses.addresses() == [
        "boss@customer.example"
    ]
    assert job_exists(reply.id)
    assert f"send-message-{reply.id}" in get_queue("outbound").job_ids

    response = browser.post(f"/conversations/{conv.id}/reply", {"text": "VIP", "private": "1"})
    assert response.status_code == 200
    assert "Private note" in response.get_data(as_text=True)
    (note,) = messages_of(conv, "note")
    assert note.delivery_status is None and not job_exists(note.id)
    assert get_queue("outbound").job_ids == [f"send-message-{reply.id}"]

    # Without htmx the form posts and redirects back to the thread (303, no HX-Redirect needed).
    plain = browser.post(f"/conversations/{conv.id}/reply", {"text": "Plain form"}, htmx=False)
    assert plain.status_code == 303 and plain.headers["Location"].endswith(f"/{conv.id}")


def test_reply_validation_rerenders_the_form_with_422(app, client, team, browser):
    conv = deliver(app, client, "m1@customer.example", "Help!")
    browser.login(team.bob)
    empty = browser.post(f"/conversations/{conv.id}/reply", {"text": "   "})
    assert empty.status_code == 422 and is_fragment(empty)
    assert "the reply is empty" in empty.get_data(as_text=True)
    bad_cc = browser.post(f"/conversations/{conv.id}/reply", {"text": "Kept", "cc": "nope"})
    html = bad_cc.get_data(as_text=True)
    assert bad_cc.status_code == 422 and "is not an email address" in html
    assert ">Kept</textarea>" in html  # the agent's text survives the error
    note_cc = browser.post(
        f"/conversations/{conv.id}/reply",
        {"text": "x", "private": "1", "cc": "a@customer.example"},
        htmx=False,
    )
    assert note_cc.status_code == 422 and "<html" in note_cc.get_data(as_text=True)
    assert messages_of(conv, "outgoing") == [] and messages_of(conv, "note") == []


def test_assign_and_status_add_activity_lines(app, client, team, browser):
    conv = deliver(app, client, "m1@customer.example", "Help!")
    browser.login(team.bob)
    thread = browser.get(f"/conversations/{conv.id}").get_data(as_text=True)
    assert f'<option value="{team.bob.id}"' in thread and f'<option value="{team.ana.id}"' in thread
    assert f'<option value="{team.olga.id}"' not in thread  # not a Support member

    response = browser.post(f"/conversations/{conv.id}/assign", {"assignee_id": str(team.bob.id)})
    assert response.status_code == 200
    assert "Bob Agent assigned this to Bob Agent" in response.get_data(as_text=True)
    response = browser.post(f"/conversations/{conv.id}/status", {"status": "resolved"})
    assert "Bob Agent resolved this conversation" in response.get_data(as_text=True)
    response = browser.post(f"/conversations/{conv.id}/assign", {"assignee_id": ""})
    assert "Bob Agent unassigned Bob Agent" in response.get_data(as_text=True)
    db.session.expire_all()
    conv = db.session.get(Conversation, conv.id)
    assert conv.status == "resolved" and conv.assignee_id is None
    assert [m.text_body for m in messages_of(conv, "activity")] == [
        "Bob Agent assigned this to Bob Agent",
        "Bob Agent resolved this conversation",
        "Bob Agent unassigned Bob Agent",
    ]
    page = browser.get(f"/conversations/{conv.id}").get_data(as_text=True)
    assert page.count('class="msg-activity"') == 3

    for data, needle in [
        ({"assignee_id": str(team.olga.id)}, "is not a member of this conversation"),
        ({"assignee_id": "999999"}, "no active user"),
        ({"assignee_id": "bob"}, "Choose a person from the list."),
    ]:
        bad = browser.post(f"/conversations/{conv.id}/assign", data)
        assert bad.status_code == 422 and needle in bad.get_data(as_text=True)
    bad = browser.post(f"/conversations/{conv.id}/status", {"status": "exploded"})
    assert bad.status_code == 422 and "Status must be one of" in bad.get_data(as_text=True)
    assert len(messages_of(conv, "activity")) == 3


def test_failed_reply_shows_error_and_retry_requeues(app, client, team, browser):
    conv = deliver(app, client, "m1@customer.example", "Help!")
    failed = Message(
        conversation_id=conv.id,
        inbox_id=conv.inbox_id,
        direction="outgoing",
        sender_user_id=team.bob.id,
        text_body="Our answer",
        delivery_status="failed",
        delivery_error="550 5.1.1 mailbox unavailable",
    )
    db.session.add(failed)
    db.session.commit()
    browser.login(team.bob)
    html = browser.get(f"/conversations/{conv.id}").get_data(as_text=True)
    assert "550 5.1.1 mailbox unavailable" in html and ">Retry</button>" in html
    response = browser.post(f"/conversations/{conv.id}/messages/{failed.id}/retry")
    assert response.status_code == 200 and job_exists(failed.id)
    db.session.expire_all()
    assert db.session.get(Message, failed.id).delivery_status == "queued"
    again = browser.post(f"/conversations/{conv.id}/messages/{failed.id}/retry")
    assert again.status_code == 422 and "only a failed reply" in again.get_data(as_text=True)
    incoming = messages_of(conv, "incoming")[0]
    other = deliver(
        app, client, "x@customer.example", "other", subject="Other", sender="x@y.example"
    )
    assert browser.post(f"/conversations/{other.id}/messages/{failed.id}/retry").status_code == 404
    assert browser.post(f"/conversations/{conv.id}/messages/{incoming.id}/retry").status_code == 422


def test_a_reply_of_unknown_fate_waits_for_the_agent_to_send_it_again_or_mark_it_sent(
    app, client, team, browser
):
    from services.background import send_job_id

    conv = deliver(app, client, "m1@customer.example", "Help!")

    def unknown_reply(text: str) -> Message:
        message = Message(
            conversation_id=conv.id,
            inbox_id=conv.inbox_id,
            direction="outgoing",
            sender_user_id=team.bob.id,
            text_body=text,
            delivery_status="unknown",
            delivery_error="The worker stopped after handing this reply to the mail server.",
            handed_over_at=utcnow(),
        )
        db.session.add(message)
        db.session.commit()
        return message

    first, second = unknown_reply("First answer"), unknown_reply("Second answer")
    browser.login(team.bob)
    html = browser.get(f"/conversations/{conv.id}").get_data(as_text=True)
    assert html.count("Delivery unknown: The worker stopped after handing") == 2
    assert html.count(">Send again</button>") == 2 and html.count(">Mark as sent</button>") == 2
    assert f'action="/conversations/{conv.id}/messages/{first.id}/mark-sent"' in html

    # Mark as sent: recorded with who decided, and never queued.
    response = browser.post(f"/conversations/{conv.id}/messages/{first.id}/mark-sent")
    assert response.status_code == 200
    db.session.expire_all()
    marked = db.session.get(Message, first.id)
    assert (
        marked.delivery_status == "sent" and marked.smtp_response == "marked as sent by Bob Agent"
    )
    assert not Job.exists(send_job_id(first.id), connection=get_redis())
    again = browser.post(f"/conversations/{conv.id}/messages/{first.id}/mark-sent")
    assert again.status_code == 422
    assert "only a reply whose delivery is unknown" in again.get_data(as_text=True)

    # Send again: queued as new, the record of the earlier hand-over cleared.
    response = browser.post(f"/conversations/{conv.id}/messages/{second.id}/retry")
    assert response.status_code == 200 and job_exists(second.id)
    db.session.expire_all()
    resent = db.session.get(Message, second.id)
    assert resent.delivery_status == "queued" and resent.handed_over_at is None
    assert "Delivery unknown" not in browser.get(f"/conversations/{conv.id}").get_data(as_text=True)


# --- live updates --------------------------------------------------------------------------------


def test_polling_answers_204_until_something_changes(app, client, team, browser):
    conv = deliver(app, client, "m1@customer.example", "First message")
    browser.login(team.bob)
    html = browser.get(f"/conversations/{conv.id}/messages", htmx=True).get_data(as_text=True)
    poll = messages_poll(html)
    assert "fp=" in poll

    unchanged = browser.get(poll, htmx=True)
    assert unchanged.status_code == 204 and unchanged.data == b""

    deliver(app, client, "m2@customer.example", "Second message", in_reply_to="m1@customer.example")
    changed = browser.get(poll, htmx=True)
    assert changed.status_code == 200 and "Second message" in changed.get_data(as_text=True)
    new_poll = messages_poll(changed.get_data(as_text=True))
    assert new_poll != poll
    assert browser.get(new_poll, htmx=True).status_code == 204

    # A delivery state change also shows: the fingerprint covers updated_at.
    reply = browser.post(f"/conversations/{conv.id}/reply", {"text": "On it"})
    poll = messages_poll(reply.get_data(as_text=True))
    assert browser.get(poll, htmx=True).status_code == 204
    (sent,) = messages_of(conv, "outgoing")
    sent.delivery_status, sent.sent_at = "sent", utcnow()
    db.session.commit()
    update = browser.get(poll, htmx=True)
    assert update.status_code == 200 and 'delivery-sent">sent<' in update.get_data(as_text=True)


# --- safe rendering ------------------------------------------------------------------------------


def test_html_is_sandboxed_and_remote_images_wait_for_load_images(app, client, team, browser):
    conv = deliver(
        app,
        client,
        "m1@customer.example",
        "Look at this",
        html='<p>Look "here"</p><img src="https://tracker.example/photo.png" width="300" '
        'height="200" alt="photo"><script>alert(1)</script>',
    )
    browser.login(team.bob)
    html = browser.get(f"/conversations/{conv.id}").get_data(as_text=True)
    frame = re.search(r"<iframe([^>]*)></iframe>", html, re.S).group(1)
    assert re.search(r'\ssandbox="(?![^"]*allow-scripts)[^"]*"', frame)
    assert "srcdoc" not in frame  # its own URL and CSP (a srcdoc would inherit the page's)
    body = browser.get(frame_src(frame)).get_data(as_text=True)
    assert '<p>Look "here"</p>' in body
    assert 'data-remote-src="https://tracker.example/photo.png"' in body
    assert 'src="https://tracker.example' not in body.replace("data-remote-src", "")
    assert "alert(1)" not in html and "alert(1)" not in body
    assert "Load images" in html

    loaded = browser.get(f"/conversations/{conv.id}/messages?images=1", htmx=True)
    frame = re.search(r"<iframe([^>]*)></iframe>", loaded.get_data(as_text=True), re.S).group(1)
    assert "images=1" in frame_src(frame)
    body = browser.get(frame_src(frame)).get_data(as_text=True)
    assert 'src="https://tracker.example/photo.png"' in body
    assert "data-remote-src" not in body and "Load images" not in loaded.get_data(as_text=True)
    assert "images=1" in re.search(r'hx-get="([^"]+)"', loaded.get_data(as_text=True)).group(1)
    # Only that render: the stored body and the next plain render still defer the image.
    assert "data-remote-src" in messages_of(conv, "incoming")[0].html_body
    again = browser.get(f"/conversations/{conv.id}/messages", htmx=True).get_data(as_text=True)
    assert "Load images" in again


def frame_src(iframe_attributes: str) -> str:
    return re.search(r'\ssrc="([^"]+)"', iframe_attributes).group(1).replace("&amp;", "&")


def test_text_with_script_is_escaped_everywhere(app, client, team, browser):
    conv = deliver(
        app,
        client,
        "m1@customer.example",
        "Hi <script>alert('x')</script> there",
        subject="<script>alert('s')</script>",
        sender='"<img src=x onerror=alert(1)>" <evil@customer.example>',
    )
    browser.login(team.bob)
    for path in ("/conversations", f"/conversations/{conv.id}"):
        html = browser.get(path).get_data(as_text=True)
        assert "<script>alert" not in html and "<img src=x" not in html, path
        assert "&lt;script&gt;alert(" in html, path
