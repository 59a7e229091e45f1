"""Undo send and scheduled send (services/send_later.py), through the composer's forms, the
scheduler's tick (jobs/sweeps.py send_due_replies), a real worker and a real SMTP server.
Time is moved by setting a reply's send_after in the past, never by sleeping."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from email import policy
from email.parser import BytesParser
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from extensions import db
from jobs.sweeps import recover_outgoing, send_due_replies
from models import Conversation, Message, ReplyDraft, utcnow
from services.background import enqueue_send
from services.backlog import _gather_from_database
from services.leases import OUTGOING, claim
from tests.conftest import global_smtp
from tests.support.inbound import deliver
from tests.support.workspace import Browser
from worker import build_worker

DOMAIN = "reply.example.com"
ZONE = "America/New_York"
CARLA = "Carla Customer <carla@customer.example>"


@pytest.fixture
def app_config(app_config, smtp):
    return {
        **app_config,
        **global_smtp(smtp),
        "MAILER_INBOUND_EMAIL_DOMAIN": DOMAIN,
        "SEND_UNDO_SECONDS": 10,
    }


@pytest.fixture
def browser(client, auth, agent):
    agent.timezone = ZONE
    db.session.commit()
    return Browser(client, auth).login(agent)


def email(body: str, message_id: str, **headers) -> bytes:
    lines = {
        "From": CARLA,
        "To": "support@example.com",
        "Subject": "Printer on fire",
        "Message-ID": f"<{message_id}>",
        **headers,
    }
    head = "".join(f"{k}: {v}\r\n" for k, v in lines.items())
    return f"{head}\r\n{body}\r\n".encode()


@pytest.fixture
def conversation(app, client, inbox) -> Conversation:
    deliver(app, client, email("Help, it is burning.", "first@customer.example"))
    return db.session.scalars(select(Conversation)).one()


def reply(browser, conversation, text: str, **fields):
    return browser.post(f"/conversations/{conversation.id}/reply", {"text": text, **fields})


def later(hours: float) -> str:
    """A time `hours` ahead as the agent types it: in their zone, to the minute."""
    moment = (utcnow() + timedelta(hours=hours)).astimezone(ZoneInfo(ZONE))
    return moment.strftime("%Y-%m-%dT%H:%M")


def outgoing() -> list[Message]:
    db.session.expire_all()
    return list(db.session.scalars(select(Message).where(Message.direction == "outgoing")))


def the_reply() -> Message:
    [message] = outgoing()
    return message


def make_due(message: Message) -> None:
    db.session.execute(
        update(Message)
        .where(Message.id == message.id)
        .values(send_after=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()


def tick_and_work(app) -> int:
    """The scheduler's tick, then the outbound worker until its queue is empty."""
    enqueued = send_due_replies()
    build_worker(app, ["outbound"], simple=True).work(burst=True)
    db.session.expire_all()
    return enqueued


def sent_with(smtp, words: str) -> list:
    found = []
    for envelope in smtp.envelopes:
        parsed = BytesParser(policy=policy.default).parsebytes(envelope.content)
        if words in parsed.get_body(("plain",)).get_content():
            found.append(parsed)
    return found


def draft_of(conversation, agent) -> ReplyDraft | None:
    db.session.expire_all()
    return db.session.scalar(
        select(ReplyDraft).where(
            ReplyDraft.conversation_id == conversation.id, ReplyDraft.user_id == agent.id
        )
    )


# --- undo send ------------------------------------------------------------------------------


def test_undo_within_the_window_sends_nothing_and_the_words_are_back_as_the_draft(
    app, conversation, browser, agent, smtp
):
    upload = (io.BytesIO(b"%PDF-1.4 manual"), "manual.pdf")
    response = reply(
        browser, conversation, "Unplug it first.", cc="boss@customer.example", attachments=upload
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    message = the_reply()
    assert message.delivery_status == "queued" and not message.scheduled
    wait = message.send_after - utcnow()
    assert timedelta(seconds=8) < wait <= timedelta(seconds=10)
    assert "Sending in 10 s" in html or "Sending in 9 s" in html
    take_back_url = f"/conversations/{conversation.id}/messages/{message.id}/take-back"
    assert f'action="{take_back_url}"' in html and ">Undo</button>" in html

    assert tick_and_work(app) == 0  # the window is open: no job yet, nothing sent
    assert sent_with(smtp, "Unplug it first.") == []

    undone = browser.post(take_back_url)
    html = undone.get_data(as_text=True)
    assert undone.status_code == 200
    assert "Not sent: your reply is back in the composer. Attach manual.pdf again" in html
    assert ">Unplug it first.</textarea>" in html and 'value="boss@customer.example"' in html
    assert outgoing() == []
    draft = draft_of(conversation, agent)
    assert (draft.kind, draft.text, draft.cc) == (
        "reply",
        "Unplug it first.",
        "boss@customer.example",
    )

    assert tick_and_work(app) == 0 and recover_outgoing() == 0
    assert sent_with(smtp, "Unplug it first.") == []


def test_after_the_window_the_reply_is_sent_exactly_once(app, conversation, browser, smtp):
    assert reply(browser, conversation, "It is on its way.").status_code == 200
    message = the_reply()
    make_due(message)

    assert tick_and_work(app) == 1
    assert the_reply().delivery_status == "sent"
    [sent] = sent_with(smtp, "It is on its way.")
    assert str(sent["To"]) == CARLA
    assert tick_and_work(app) == 0 and recover_outgoing() == 0  # never twice
    assert len(sent_with(smtp, "It is on its way.")) == 1


def test_the_sweep_and_a_stray_job_never_send_early(app, conversation, browser, smtp):
    assert reply(browser, conversation, "Not yet, please.").status_code == 200
    message = the_reply()
    # Old enough for the sweep to think its job was lost; its window is still open.
    db.session.execute(
        update(Message)
        .where(Message.id == message.id)
        .values(updated_at=utcnow() - timedelta(minutes=5))
    )
    db.session.commit()
    assert recover_outgoing() == 0
    assert _gather_from_database(utcnow(), None, None).stale_queued_replies == 0

    enqueue_send(message.id)  # a job nobody should have enqueued: its claim refuses
    build_worker(app, ["outbound"], simple=True).work(burst=True)
    message = the_reply()
    assert (message.delivery_status, message.delivery_attempts) == ("queued", 0)
    assert sent_with(smtp, "Not yet, please.") == []


def test_undo_too_late_is_a_clear_answer(app, conversation, browser, smtp):
    assert reply(browser, conversation, "Coming right up.").status_code == 200
    message = the_reply()
    make_due(message)
    assert claim(OUTGOING, message.id, Message.delivery_status == "queued") == 1  # a send job

    response = browser.post(f"/conversations/{conversation.id}/messages/{message.id}/take-back")
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "Too late to take it back: the reply is being sent, or was." in html
    assert the_reply().delivery_status == "sending"


def test_without_htmx_undo_is_a_plain_form_that_redirects_to_the_thread(app, conversation, browser):
    page = reply(browser, conversation, "Plain and simple.")
    message = the_reply()
    url = f"/conversations/{conversation.id}/messages/{message.id}/take-back"
    response = browser.post(url, htmx=False)
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/conversations/{conversation.id}")
    thread = browser.get(f"/conversations/{conversation.id}").get_data(as_text=True)
    assert "Not sent: your reply is back in the composer." in thread
    assert ">Plain and simple.</textarea>" in thread
    assert page.status_code == 200 and outgoing() == []


# --- scheduled send -------------------------------------------------------------------------


def test_a_scheduled_reply_is_sent_at_its_time_in_the_agents_zone(app, conversation, browser, smtp):
    typed = later(hours=20)
    response = reply(browser, conversation, "Good morning, Carla.", later="1", send_at=typed)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    message = the_reply()
    assert message.scheduled and message.delivery_status == "queued"
    local = message.send_after.astimezone(ZoneInfo(ZONE))
    assert local.strftime("%Y-%m-%dT%H:%M") == typed
    assert f'Scheduled for <time datetime="{message.send_after.isoformat()}">' in html
    assert local.strftime("%a %H:%M") in html  # "Tue 09:00", as the agent reads it
    assert ">Cancel</button>" in html and ">Send now</button>" in html
    assert 'badge delivery delivery-queued">scheduled<' in html

    assert tick_and_work(app) == 0 and recover_outgoing() == 0
    assert _gather_from_database(utcnow(), None, None).stale_queued_replies == 0
    assert sent_with(smtp, "Good morning, Carla.") == []

    make_due(message)
    assert tick_and_work(app) == 1
    assert the_reply().delivery_status == "sent"
    assert len(sent_with(smtp, "Good morning, Carla.")) == 1
    assert tick_and_work(app) == 0
    assert len(sent_with(smtp, "Good morning, Carla.")) == 1


def test_a_cancelled_scheduled_reply_sends_nothing(app, conversation, browser, agent, smtp):
    reply(browser, conversation, "See you tomorrow.", later="1", send_at=later(hours=3))
    message = the_reply()
    response = browser.post(f"/conversations/{conversation.id}/messages/{message.id}/take-back")
    assert response.status_code == 200
    assert ">See you tomorrow.</textarea>" in response.get_data(as_text=True)
    assert outgoing() == [] and draft_of(conversation, agent).text == "See you tomorrow."

    assert tick_and_work(app) == 0
    assert sent_with(smtp, "See you tomorrow.") == []


def test_the_customer_writing_in_between_holds_it_and_the_thread_asks(
    app, client, conversation, browser, smtp
):
    reply(browser, conversation, "Replacement ships Monday.", later="1", send_at=later(hours=2))
    message = the_reply()
    raw = email("Never mind, it works again!", "second@customer.example")
    deliver(app, client, raw)
    assert tick_and_work(app) == 0
    assert the_reply().delivery_status == "held"

    html = browser.get(f"/conversations/{conversation.id}", htmx=True).get_data(as_text=True)
    assert "Carla Customer</strong> wrote after you scheduled this" in html
    assert ">Send now</button>" in html and ">Edit</button>" in html

    make_due(message)  # its time comes: still held, still not sent
    enqueue_send(message.id)
    assert tick_and_work(app) == 0
    assert the_reply().delivery_status == "held"
    assert sent_with(smtp, "Replacement ships Monday.") == []

    response = browser.post(f"/conversations/{conversation.id}/messages/{message.id}/send-now")
    assert response.status_code == 200
    build_worker(app, ["outbound"], simple=True).work(burst=True)
    assert the_reply().delivery_status == "sent"
    assert len(sent_with(smtp, "Replacement ships Monday.")) == 1


def test_a_send_job_holds_a_reply_the_customer_answered_before_the_tick_did(
    app, client, conversation, browser, agent, smtp
):
    reply(browser, conversation, "We will call you.", later="1", send_at=later(hours=1))
    message = the_reply()
    deliver(app, client, email("Please do not call.", "third@customer.example"))
    make_due(message)
    enqueue_send(message.id)
    build_worker(app, ["outbound"], simple=True).work(burst=True)
    assert the_reply().delivery_status == "held"

    edit = browser.post(f"/conversations/{conversation.id}/messages/{message.id}/take-back")
    assert edit.status_code == 200 and outgoing() == []
    assert draft_of(conversation, agent).text == "We will call you."
    assert sent_with(smtp, "We will call you.") == []


@pytest.mark.parametrize(
    ("typed", "words"),
    [
        ("past", "has passed (it is "),
        ("tomorrow-ish", "“tomorrow-ish” is not a date and time: give it as YYYY-MM-DD HH:MM"),
        ("", "Choose when to send it: a date and a time (America/New_York)."),
    ],
)
def test_scheduling_in_the_past_or_an_unreadable_time_says_what_to_fix(
    app, conversation, browser, typed, words
):
    send_at = later(hours=-1) if typed == "past" else typed
    response = reply(browser, conversation, "Scheduled words.", later="1", send_at=send_at)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert words in html
    assert 'id="reply-send-at-' in html and 'aria-invalid="true"' in html
    assert ">Scheduled words.</textarea>" in html  # nothing the agent typed is lost
    assert outgoing() == []


def test_a_collision_while_scheduling_asks_first_and_send_anyway_still_schedules(
    app, client, conversation, browser
):
    page = browser.get(f"/conversations/{conversation.id}").get_data(as_text=True)
    seen = re.search(r'name="seen" value="(\d+)"', page).group(1)
    deliver(app, client, email("Any news?", "fourth@customer.example"))
    typed = later(hours=5)
    asked = reply(browser, conversation, "Tomorrow.", later="1", send_at=typed, seen=seen)
    html = asked.get_data(as_text=True)
    assert asked.status_code == 409 and "Since you started writing" in html
    assert '<input type="hidden" name="later" value="1">' in html and f'value="{typed}"' in html
    assert outgoing() == []

    fields = {"later": "1", "send_at": typed, "seen": seen, "confirm": "1"}
    assert reply(browser, conversation, "Tomorrow.", **fields).status_code == 200
    message = the_reply()
    assert message.scheduled and message.delivery_status == "queued"
