"""The thread in Chromium: the header's menus by mouse and by keyboard, HTML mail frames as
tall as their content, "N earlier messages", and screenshots at 1280 and 390 px (no sideways
scrolling, axe-core clean). The `page` fixture fails a test on any CSP violation."""

from __future__ import annotations

import re
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from extensions import db
from models import Conversation, Inbox, InboxMember, Message
from services import workspace
from tests.e2e.conftest import serious_violations
from tests.support.inbound import post_relay, work_inbound
from tests.support.screens import PHONE, check_both_widths
from tests.support.workspace import quick_conversation

pytestmark = pytest.mark.e2e

LONG_HTML = (
    "".join(
        f'<p style="margin:0 0 12px">Paragraph {n}: the order arrived damaged, '
        "the box was open and two of the three cups were broken.</p>"
        for n in range(1, 61)
    )
    + '<table width="100%"><tr><td style="height:300px;background:#eef">Footer</td></tr></table>'
)


@pytest.fixture
def inbox(app):
    inbox = Inbox(name="Support", support_address="support@example.com")
    db.session.add(inbox)
    db.session.commit()
    return inbox


@pytest.fixture
def agent(app, inbox, make_user):
    user = make_user(email="ana@example.com", name="Ana Agent")
    db.session.add(InboxMember(inbox_id=inbox.id, user_id=user.id))
    colleague = make_user(email="bob@example.com", name="Bob Builder")
    db.session.add(InboxMember(inbox_id=inbox.id, user_id=colleague.id))
    db.session.commit()
    return user


def receive_html(app, html: str, subject="Broken cups") -> Conversation:
    email = EmailMessage()
    email["From"], email["To"] = "Carla Customer <carla@customer.example>", "support@example.com"
    email["Subject"], email["Message-ID"] = subject, make_msgid(domain="customer.example")
    email.set_content("Plain version")
    email.add_alternative(html, subtype="html")
    post_relay(app.test_client(), email.as_bytes())
    work_inbound(app)
    return db.session.scalars(select(Conversation).where(Conversation.subject == subject)).one()


def add_emails(conversation, count: int, start: int = 2) -> None:
    first = db.session.scalars(
        select(Message).where(Message.conversation_id == conversation.id)
    ).first()
    for n in range(start, start + count):
        db.session.add(
            Message(
                conversation_id=conversation.id,
                inbox_id=conversation.inbox_id,
                direction="incoming",
                contact_id=first.contact_id,
                from_address=first.from_address or "carla@customer.example",
                text_body=f"Email {n}",
                delivery_status="received",
                threaded_by="in_reply_to",
            )
        )
    db.session.commit()


def frame_fit(page) -> dict:
    """The first HTML frame's height against its content's, and whether it scrolls inside."""
    return page.evaluate(
        """() => {
          const frame = document.querySelector("iframe.msg-html");
          const root = frame.contentDocument.documentElement;
          return {frame: frame.getBoundingClientRect().height,
                  inner: frame.clientHeight,
                  content: root.scrollHeight,
                  scrolls: root.scrollHeight > root.clientHeight + 1};
        }"""
    )


def test_header_menus_work_by_mouse_and_keyboard(app, page, sign_in, agent, inbox, live_server):
    conversation = quick_conversation(inbox, "Refund please", text="Where is my refund?")
    sign_in(agent.email, agent.plain_password)
    page.goto(f"/conversations/{conversation.id}")
    page.evaluate("window.__marker = 1")
    meta, activity = page.locator("#thread-meta"), page.locator("#thread-messages .msg-activity")

    # Compact: the first message starts a short way below the subject.
    head = page.locator(".thread-head").bounding_box()
    first = page.locator("#thread-messages .msg").first.bounding_box()
    assert head["height"] <= 140, head
    assert first["y"] - page.locator("#thread").bounding_box()["y"] <= 200, first
    assert page.locator(".thread-head select").count() == 0

    # Mouse: the assign menu opens, a name assigns, the menu closes.
    page.locator("#menu-assign summary").click()
    expect(page.locator("#menu-assign .menu-panel")).to_be_visible()
    page.locator("#menu-assign").get_by_role("button", name="Bob Builder").click()
    expect(meta).to_contain_text("Bob Builder")
    expect(activity.filter(has_text="Ana Agent assigned this to Bob Builder")).to_have_count(1)
    expect(page.locator("#menu-assign .menu-panel")).to_be_hidden()
    # The answer has been swapped in and settled: focusing earlier could land on a button
    # that htmx replaces a moment later.
    page.wait_for_function(
        "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')"
    )

    # Keyboard: Tab to the status menu, Enter opens it, the arrows walk it, Enter chooses.
    page.locator("#menu-status summary").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#menu-status .menu-panel")).to_be_visible()
    expect(page.locator("#menu-status").get_by_role("button", name="Pending")).to_be_focused()
    page.keyboard.press("Escape")  # closes, focus back on its button
    expect(page.locator("#menu-status .menu-panel")).to_be_hidden()
    expect(page.locator("#menu-status summary")).to_be_focused()
    page.keyboard.press("Space")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowUp")
    expect(page.locator("#menu-status").get_by_role("button", name="Pending")).to_be_focused()
    page.keyboard.press("Enter")
    expect(meta.locator(".badge")).to_have_text("pending")
    expect(page.locator("#menu-status summary")).to_be_focused()  # focus survives the redraw

    # Labels from the keyboard: open, type, Enter.
    page.locator("#menu-labels summary").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#thread-labels input[name=labels]")).to_be_focused()
    page.keyboard.type("billing, VIP")
    page.keyboard.press("Enter")
    chips = page.locator("#thread-labels .label-chips")
    expect(chips).to_contain_text("billing")
    expect(chips).to_contain_text("VIP")
    expect(page.locator("#menu-labels summary")).to_be_focused()

    # Snooze: a preset by keyboard.
    page.locator("#menu-snooze summary").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#menu-snooze").get_by_role("button", name="1 hour")).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(page.locator("#menu-snooze").get_by_role("button", name="4 hours")).to_be_focused()
    assert serious_violations(page) == [], "with a menu open"
    page.keyboard.press("Enter")
    expect(page.locator("#thread-snooze")).to_contain_text("Snoozed until")
    expect(meta.locator(".badge")).to_have_text("snoozed")

    assert page.evaluate("window.__marker") == 1, "the page reloaded"

    # Resolve is one click and moves on to the next conversation of the list: this was the
    # only one, so the list is done.
    page.get_by_role("button", name="Resolve", exact=True).click()
    expect(page.locator("[data-no-thread]")).to_contain_text("All done here")
    expect(page).to_have_url(re.compile(r"/conversations$"))
    db.session.expire_all()
    assert db.session.get(Conversation, conversation.id).status == "resolved"

    # Opened again, it says resolved; Reopen waits in the status menu.
    page.goto(f"/conversations/{conversation.id}")
    page.evaluate("window.__marker = 1")
    expect(meta.locator(".badge")).to_have_text("resolved")
    expect(page.locator(".thread-resolve")).to_have_count(0)
    page.locator("#menu-status summary").click()
    status_menu = page.locator("#menu-status")
    expect(status_menu.get_by_role("button", name="Resolve", exact=True)).to_be_disabled()
    page.locator("#menu-status").get_by_role("button", name="Reopen").click()
    expect(meta.locator(".badge")).to_have_text("open")

    # A click elsewhere closes an open menu.
    page.locator("#menu-snooze summary").click()
    expect(page.locator("#menu-snooze .menu-panel")).to_be_visible()
    page.locator("#thread h1").click()
    expect(page.locator("#menu-snooze .menu-panel")).to_be_hidden()
    assert page.evaluate("window.__marker") == 1, "the page reloaded"
    db.session.expire_all()
    assert db.session.get(Conversation, conversation.id).assignee_id is not None


def test_a_long_html_mail_frame_is_as_tall_as_its_content(app, page, sign_in, agent, live_server):
    conversation = receive_html(app, LONG_HTML)
    sign_in(agent.email, agent.plain_password)
    page.goto(f"/conversations/{conversation.id}")
    frame = page.frame_locator("iframe.msg-html")
    expect(frame.locator("td", has_text="Footer")).to_be_attached()
    page.wait_for_function(
        "() => document.querySelector('iframe.msg-html').getBoundingClientRect().height > 1000"
    )
    fit = frame_fit(page)
    assert fit["inner"] >= fit["content"], fit
    assert not fit["scrolls"], fit
    assert fit["frame"] < fit["content"] + 40, fit  # no empty band below the mail either
    # Still sandboxed: no scripts, its own strict policy.
    iframe = page.locator("iframe.msg-html")
    assert "allow-scripts" not in iframe.get_attribute("sandbox")
    assert iframe.get_attribute("style") is None  # a height attribute, no inline style

    # A phone's narrower frame wraps the text into more lines: the frame grows with it.
    page.set_viewport_size({"width": PHONE[0], "height": PHONE[1]})
    page.wait_for_function(
        """() => { const f = document.querySelector('iframe.msg-html');
                   const r = f.contentDocument.documentElement;
                   return r.scrollHeight <= r.clientHeight + 1; }"""
    )
    narrow = frame_fit(page)
    assert narrow["content"] > fit["content"] and not narrow["scrolls"], (fit, narrow)


def test_earlier_messages_load_on_demand(app, page, sign_in, agent, inbox, live_server):
    conversation = quick_conversation(inbox, "Long story", text="Email 1")
    add_emails(conversation, 24)
    sign_in(agent.email, agent.plain_password)
    page.goto(f"/conversations/{conversation.id}")
    messages = page.locator("#thread-messages .msg-incoming")
    expect(messages).to_have_count(workspace.LATEST)
    expect(messages.first).to_contain_text(f"Email {25 - workspace.LATEST + 1}")
    earlier = page.get_by_role("link", name=f"{25 - workspace.LATEST} earlier messages")
    expect(earlier).to_be_visible()
    page.evaluate("window.__marker = 1")
    earlier.focus()
    with page.expect_response(lambda r: "/messages/earlier" in r.url) as answer:
        page.keyboard.press("Enter")
    assert answer.value.request.method == "GET"
    expect(messages).to_have_count(25)
    expect(messages.first).to_contain_text("Email 1")
    expect(page.locator("#thread-earlier")).to_have_count(0)
    first = page.locator("#thread-messages > [id^=message-]").first  # ids: any database
    expect(first).to_contain_text("Email 1")
    expect(first).to_be_focused()  # reading goes on from the top
    assert "all=1" in page.locator("#thread-fp").get_attribute("hx-get")
    # The next poll finds nothing new and leaves the unfolded thread alone.
    with page.expect_response(lambda r: "/messages?" in r.url and "fp=" in r.url) as poll:
        pass
    assert poll.value.status == 204
    expect(messages).to_have_count(25)
    assert page.evaluate("window.__marker") == 1, "the page reloaded"


def test_thread_screenshots_at_1280_and_390(
    app, page, sign_in, agent, inbox, live_server, tmp_path
):
    conversation = receive_html(
        app,
        "<p>Hello,</p><p>Two of the three cups in order <b>#4411</b> arrived broken. "
        "Photos attached; can you send replacements?</p><p>Carla</p>",
    )
    add_emails(conversation, 12)
    sign_in(agent.email, agent.plain_password)
    page.goto(f"/conversations/{conversation.id}")
    page.locator("#menu-labels summary").click()
    page.locator("#thread-labels input[name=labels]").fill("billing, damaged")
    page.get_by_role("button", name="Save labels").click()
    expect(page.locator("#thread-labels .label-chips")).to_contain_text("damaged")
    check_both_widths(page, tmp_path, "thread")
    # A fresh page: the screenshots leave style="" on inputs (the hidden caret), which htmx
    # would copy onto their replacements, against the CSP.
    page.reload()
    page.get_by_role("link", name=re.compile(r"earlier message")).click()
    expect(page.locator("#thread-earlier")).to_have_count(0)
    page.locator("#menu-assign summary").click()
    check_both_widths(page, tmp_path, "thread-menu-open")


def test_on_a_phone_a_thread_opens_at_its_header(app, page, sign_in, agent, inbox, live_server):
    for n in range(30):
        quick_conversation(inbox, f"Question {n}", text=f"Question number {n}")
    sign_in(agent.email, agent.plain_password)
    page.set_viewport_size({"width": PHONE[0], "height": PHONE[1]})
    page.goto("/conversations")
    row = page.locator(".conv-row").last  # far down the list
    row.scroll_into_view_if_needed()
    assert page.evaluate("window.scrollY") > 300
    subject = row.locator(".conv-subject").inner_text().strip()
    row.get_by_role("link").click()
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_contain_text(subject)
    expect(heading).to_be_in_viewport()
    box = page.locator("#thread-messages .msg").first.bounding_box()
    assert box["y"] < PHONE[1] / 2, box  # the first message starts in the top half
