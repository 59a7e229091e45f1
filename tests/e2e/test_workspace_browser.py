"""The agent workspace in a real headless Chromium, end to end.

A customer email comes in through the relay ingress, the agent signs in, opens it from the
list, replies (delivered by the outbound worker to a real SMTP server while the page watches),
adds a private note, assigns it to themself, resolves it, and the customer's answer to the
reply shows up in the open thread by itself and reopens the conversation.

The full-page screenshot goes to $TEST_ARTIFACTS/workspace.png (the test's tmp_path when
TEST_ARTIFACTS is unset).
"""

from __future__ import annotations

import os
import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import make_msgid
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from extensions import db
from models import Conversation, Inbox, InboxMember, Message
from tests.e2e.conftest import PageGuard, serious_violations
from tests.support.inbound import post_relay, work_inbound
from tests.support.smtp_server import running_smtp_server
from worker import build_worker

pytestmark = pytest.mark.e2e

DOMAIN = "reply.example.com"
POLL = 15_000  # the thread polls every 5 s; allow a few rounds
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def smtp():
    with running_smtp_server() as server:
        yield server


@pytest.fixture
def app_config(app_config, smtp):
    return {
        **app_config,
        "MAILER_INBOUND_EMAIL_DOMAIN": DOMAIN,
        "SMTP_ADDRESS": smtp.host,
        "SMTP_PORT": str(smtp.port),
    }


@pytest.fixture
def agent(app, make_user):
    inbox = Inbox(name="Support", support_address="support@example.com")
    db.session.add(inbox)
    db.session.commit()
    user = make_user(email="ana@example.com", name="Ana Agent")
    db.session.add(InboxMember(inbox_id=inbox.id, user_id=user.id))
    db.session.commit()
    return user


def customer_email(body: str, **headers: str) -> bytes:
    lines = {
        "From": "Carla Customer <carla@customer.example>",
        "To": "support@example.com",
        "Subject": "Printer on fire",
        "Message-ID": make_msgid(domain="customer.example"),
        **{k.replace("_", "-"): v for k, v in headers.items()},
    }
    head = "".join(f"{k}: {v}\r\n" for k, v in lines.items())
    return f"{head}\r\n{body}\r\n".encode()


def receive(app, raw: bytes) -> None:
    """Through the real relay ingress and a real (in-process) inbound worker."""
    post_relay(app.test_client(), raw)
    work_inbound(app)


def artifact_dir(tmp_path: Path) -> Path:
    path = Path(os.environ.get("TEST_ARTIFACTS") or tmp_path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_agent_works_a_conversation_from_email_in_to_answer_back(
    app, page, sign_in, agent, smtp, live_server, tmp_path
):
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else 0)

    receive(app, customer_email("Help, it is burning."))

    sign_in(agent.email, agent.plain_password)
    expect(page.locator("header.topbar .who")).to_have_text("Ana Agent")

    # The list shows the new conversation; open it.
    page.goto("/conversations")
    row = page.locator(".conv-row", has_text="Printer on fire")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Carla Customer")
    expect(row).to_contain_text("Help, it is burning.")
    expect(row.locator(".conv-assignee")).to_have_text("Unassigned")
    expect(row).to_have_class(re.compile(r"\bunread\b"))
    page.evaluate("window.__marker = 1")  # gone if the page ever reloads
    row.get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"/conversations/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Printer on fire")
    # The thread opens beside the list (htmx, no reload); the row is now read and current.
    expect(page.locator("#conversation-list")).to_be_visible()
    expect(row).to_have_class(re.compile(r"\bcurrent\b"))
    expect(row).not_to_have_class(re.compile(r"\bunread\b"))
    list_box = page.locator("#conversation-list").bounding_box()
    thread_box = page.locator("#thread").bounding_box()
    assert list_box["x"] + list_box["width"] <= thread_box["x"], (list_box, thread_box)
    thread = page.locator("#thread-messages")
    expect(thread.locator(".msg-incoming")).to_contain_text("Help, it is burning.")
    expect(page.locator(".thread-meta .badge")).to_have_text("open")

    # Reply: an htmx POST (CSRF from <body hx-headers>) that re-renders the thread, queued.
    page.get_by_label("Reply to Carla Customer").fill("We are sending a fire crew.")
    page.get_by_role("button", name="Send", exact=True).click()  # not "Send and resolve"
    outgoing = page.locator("#thread-messages .msg-outgoing", has_text="We are sending a fire")
    expect(outgoing).to_have_count(1)
    expect(outgoing.locator(".delivery")).to_have_text("queued")
    expect(page.get_by_label("Reply to Carla Customer")).to_have_value("")
    assert smtp.envelopes == []

    # The outbound worker hands it to the real SMTP server; the polling shows "sent".
    build_worker(app, ["outbound"], simple=True).work(burst=True)
    envelope = smtp.wait_for_messages(1)[0]
    assert envelope.rcpt_tos == ["carla@customer.example"]
    sent = BytesParser(policy=policy.default).parsebytes(envelope.content)
    assert "We are sending a fire crew." in sent.get_body(("plain",)).get_content()
    expect(outgoing.locator(".delivery")).to_have_text("sent", timeout=POLL)
    expect(outgoing.locator(".delivery")).to_have_class(re.compile(r"\bdelivery-sent\b"))

    # A private note: styled as one, never emailed.
    page.get_by_label("Reply to Carla Customer").fill("Customer sounds stressed, call her.")
    page.locator("#composer").get_by_text("Internal note", exact=True).click()  # the Note tab
    page.get_by_role("button", name="Add note", exact=True).click()
    note = page.locator("#thread-messages .msg-note", has_text="call her")
    expect(note).to_have_count(1)
    expect(note.locator(".note-label")).to_have_text("Private note")
    expect(note).to_have_css("border-top-style", "dashed")  # styled as a note
    expect(note.locator(".delivery")).to_have_count(0)

    # Assign to themself.
    page.locator("#menu-assign summary").click()  # the assign menu opens
    page.locator(f"#menu-assign button[value='{agent.id}']").click()
    activity = page.locator("#thread-messages .msg-activity")
    expect(activity.filter(has_text="Ana Agent assigned this to Ana Agent")).to_have_count(1)
    expect(page.locator(".thread-meta")).to_contain_text("Ana Agent")

    # Resolve: one click, and the workspace moves on to the next conversation of the list;
    # this was the only open one, so the list is done.
    page.get_by_role("button", name="Resolve", exact=True).click()
    expect(page.locator("[data-no-thread]")).to_contain_text("All done here")
    expect(row).to_have_count(0)

    # The customer answers the sent reply: it reopens the conversation, and the list picks
    # it up by itself, unread.
    def answer_with(text: str) -> None:
        receive(
            app,
            customer_email(
                text,
                Subject=str(sent["Subject"]),
                In_Reply_To=str(sent["Message-ID"]),
                References=str(sent["Message-ID"]),
            ),
        )

    answer_with("Thanks, the fire is out now.")
    expect(row).to_have_count(1, timeout=POLL)
    expect(row).to_have_class(re.compile(r"\bunread\b"))
    row.get_by_role("link").click()
    expect(page.locator(".thread-meta .badge")).to_have_text("open")
    expect(activity.filter(has_text="Ana Agent resolved this conversation")).to_have_count(1)
    answer = thread.locator(".msg-incoming", has_text="the fire is out now")
    expect(answer).to_have_count(1)
    expect(answer.locator(".msg-reason")).to_have_text("joined by In-Reply-To")
    expect(page.get_by_role("button", name="Resolve", exact=True)).to_be_enabled()

    # While the thread is open, a further answer appears in it by itself.
    answer_with("One more thing: the toner smells.")
    expect(thread.locator(".msg-incoming", has_text="toner smells")).to_have_count(1, timeout=POLL)
    expect(thread.locator(".msg-incoming")).to_have_count(3)
    # Another customer writes: the list picks the new conversation up by itself.
    receive(
        app, customer_email("Is anyone there?", From="Dan <dan@customer.example>", Subject="Hello")
    )
    new_row = page.locator(".conv-row", has_text="Is anyone there?")
    expect(new_row).to_have_count(1, timeout=POLL)
    expect(new_row).to_have_class(re.compile(r"\bunread\b"))
    expect(row).to_have_class(re.compile(r"\bcurrent\b"))  # the open thread's row, still
    expect(page.locator("#count-all")).to_have_text("2", timeout=POLL)
    assert page.evaluate("window.__marker") == 1, "the page reloaded"
    assert not failed, failed

    db.session.expire_all()  # the ingress and worker wrote through their own sessions
    conversation = db.session.scalars(
        select(Conversation).where(Conversation.subject == "Printer on fire")
    ).one()  # threaded, not a new one
    assert conversation.status == "open"
    assert conversation.assignee_id == agent.id
    incoming = db.session.scalars(
        select(Message)
        .where(Message.direction == "incoming", Message.conversation_id == conversation.id)
        .order_by(Message.id)
    ).all()
    assert [m.conversation_id for m in incoming] == [conversation.id] * 3

    shot = artifact_dir(tmp_path) / "workspace.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 1000 and shot.read_bytes()[:8] == PNG


def test_a_reply_of_unknown_fate_is_marked_as_sent_from_the_keyboard(
    app, page, sign_in, agent, live_server, tmp_path
):
    """What the sweep leaves when a worker died after handing a reply to the SMTP server: the
    agent sees why, and decides without a mouse."""
    from models import utcnow
    from services.replies import UNKNOWN_FATE

    receive(app, customer_email("Did my refund go through?"))
    conversation = db.session.scalars(select(Conversation)).one()
    reply = Message(
        conversation_id=conversation.id,
        inbox_id=conversation.inbox_id,
        direction="outgoing",
        sender_user_id=agent.id,
        text_body="Yes, it went through this morning.",
        delivery_status="unknown",
        delivery_error="The worker stopped after handing this reply to the mail server, "
        f"before the server's answer was recorded. {UNKNOWN_FATE}",
        handed_over_at=utcnow(),
    )
    db.session.add(reply)
    db.session.commit()

    sign_in(agent.email, agent.plain_password)
    page.goto(f"/conversations/{conversation.id}")
    decision = page.locator(f"#message-{reply.id} .msg-failed")
    expect(decision).to_contain_text("Delivery unknown: The worker stopped")
    expect(decision).to_contain_text("then send it again or mark it as sent.")
    assert serious_violations(page) == []
    # caret="initial": hiding the caret leaves style="" on every input, which the thread's
    # next htmx swap would copy back (a CSP violation the page itself never causes).
    shot = artifact_dir(tmp_path) / "reply-unknown.png"
    page.screenshot(path=str(shot), full_page=True, caret="initial")

    page.get_by_role("button", name="Mark as sent").focus()
    page.keyboard.press("Enter")
    expect(page.locator(f"#message-{reply.id} .delivery")).to_have_text("sent")
    expect(page.locator(".msg-failed")).to_have_count(0)
    db.session.expire_all()
    marked = db.session.get(Message, reply.id)
    assert marked.delivery_status == "sent"
    assert marked.smtp_response == "marked as sent by Ana Agent"


def test_labels_and_snooze_redraw_only_themselves(app, page, sign_in, agent, live_server):
    """The labels and snooze forms swap their own component; what else shows the change (the
    status line, the buttons, the new activity line) follows out of band, and no message is
    drawn again: the HTML email's frame is the same element, never loaded twice."""
    email = EmailMessage()
    email["From"], email["To"] = "Carla <carla@customer.example>", "support@example.com"
    email["Subject"], email["Message-ID"] = "Printer smoking", make_msgid(domain="customer.example")
    email.set_content("Printer smoking")
    email.add_alternative("<p>Printer <b>smoking</b></p>", subtype="html")
    receive(app, email.as_bytes())
    conversation = db.session.scalars(select(Conversation)).one()

    sign_in(agent.email, agent.plain_password)
    page.goto(f"/conversations/{conversation.id}")
    expect(page.frame_locator("iframe.msg-html").locator("b")).to_have_text("smoking")
    page.evaluate("window.__marker = 1")
    page.evaluate("document.querySelector('iframe.msg-html').dataset.kept = '1'")
    frame_loads = []
    page.on("request", lambda r: frame_loads.append(r.url) if r.url.endswith("/body") else 0)

    page.locator("#menu-labels summary").click()
    page.locator("#thread-labels input[name=labels]").fill("billing, Urgent")
    with page.expect_response(lambda r: r.url.endswith("/labels")) as answer:
        page.get_by_role("button", name="Save labels").click()
    assert answer.value.status == 200 and "<iframe" not in answer.value.text()
    chips = page.locator("#thread-labels .label-chips")
    expect(chips).to_contain_text("billing")
    expect(chips).to_contain_text("Urgent")
    activity = page.locator("#thread-messages .msg-activity")
    expect(activity.filter(has_text="Ana Agent labelled this billing, Urgent")).to_have_count(1)

    page.locator("#menu-snooze summary").click()
    page.locator("#thread-snooze").get_by_role("button", name="1 hour").click()
    expect(page.locator("#thread-snooze")).to_contain_text("Snoozed until")
    expect(page.locator(".thread-meta .badge")).to_have_text("snoozed")
    page.locator("#menu-status summary").click()
    expect(page.get_by_role("button", name="Reopen")).to_be_enabled()
    expect(activity.filter(has_text="snoozed this conversation until")).to_have_count(1)
    billing = page.locator("#thread-labels a", has_text="billing")
    expect(billing).to_have_attribute("href", re.compile(r"status=snoozed"))

    # The page is up to date: the next poll answers 204 and draws nothing either.
    with page.expect_response(lambda r: "/messages?fp=" in r.url, timeout=POLL) as poll:
        pass
    assert poll.value.status == 204
    assert page.locator("iframe.msg-html").get_attribute("data-kept") == "1"
    assert frame_loads == [], frame_loads
    assert page.evaluate("window.__marker") == 1, "the page reloaded"


def test_the_thread_on_screen_marks_itself_read_with_a_post(app, page, sign_in, agent, live_server):
    """GETs never write: the thread drawn on the page, and a poll that brought news, ask for
    POST /conversations/<id>/read themselves; what the agent has seen is read for them."""
    from services.unread import unread_ids

    def unread_for_agent(conversation) -> bool:
        db.session.expire_all()
        return bool(unread_ids(agent.id, [db.session.get(Conversation, conversation.id)]))

    receive(app, customer_email("Are you there?"))
    conversation = db.session.scalars(select(Conversation)).one()
    assert unread_for_agent(conversation)
    sign_in(agent.email, agent.plain_password)
    read = f"/conversations/{conversation.id}/read"
    with page.expect_response(lambda r: r.url.endswith(read)) as answer:
        page.goto(f"/conversations/{conversation.id}")
    assert answer.value.request.method == "POST" and answer.value.status == 204
    assert not unread_for_agent(conversation)
    # The list beside it was drawn before that POST: its row drops the marker as well.
    row = page.locator(f"#row-{conversation.id}")
    expect(row).to_have_class(re.compile(r"\bcurrent\b"))
    expect(row).not_to_have_class(re.compile(r"\bunread\b"))

    receive(app, customer_email("Hello??", Subject="Re: Printer on fire"))
    conversation = db.session.scalars(select(Conversation)).one()  # threaded into the same
    assert unread_for_agent(conversation)
    with page.expect_response(lambda r: r.url.endswith(read), timeout=POLL) as answer:
        pass  # the poll draws the news, which asks to be marked read
    assert answer.value.status == 204
    expect(page.locator("#thread-messages .msg-incoming")).to_have_count(2)
    assert not unread_for_agent(conversation)


def test_a_422_answer_is_swapped_in_place_with_what_to_fix(app, page, sign_in, agent, live_server):
    """htmx's responseHandling (templates/base.html) shows a form's errors without a reload."""
    receive(app, customer_email("Anyone?"))
    conversation = db.session.scalars(select(Conversation)).one()
    sign_in(agent.email, agent.plain_password)
    page.goto(f"/conversations/{conversation.id}")
    page.evaluate("window.__marker = 1")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.locator("#composer [role=alert]")).to_contain_text("the reply is empty")
    assert page.evaluate("window.__marker") == 1, "the page reloaded"


def test_on_a_phone_the_list_and_the_thread_take_turns(app, browser, live_server, agent):
    receive(app, customer_email("Small screen, big problem."))
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 390, "height": 844}, is_mobile=True
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    guard = PageGuard(page, live_server.url)
    try:
        page.goto("/login")
        page.get_by_label("Email").fill(agent.email)
        page.get_by_label("Password").fill(agent.plain_password)
        page.get_by_role("button", name="Sign in").click()
        page.goto("/conversations")
        row = page.locator(".conv-row", has_text="Printer on fire")
        expect(row).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scroll
        row.get_by_role("link").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Printer on fire")
        expect(page.locator("#conversation-list")).to_be_hidden()
        expect(page.locator(".thread-messages")).to_contain_text("Small screen, big problem.")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.get_by_role("link", name="← Conversations").click()
        expect(page.locator("#conversation-list")).to_be_visible()
        guard.check()
    finally:
        context.close()
