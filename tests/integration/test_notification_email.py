"""Notification emails (issue 18): real mail in through the relay ingress and the worker,
real notification emails out through aiosmtpd. Each event emails exactly the people it
concerns, events fold into one email per conversation, later emails thread under the first,
the unsubscribe link turns an event's emails off in one click, and two sweeps never send
one email twice. The sweep is called directly; fold windows are skipped by moving due times
into the past."""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from email import message_from_bytes
from email.policy import default

import pytest
from sqlalchemy import select, update

from extensions import csrf, db
from models import (
    InboxMember,
    Message,
    Notification,
    NotificationPreference,
    NotificationThread,
    utcnow,
)
from services.conversations import update_conversation
from services.notifications import email as notification_email
from services.notifications.email import send_due_notification_emails
from services.notifications.events import set_preferences
from services.notifications.reply_address import address_for
from services.replies import create_reply
from tests.conftest import global_smtp
from tests.support.inbound import deliver

DOMAIN = "reply.example.com"
PRINTER = "Hello, the printer is on fire."


@pytest.fixture
def app_config(app_config, smtp, extra_settings):
    return {
        **app_config,
        "MAILER_INBOUND_EMAIL_DOMAIN": DOMAIN,
        **global_smtp(smtp),
        **extra_settings,
    }


@pytest.fixture
def outbox(smtp):
    """The SMTP server, emptied: what this test sends, only."""
    smtp.envelopes.clear()
    smtp.data_replies.clear()
    yield smtp
    smtp.data_replies.clear()


@pytest.fixture
def team(inbox, make_user):
    """Ana and Bob are agents of Support; Olga is an agent elsewhere; Dora an admin."""
    ana = make_user(email="ana@staff.example", name="Ana Agent")
    bob = make_user(email="bob@staff.example", name="Bob Agent")
    olga = make_user(email="olga@staff.example", name="Olga Outsider")
    dora = make_user(email="dora@staff.example", name="Dora Admin", role="admin")
    db.session.add_all([InboxMember(inbox_id=inbox.id, user_id=u.id) for u in (ana, bob)])
    db.session.commit()
    return ana, bob, olga, dora


def email(
    message_id="m1@customer.example",
    body=PRINTER,
    subject="Printer on fire",
    in_reply_to="",
    content_type="text/plain",
):
    threading_headers = f"In-Reply-To: <{in_reply_to}>\r\n" if in_reply_to else ""
    return (
        "From: Carla Customer <carla@customer.example>\r\nTo: support@example.com\r\n"
        f"Subject: {subject}\r\nMessage-ID: <{message_id}>\r\n{threading_headers}"
        f"Content-Type: {content_type}; charset=utf-8\r\n\r\n{body}\r\n"
    ).encode()


def reply_from_carla(app, client, n: int, body: str) -> Message:
    return deliver(
        app, client, email(f"m{n}@customer.example", body, "Re: Printer on fire", "m1@customer")
    )


def email_on(user, *events):
    set_preferences(user, {event: (True, True) for event in events})


def make_due() -> None:
    """Every pending email is due now (its fold window skipped)."""
    db.session.execute(
        update(NotificationThread)
        .where(NotificationThread.due_at.is_not(None))
        .values(due_at=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()


def sweep() -> int:
    make_due()
    sent = send_due_notification_emails()
    db.session.expire_all()
    return sent


def notifications_sent(outbox):
    """(envelope, parsed email) of every notification email received, in order."""
    found = []
    for envelope in outbox.envelopes:
        parsed = message_from_bytes(envelope.content, policy=default)
        if str(parsed["Message-ID"]).startswith("<tl-notify."):
            found.append((envelope, parsed))
    return found


def only_email_to(outbox, user):
    """The one notification email sent, asserted to be for `user` alone."""
    sent = notifications_sent(outbox)
    assert [envelope.rcpt_tos for envelope, _ in sent] == [[user.email]]
    return sent[0][1]


def text_of(parsed) -> str:
    return parsed.get_body(("plain",)).get_content().replace("\r\n", "\n")


def rows(user, event=None) -> list[Notification]:
    query = select(Notification).where(Notification.user_id == user.id)
    if event:
        query = query.where(Notification.event == event)
    return list(db.session.scalars(query.order_by(Notification.id)))


# --- each event, exactly the people it concerns ----------------------------------------------


def test_a_new_conversation_emails_the_members_who_chose_it(app, client, team, outbox):
    ana, bob, olga, dora = team
    email_on(ana, "new_conversation")
    email_on(olga, "new_conversation")  # not a member of Support
    email_on(dora, "new_conversation")  # an admin, not a member: not "my inbox"
    message = deliver(app, client, email())

    assert sweep() == 1
    parsed = only_email_to(outbox, ana)
    body = text_of(parsed)
    conversation = message.conversation
    assert parsed["Subject"] == f"[#{conversation.display_number}] Printer on fire"
    assert "New conversation in Support" in body
    assert PRINTER in body
    assert f"#{conversation.display_number} Printer on fire" in body
    assert "Carla Customer <carla@customer.example> · Support" in body
    assert f"http://localhost/conversations/{conversation.id}" in body
    # Bob keeps the default (in the app only): told in the bell, not by email.
    [bell] = rows(bob)
    assert (bell.event, bell.in_app, bell.email) == ("new_conversation", True, None)
    assert [n.email for n in rows(ana)] == ["sent"]
    assert rows(olga) == [] and rows(dora) == []


def test_auto_assignment_folds_into_the_new_conversation_email(app, client, inbox, team, outbox):
    ana, bob, *_ = team
    email_on(ana, "new_conversation")
    inbox.auto_assign = True
    ana.availability = "online"
    db.session.commit()
    deliver(app, client, email())

    assert sweep() == 1
    body = text_of(only_email_to(outbox, ana))
    assert f"Assigned to you\nNew conversation in Support\n\n{PRINTER}" in body
    assert body.count(PRINTER) == 1  # both events are about one message: shown once
    assert sorted(n.event for n in rows(ana)) == ["assigned", "new_conversation"]


def test_an_assignment_by_a_colleague_emails_the_assignee_only(app, client, team, outbox):
    ana, bob, *_ = team
    message = deliver(app, client, email())
    update_conversation(message.conversation, bob, assignee_id=ana.id)

    assert sweep() == 1
    body = text_of(only_email_to(outbox, ana))
    assert "Assigned to you by Bob Agent" in body
    # The customer's latest message comes along, so the email can be answered.
    assert f"by Bob Agent\nThe latest message, from Carla Customer\n\n{PRINTER}" in body


def test_customer_replies_reach_the_assignee_and_unassigned_ones_who_chose_them(
    app, client, inbox, team, outbox
):
    ana, bob, *_ = team
    email_on(bob, "unassigned_reply")
    first = deliver(app, client, email())
    update_conversation(first.conversation, None, assignee_id=ana.id, by="A test")
    other = deliver(app, client, email("o1@customer.example", "Another one", "Scanner"))
    sweep()
    outbox.envelopes.clear()

    quoted = (
        "Still burning!\r\n\r\nOn Mon, 3 Mar 2025 at 10:00, Support <support@example.com> "
        "wrote:\r\n> What model is the printer?\r\n"
    )
    reply_from_carla(app, client, 2, quoted)
    deliver(app, client, email("o2@customer.example", "And again", "Re: Scanner", "o1@customer"))

    assert sweep() == 2
    sent = {env.rcpt_tos[0]: parsed for env, parsed in notifications_sent(outbox)}
    assert sorted(sent) == [ana.email, bob.email]
    to_ana = text_of(sent[ana.email])
    assert "Carla Customer wrote\n\nStill burning!" in to_ana
    assert "What model" not in to_ana  # never the quoted history
    to_bob = text_of(sent[bob.email])
    assert "Carla Customer wrote (unassigned)" in to_bob and "And again" in to_bob
    assert sent[bob.email]["Subject"].endswith(f"{other.conversation.display_number}] Scanner")


def test_html_mail_is_shown_as_text_only(app, client, team, outbox):
    ana, *_ = team
    email_on(ana, "new_conversation")
    html = (
        "<p>Hello <b>team</b> &amp; friends</p><script>alert(1)</script>"
        '<img src="https://tracker.example/p.gif"><a href="https://evil.example">click</a>'
    )
    deliver(app, client, email(body=html, content_type="text/html"))

    sweep()
    parsed = only_email_to(outbox, ana)
    assert [part.get_content_type() for part in parsed.walk()] == ["text/plain"]
    body = text_of(parsed)
    assert "Hello team & friends" in body
    assert "<" not in body.split("---")[1]  # no markup from the customer's HTML
    assert "alert(1)" not in body and "tracker.example" not in body


def test_a_mention_emails_the_person_mentioned(app, client, team, outbox):
    ana, bob, olga, _ = team
    message = deliver(app, client, email())
    create_reply(
        message.conversation, bob, "@Ana Agent can you look? @Olga Outsider too", private=True
    )

    assert sweep() == 1
    body = text_of(only_email_to(outbox, ana))  # Olga may not see Support
    assert "Bob Agent mentioned you in a note\n\n@Ana Agent can you look?" in body
    assert rows(bob, "mention") == [] and rows(olga) == []


def test_a_reply_that_could_not_be_sent_emails_its_author(app, client, team, outbox):
    from worker import build_worker

    ana, bob, *_ = team
    message = deliver(app, client, email())
    update_conversation(message.conversation, None, assignee_id=ana.id, by="A test")
    sweep()
    outbox.envelopes.clear()
    create_reply(message.conversation, ana, "Please unplug it.")
    outbox.data_replies.append("554 5.7.1 Relaying denied")
    build_worker(app, ["outbound"], simple=True).work(burst=True)

    assert sweep() == 1
    body = text_of(only_email_to(outbox, ana))
    assert "Your reply could not be sent: 554 5.7.1 Relaying denied" in body
    assert "Please unplug it." in body
    assert rows(bob, "send_failed") == []


# --- folding and threading -------------------------------------------------------------------


def test_messages_within_the_window_fold_and_later_ones_thread_under_the_first(
    app, client, team, outbox
):
    ana, *_ = team
    first = deliver(app, client, email())
    conversation = first.conversation
    update_conversation(conversation, None, assignee_id=ana.id, by="A test")
    sweep()
    outbox.envelopes.clear()

    reply_from_carla(app, client, 2, "Second message.")
    third = reply_from_carla(app, client, 3, "Third message.")
    assert sweep() == 1
    folded = only_email_to(outbox, ana)
    assert "Second message." in text_of(folded) and "Third message." in text_of(folded)
    thread = db.session.scalar(select(NotificationThread))
    assert thread.emails_sent == 2 and thread.due_at is None
    assert thread.last_shown_message_id == third.id

    outbox.envelopes.clear()
    fourth = reply_from_carla(app, client, 4, "Fourth message.")
    db.session.refresh(thread)
    assert thread.due_at >= thread.last_sent_at + timedelta(seconds=179)  # the fold window
    assert send_due_notification_emails() == 0  # not yet
    assert sweep() == 1
    later = only_email_to(outbox, ana)
    assert "Fourth message." in text_of(later) and "Third message." not in text_of(later)

    ids = [f"<tl-notify.{conversation.id}.{ana.id}.{n}@{DOMAIN}>" for n in (1, 2, 3)]
    assert (folded["Message-ID"], later["Message-ID"]) == (ids[1], ids[2])
    for parsed in (folded, later):
        assert parsed["In-Reply-To"] == ids[0] and parsed["References"] == ids[0]
        assert parsed["Subject"] == f"[#{conversation.display_number}] Printer on fire"
    db.session.refresh(thread)
    assert thread.emails_sent == 3 and thread.last_shown_message_id == fourth.id


# --- headers ---------------------------------------------------------------------------------


def test_the_exact_headers(app, client, team, outbox):
    ana, *_ = team
    email_on(ana, "new_conversation")
    message = deliver(app, client, email())
    conversation = message.conversation

    sweep()
    parsed = only_email_to(outbox, ana)
    [(envelope, _)] = notifications_sent(outbox)
    reply_address = address_for(ana.id, conversation.id, message.id)
    assert reply_address.startswith("agent+") and reply_address.endswith(f"@{DOMAIN}")
    assert envelope.mail_from == reply_address  # bounces come back to Threadline
    [reply_to] = parsed["Reply-To"].addresses
    assert (reply_to.display_name, reply_to.addr_spec) == (
        "Carla Customer via Threadline",
        reply_address,
    )
    assert parsed["From"] == "Threadline <threadline@localhost>"
    assert parsed["To"] == "Ana Agent <ana@staff.example>"
    assert parsed["Subject"] == f"[#{conversation.display_number}] Printer on fire"
    assert parsed["Message-ID"] == f"<tl-notify.{conversation.id}.{ana.id}.1@{DOMAIN}>"
    assert parsed["In-Reply-To"] is None and parsed["References"] is None
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["X-Auto-Response-Suppress"] == "All"
    assert parsed["Date"] is not None
    assert re.fullmatch(
        r"<http://localhost/notifications/unsubscribe/[\w.-]+>", parsed["List-Unsubscribe"]
    )
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    raw = envelope.content.decode()
    assert f"\nList-Unsubscribe: {parsed['List-Unsubscribe']}\r\n" in raw  # never folded
    assert "Reply to this email to answer the customer" in text_of(parsed)
    assert db.session.scalar(select(NotificationThread)).last_shown_message_id == message.id


@pytest.mark.parametrize(
    "extra_settings", [{"MAILER_INBOUND_EMAIL_DOMAIN": "", "SMTP_DOMAIN": "mx.example"}]
)
def test_without_an_inbound_domain_there_is_no_reply_address(
    app, client, team, outbox, extra_settings
):
    ana, *_ = team
    email_on(ana, "new_conversation")
    message = deliver(app, client, email())

    sweep()
    parsed = only_email_to(outbox, ana)
    [(envelope, _)] = notifications_sent(outbox)
    assert parsed["Reply-To"] is None
    assert envelope.mail_from == "threadline@mx.example"
    conversation = message.conversation
    assert parsed["Message-ID"] == f"<tl-notify.{conversation.id}.{ana.id}.1@mx.example>"
    assert "Reply to this email" not in text_of(parsed)


# --- preferences, unsubscribe ----------------------------------------------------------------


def test_email_off_means_no_email_but_still_in_the_app(app, client, team, outbox):
    ana, *_ = team
    set_preferences(ana, {"assigned": (False, True)})
    message = deliver(app, client, email())
    update_conversation(message.conversation, None, assignee_id=ana.id, by="A test")

    assert sweep() == 0
    assert notifications_sent(outbox) == []
    [bell] = rows(ana, "assigned")
    assert (bell.in_app, bell.email) == (True, None)


def unsubscribe_path(parsed) -> str:
    return parsed["List-Unsubscribe"].strip("<>").removeprefix("http://localhost")


def assigned_and_emailed(app, client, ana, outbox) -> tuple[Message, str]:
    """A conversation assigned to Ana, her email about it sent: the conversation's first
    message and the email's unsubscribe path."""
    message = deliver(app, client, email())
    update_conversation(message.conversation, None, assignee_id=ana.id, by="A test")
    sweep()
    return message, unsubscribe_path(only_email_to(outbox, ana))


def test_the_unsubscribe_link_turns_that_event_off_in_one_click(app, client, team, outbox):
    ana, *_ = team
    message, path = assigned_and_emailed(app, client, ana, outbox)  # about the assignment
    reply_from_carla(app, client, 2, "Anyone there?")  # pending, customer_reply

    page = client.get(path)  # no sign-in
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Assigned to me" in html and "Turn these emails off" in html
    assert db.session.scalars(select(NotificationPreference)).all() == []  # GET changes nothing

    # What a mail provider sends (RFC 8058): no session, no CSRF token.
    done = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    assert "no longer gets emails for" in done.get_data(as_text=True)
    [choice] = db.session.scalars(select(NotificationPreference)).all()
    assert (choice.user_id, choice.event, choice.email, choice.in_app) == (
        ana.id,
        "assigned",
        False,
        True,
    )
    assert client.post(path).status_code == 200  # again: still off, still fine

    # Other events still email; this one no longer does.
    outbox.envelopes.clear()
    assert sweep() == 1
    assert "Anyone there?" in text_of(only_email_to(outbox, ana))
    update_conversation(message.conversation, None, assignee_id=None, by="A test")
    update_conversation(message.conversation, None, assignee_id=ana.id, by="A test")
    outbox.envelopes.clear()
    assert sweep() == 0
    assert rows(ana, "assigned")[-1].in_app is True


def test_unsubscribing_also_stops_an_email_already_pending(app, client, team, outbox):
    ana, *_ = team
    message, path = assigned_and_emailed(app, client, ana, outbox)
    update_conversation(message.conversation, None, assignee_id=None, by="A test")
    update_conversation(message.conversation, None, assignee_id=ana.id, by="A test")
    assert client.post(path).status_code == 200

    outbox.envelopes.clear()
    assert sweep() == 0
    assert [n.email for n in rows(ana, "assigned")] == ["sent", None]


def test_a_tampered_unsubscribe_link_is_refused(app, client, team, outbox):
    ana, *_ = team
    _, path = assigned_and_emailed(app, client, ana, outbox)
    token = path.rsplit("/", 1)[1]
    payload, signature = token.rsplit(".", 1)
    forged = f"{payload[:-1]}{'A' if payload[-1] != 'A' else 'B'}.{signature}"
    for bad in (forged, token[:-2], "not-a-token"):
        for method in (client.get, client.post):
            response = method(f"/notifications/unsubscribe/{bad}")
            assert response.status_code == 400
            assert "This unsubscribe link is not valid" in response.get_data(as_text=True)
    assert db.session.scalars(select(NotificationPreference)).all() == []


def test_the_unsubscribe_view_is_the_only_csrf_exempt_view():
    """Exempt from CSRF: whole blueprints that never use a browser session (providers'
    webhooks, the bearer-token API, health checks) and, by name, the unsubscribe link,
    which mail providers post on the user's behalf (RFC 8058; its signed token is the
    credential). Add a view here only for such a reason."""
    assert {bp.name for bp in csrf._exempt_blueprints} == {"ingress", "api", "health"}
    assert csrf._exempt_views == {"blueprints.unsubscribe.unsubscribe"}


# --- who may still get it, retries, exactly once ---------------------------------------------


def test_nobody_deactivated_or_out_of_the_inbox_gets_an_email(app, client, team, outbox):
    ana, bob, *_ = team
    email_on(ana, "new_conversation")
    email_on(bob, "new_conversation")
    deliver(app, client, email())
    ana.active = False  # after the event, before the email
    db.session.delete(db.session.get(InboxMember, (deliver_inbox_id(), bob.id)))
    db.session.commit()

    assert sweep() == 0
    assert notifications_sent(outbox) == []
    assert [n.email for n in rows(ana) + rows(bob)] == [None, None]


def deliver_inbox_id() -> int:
    return db.session.scalar(select(Message.inbox_id).limit(1))


def test_a_refused_send_is_retried_later(app, client, team, outbox):
    ana, *_ = team
    email_on(ana, "new_conversation")
    deliver(app, client, email())
    outbox.data_replies.append("451 4.3.0 Try again later")

    assert sweep() == 0
    thread = db.session.scalar(select(NotificationThread))
    assert thread.due_at >= utcnow() + timedelta(seconds=25)  # backed off
    assert [n.email for n in rows(ana)] == ["pending"]
    assert send_due_notification_emails() == 0  # not due yet

    assert sweep() == 1
    assert "New conversation" in text_of(only_email_to(outbox, ana))
    assert [n.email for n in rows(ana)] == ["sent"]


def test_two_sweeps_at_once_send_each_email_once(app, client, team, outbox, monkeypatch):
    ana, bob, *_ = team
    email_on(ana, "new_conversation")
    email_on(bob, "new_conversation")
    deliver(app, client, email())
    make_due()

    both_looked = threading.Barrier(2, timeout=10)
    real_due_threads = notification_email.due_threads

    def due_threads(now):
        found = real_due_threads(now)
        both_looked.wait()  # each run has seen every email due before either claims one
        return found

    monkeypatch.setattr(notification_email, "due_threads", due_threads)
    results, errors = [], []

    def run():
        with app.app_context():
            try:
                results.append(send_due_notification_emails())
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                db.session.remove()

    runs = [threading.Thread(target=run) for _ in range(2)]
    for thread in runs:
        thread.start()
    for thread in runs:
        thread.join(30)
    assert errors == [] and sum(results) == 2
    sent = notifications_sent(outbox)
    assert sorted(envelope.rcpt_tos[0] for envelope, _ in sent) == [ana.email, bob.email]
