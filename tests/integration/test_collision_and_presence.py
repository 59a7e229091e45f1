"""Collision safety in the composer, who else is viewing a thread, and reply attachments."""

from __future__ import annotations

import io
import json
import re
import time
from html import unescape

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from extensions import db, get_queue, get_redis, get_storage
from models import Attachment, InboxMember, Message
from services import presence
from tests.integration import test_workspace
from tests.integration.test_workspace import (
    deliver,
    is_fragment,
    job_exists,
    messages_of,
)
from tests.support.workspace import messages_poll

team = test_workspace.team  # the same people and inboxes as the workspace tests
browser = test_workspace.browser


@pytest.fixture
def app_config(app_config):
    return {**app_config, "ATTACHMENT_MAX_BYTES": "2048"}


def seen_of(html: str) -> str:
    return re.search(r'name="seen" value="(\d+)"', html).group(1)


def open_composer(browser, conv) -> str:
    page = browser.get(f"/conversations/{conv.id}")
    assert page.status_code == 200
    return seen_of(page.get_data(as_text=True))


# --- collision safety -----------------------------------------------------------------------


def test_new_inbound_message_since_opening_asks_before_sending(app, client, team, browser):
    conv = deliver(app, client, "m1@customer.example", "Printer smokes.")
    browser.login(team.bob)
    seen = open_composer(browser, conv)
    assert seen == str(messages_of(conv)[-1].id)

    deliver(
        app,
        client,
        "m2@customer.example",
        "Never mind, fixed it!",
        in_reply_to="m1@customer.example",
    )
    draft = {"text": "Unplug it now.", "cc": "boss@customer.example", "bcc": "", "seen": seen}
    response = browser.post(f"/conversations/{conv.id}/reply", draft)
    html = response.get_data(as_text=True)
    assert response.status_code == 409 and is_fragment(response)
    assert html.lstrip().startswith('<article id="thread"')
    assert "Since you started writing" in html
    block = html[html.index('id="composer-collision"') :]
    block = block[: block.index("</div>")]
    assert "carla@customer.example" in block and "wrote" in block
    assert "Never mind, fixed it!" in block and "just now" in block
    assert "Printer smokes." not in block  # only what is new
    assert ">Unplug it now.</textarea>" in html and 'value="boss@customer.example"' in html
    assert 'name="confirm" value="1"' in html and "Send anyway" in html
    new_seen = seen_of(html)
    assert int(new_seen) > int(seen)
    assert html.index('id="thread-messages"') < html.index("Send anyway")  # refreshed thread
    assert "Never mind, fixed it!" in html[: html.index('id="composer"')]
    assert messages_of(conv, "outgoing") == [] and get_queue("outbound").job_ids == []

    sent = browser.post(
        f"/conversations/{conv.id}/reply", {**draft, "seen": new_seen, "confirm": "1"}
    )
    assert sent.status_code == 200
    (reply,) = messages_of(conv, "outgoing")
    assert reply.text_body == "Unplug it now." and reply.delivery_status == "queued"
    assert job_exists(reply.id)
    assert "Since you started writing" not in sent.get_data(as_text=True)


def test_another_agents_reply_collides_and_notes_follow_the_same_rule(
    app, client, team, browser, make_user
):
    carol = make_user(email="carol@staff.example", name="Carol Colleague")
    db.session.add(InboxMember(inbox_id=team.support.id, user_id=carol.id))
    db.session.commit()
    conv = deliver(app, client, "m1@customer.example", "Help!")
    browser.login(team.bob)
    seen = open_composer(browser, conv)
    browser.login(carol)  # one test client (Flask-Login keeps the user in g): agents take turns
    carols = browser.post(f"/conversations/{conv.id}/reply", {"text": "Carol on it."})
    assert carols.status_code == 200
    browser.login(team.bob)

    note = browser.post(
        f"/conversations/{conv.id}/reply", {"text": "VIP customer", "private": "1", "seen": seen}
    )
    html = note.get_data(as_text=True)
    assert note.status_code == 409
    assert "Since you started writing" in html and "Carol Colleague" in html
    assert "replied" in html and "Carol on it." in html
    assert 'name="private" value="1" checked' in html  # the note box stays ticked
    assert messages_of(conv, "note") == []

    # Assignment and status lines are activity, not news worth a question.
    browser.post(f"/conversations/{conv.id}/status", {"status": "pending"})
    seen = open_composer(browser, conv)
    ok = browser.post(f"/conversations/{conv.id}/status", {"status": "open"})
    assert ok.status_code == 200
    sent = browser.post(f"/conversations/{conv.id}/reply", {"text": "Hi there", "seen": seen})
    assert sent.status_code == 200
    (mine,) = [m for m in messages_of(conv, "outgoing") if m.sender_user_id == team.bob.id]
    assert job_exists(mine.id)


def test_no_collision_sends_at_once_and_without_htmx_too(app, client, team, browser):
    conv = deliver(app, client, "m1@customer.example", "Help!")
    browser.login(team.bob)
    seen = open_composer(browser, conv)
    response = browser.post(f"/conversations/{conv.id}/reply", {"text": "First", "seen": seen})
    assert response.status_code == 200
    (first,) = messages_of(conv, "outgoing")
    assert job_exists(first.id)
    assert seen_of(response.get_data(as_text=True)) == str(first.id)  # my own reply is seen

    # The plain form: a collision is a full page with 409, and confirm sends with a redirect.
    deliver(app, client, "m2@customer.example", "More", in_reply_to="m1@customer.example")
    page = browser.post(
        f"/conversations/{conv.id}/reply", {"text": "Second", "seen": seen}, htmx=False
    )
    assert page.status_code == 409 and "<html" in page.get_data(as_text=True)
    assert "Since you started writing" in page.get_data(as_text=True)
    done = browser.post(
        f"/conversations/{conv.id}/reply",
        {"text": "Second", "seen": seen, "confirm": "1"},
        htmx=False,
    )
    assert done.status_code == 303
    assert [m.text_body for m in messages_of(conv, "outgoing")] == ["First", "Second"]


def test_htmx_swaps_409_and_422_answers_like_pages(app, client, team, browser):
    """One responseHandling in the base template (not a handler per page): the first rule
    whose code matches decides, as htmx reads them."""
    conv = deliver(app, client, "m1@customer.example", "Help!")
    browser.login(team.bob)
    html = browser.get(f"/conversations/{conv.id}").get_data(as_text=True)
    config = json.loads(
        unescape(re.search(r'<meta name="htmx-config" content=\'([^\']+)\'', html).group(1))
    )

    def handling(status: str) -> dict:
        return next(r for r in config["responseHandling"] if re.match(r["code"], status))

    for status in ("409", "422"):
        assert handling(status)["swap"] is True and not handling(status).get("error")
    assert handling("404") == {"code": "[45]..", "swap": False, "error": True}
    assert handling("204")["swap"] is False


# --- who else is viewing --------------------------------------------------------------------


def test_viewers_show_each_other_and_age_out(app, client, team, browser):
    conv = deliver(app, client, "m1@customer.example", "Help!")
    db.session.add(InboxMember(inbox_id=team.support.id, user_id=team.ana.id))
    db.session.commit()
    browser.login(team.bob)
    first = browser.get(f"/conversations/{conv.id}").get_data(as_text=True)
    assert 'id="thread-viewers"' in first and "Also viewing" not in first
    assert 'hx-trigger="every 10s"' in first

    browser.login(team.ana)  # one test client: the agents take turns
    ana_page = browser.get(f"/conversations/{conv.id}").get_data(as_text=True)
    assert "Also viewing: Bob Agent" in ana_page
    browser.login(team.bob)
    page = browser.get(f"/conversations/{conv.id}").get_data(as_text=True)
    assert "Also viewing: Ana Admin" in page
    fragment = browser.get(f"/conversations/{conv.id}/viewers", htmx=True)
    text = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and is_fragment(fragment)
    assert "HX-Request" in fragment.vary
    assert text.lstrip().startswith('<p id="thread-viewers"')
    assert "Also viewing: Ana Admin" in text and "Bob Agent" not in text
    full = browser.get(f"/conversations/{conv.id}/viewers")
    assert full.status_code == 200 and "<html" in full.get_data(as_text=True)
    assert "Also viewing: Ana Admin" in full.get_data(as_text=True)

    # Ana closes the tab: her last heartbeat is older than the window.
    get_redis().zadd(presence.key(conv.id), {str(team.ana.id): time.time() - presence.WINDOW - 5})
    gone = browser.get(f"/conversations/{conv.id}/viewers", htmx=True).get_data(as_text=True)
    assert "Also viewing" not in gone and "Ana Admin" not in gone
    assert 0 < get_redis().ttl(presence.key(conv.id)) <= presence.KEY_TTL  # keys clean up
    browser.get(f"/conversations/{conv.id}")  # the next write trims the stale entry
    assert presence.viewer_ids(conv.id) == [team.bob.id]
    assert get_redis().zcard(presence.key(conv.id)) == 1


def test_the_204_poll_is_the_heartbeat(app, client, team, browser):
    conv = deliver(app, client, "m1@customer.example", "Help!")
    browser.login(team.ana)
    html = browser.get(f"/conversations/{conv.id}/messages", htmx=True).get_data(as_text=True)
    poll = messages_poll(html)
    get_redis().delete(presence.key(conv.id))

    unchanged = browser.get(poll, htmx=True)
    assert unchanged.status_code == 204
    assert presence.viewer_ids(conv.id) == [team.ana.id]
    browser.login(team.bob)
    text = browser.get(f"/conversations/{conv.id}/viewers", htmx=True).get_data(as_text=True)
    assert "Also viewing: Ana Admin" in text


def test_viewers_fragment_is_404_for_outsiders(app, client, team, browser):
    conv = deliver(app, client, "m1@customer.example", "Help!")
    browser.login(team.olga)
    assert browser.get(f"/conversations/{conv.id}/viewers", htmx=True).status_code == 404
    assert browser.get(f"/conversations/{conv.id}/viewers").status_code == 404
    assert browser.get("/conversations/999999/viewers", htmx=True).status_code == 404
    assert browser.get(f"/conversations/{conv.id}").status_code == 404
    assert presence.viewer_ids(conv.id) == []  # a 404 records nothing


def test_redis_down_shows_nobody_and_keeps_the_page(app, client, team, browser, monkeypatch):
    conv = deliver(app, client, "m1@customer.example", "Help!")
    browser.login(team.bob)
    warnings = []
    monkeypatch.setattr(presence.log, "warning", lambda *args: warnings.append(args))

    class Down:
        def __getattr__(self, name):
            def fail(*args, **kwargs):
                raise RedisConnectionError("redis is down")

            return fail

    monkeypatch.setattr(presence, "get_redis", lambda: Down())
    page = browser.get(f"/conversations/{conv.id}")
    assert page.status_code == 200 and 'id="thread-viewers"' in page.get_data(as_text=True)
    assert "Also viewing" not in page.get_data(as_text=True)
    assert browser.get(f"/conversations/{conv.id}/viewers", htmx=True).status_code == 200
    html = browser.get(f"/conversations/{conv.id}/messages", htmx=True)
    assert html.status_code == 200
    assert len(warnings) >= 3  # logged, not raised


# --- attachments ----------------------------------------------------------------------------


def upload(name: str, data: bytes, content_type: str | None = "text/plain"):
    return (io.BytesIO(data), name, content_type) if content_type else (io.BytesIO(data), name)


def test_reply_with_two_attachments_is_stored_and_queued(app, client, team, browser):
    conv = deliver(app, client, "m1@customer.example", "Help!")
    browser.login(team.bob)
    page = browser.get(f"/conversations/{conv.id}").get_data(as_text=True)
    assert 'type="file" name="attachments" multiple' in page
    assert 'hx-encoding="multipart/form-data"' in page and 'enctype="multipart/form-data"' in page

    response = browser.post(
        f"/conversations/{conv.id}/reply",
        {
            "text": "Manual attached.",
            "seen": seen_of(page),
            "attachments": [
                upload("manual.txt", b"Step 1: unplug."),
                upload("photo.png", b"\x89PNG fake", "image/png"),
            ],
        },
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    (reply,) = messages_of(conv, "outgoing")
    assert reply.delivery_status == "queued" and job_exists(reply.id)
    files = sorted(
        db.session.scalars(db.select(Attachment).where(Attachment.message_pk == reply.id)),
        key=lambda a: a.filename,
    )
    assert [(a.filename, a.content_type, a.size) for a in files] == [
        ("manual.txt", "text/plain", 15),
        ("photo.png", "image/png", 9),
    ]
    storage = get_storage()
    assert storage.get_bytes(files[0].storage_key) == b"Step 1: unplug."
    assert storage.get_bytes(files[1].storage_key) == b"\x89PNG fake"
    assert "manual.txt" in response.get_data(as_text=True)


def test_a_reply_may_be_only_attachments_with_safe_names(app, client, team, browser):
    conv = deliver(app, client, "m1@customer.example", "Help!")
    browser.login(team.bob)
    response = browser.post(
        f"/conversations/{conv.id}/reply",
        {
            "text": "",
            "attachments": [
                upload("../../etc/pass\u202ewd:x.txt", b"hi", None),
                upload("", b"", None),  # an empty file input still sends a part
            ],
        },
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    (reply,) = messages_of(conv, "outgoing")
    (attachment,) = reply.attachments
    assert attachment.filename == "passwd_x.txt"
    assert attachment.content_type in ("application/octet-stream", "text/plain")
    assert get_storage().get_bytes(attachment.storage_key) == b"hi"


def test_oversized_attachment_is_422_naming_the_file(app, client, team, browser):
    conv = deliver(app, client, "m1@customer.example", "Help!")
    browser.login(team.bob)
    response = browser.post(
        f"/conversations/{conv.id}/reply",
        {
            "text": "Kept text",
            "attachments": [upload("small.txt", b"ok"), upload("huge.bin", b"x" * 4096)],
        },
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "huge.bin" in html and "2 KB" in html and "small.txt" not in html
    assert ">Kept text</textarea>" in html
    assert db.session.query(Message).filter_by(direction="outgoing").count() == 0
    assert db.session.query(Attachment).count() == 0


def test_touch_returns_who_is_viewing_in_the_same_round_trip(app, team):
    """presence.touch records the agent and answers who is viewing (the thread page draws
    "Also viewing" from it without a second read): stale entries are not among them."""
    conv_id = 4242
    now = time.time()
    get_redis().zadd(presence.key(conv_id), {str(team.ana.id): now - presence.WINDOW - 5})
    assert presence.touch(conv_id, team.bob, now=now) == [team.bob.id]
    assert sorted(presence.touch(conv_id, team.ana, now=now + 1)) == sorted(
        [team.ana.id, team.bob.id]
    )
    assert [u.id for u in presence.viewers(conv_id, excluding=team.ana, seen=[team.bob.id])] == [
        team.bob.id
    ]
