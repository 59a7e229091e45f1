"""The composer in a real Chromium: Reply / Note tabs (a note never reaches the SMTP server),
To / CC / BCC chips prefilled reply-all, drafts that survive a reload and that a colleague
sees, attachments dropped onto the composer, the signature preview and "Send and resolve".

Screenshots (composer-reply-*.png, composer-note-*.png at 1280 and 390 px) go to
$TEST_ARTIFACTS, else the test's tmp_path.
"""

from __future__ import annotations

import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from extensions import db
from models import Conversation, Inbox, InboxMember, Message
from services import reply_drafts
from tests.support.inbound import post_relay, work_inbound
from tests.support.screens import check_both_widths
from tests.support.smtp_server import running_smtp_server
from worker import build_worker

pytestmark = pytest.mark.e2e

DOMAIN = "reply.example.com"
POLL = 15_000  # the viewers line polls every 10 s


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
def people(app, make_user):
    inbox = Inbox(
        name="Support",
        support_address="support@example.com",
        signature="Ana from Support\nhttps://support.example.com",
    )
    db.session.add(inbox)
    db.session.commit()
    ana = make_user(email="ana@example.com", name="Ana Agent")
    bob = make_user(email="bob@example.com", name="Bob Builder")
    for user in (ana, bob):
        db.session.add(InboxMember(inbox_id=inbox.id, user_id=user.id))
    db.session.commit()
    return ana, bob


def receive(app, subject="Printer on fire", cc="", body="Help, it is burning.") -> Conversation:
    message = EmailMessage()
    message["From"] = "Carla Customer <carla@customer.example>"
    message["To"] = "support@example.com"
    if cc:
        message["Cc"] = cc
    message["Subject"] = subject
    message["Message-ID"] = f"<{abs(hash(subject))}@customer.example>"
    message.set_content(body)
    post_relay(app.test_client(), message.as_bytes())
    work_inbound(app)
    return db.session.scalar(select(Conversation).where(Conversation.subject == subject))


def send_outbound(app) -> None:
    build_worker(app, ["outbound"], simple=True).work(burst=True)


def open_thread(page, sign_in, user, conversation):
    sign_in(user.email, user.plain_password)
    page.goto(f"/conversations/{conversation.id}")
    expect(page.locator("#composer")).to_be_visible()
    return page.locator("#composer")


UNSTYLE = "document.querySelectorAll('[style=\"\"]').forEach(e => e.removeAttribute('style'))"


def screens(page, tmp_path, name: str) -> None:
    """check_both_widths, then take off the empty style="" that axe-core leaves on inputs:
    htmx's settle copies it onto the swapped-in elements, which the CSP reports."""
    check_both_widths(page, tmp_path, name)
    page.evaluate(UNSTYLE)


def chips(composer, field: str) -> list[str]:
    return composer.locator(f"#reply-{field}-value").evaluate(
        "el => el.closest('.chip-field').querySelectorAll('.chip')"
        "  ? Array.from(el.closest('.chip-field').querySelectorAll('.chip'))"
        "      .map(c => c.dataset.address) : []"
    )


def test_reply_all_chips_tabs_and_a_note_that_is_never_emailed(
    app, page, sign_in, people, smtp, live_server, tmp_path
):
    ana, _bob = people
    conversation = receive(app, cc="Zoe Partner <zoe@partner.example>, dan@customer.example")
    composer = open_thread(page, sign_in, ana, conversation)
    cid = conversation.id

    # Reply-all: To is the customer, CC everyone else on their email; chips, not a text box.
    assert chips(composer, f"to-{cid}") == ["carla@customer.example"]
    to_chips = composer.locator(f"#reply-to-{cid}").locator("xpath=..").locator(".chip")
    expect(to_chips).to_have_text(["Carla Customer <carla@customer.example>×"])
    assert chips(composer, f"cc-{cid}") == ["zoe@partner.example", "dan@customer.example"]
    expect(composer.get_by_role("radio", name="Reply")).to_be_checked()
    expect(composer.get_by_text("Signature, added when sent")).to_be_visible()
    expect(composer.locator(".composer-signature-body")).to_contain_text("Ana from Support")

    # To, keyboard only: from the To box, Shift+Tab reaches Carla's remove button, Enter takes
    # her off (focus comes back to the box), then Gus is typed and added with Enter.
    to = composer.get_by_label("To", exact=True)
    to.focus()
    page.keyboard.press("Shift+Tab")
    expect(composer.get_by_role("button", name="Remove carla@customer.example")).to_be_focused()
    page.keyboard.press("Enter")
    expect(to).to_be_focused()
    assert chips(composer, f"to-{cid}") == []
    page.keyboard.type("gus@customer.example")
    page.keyboard.press("Enter")
    assert chips(composer, f"to-{cid}") == ["gus@customer.example"]

    # Edit the chips: take Dan off, add Eve to CC and Finn to BCC with the keyboard.
    composer.get_by_role("button", name="Remove dan@customer.example").click()
    cc = composer.get_by_label("CC", exact=True)
    cc.fill("eve@partner.example")
    cc.press("Enter")
    bcc = composer.get_by_label("BCC", exact=True)
    bcc.fill("finn@partner.example,")
    assert chips(composer, f"cc-{cid}") == ["zoe@partner.example", "eve@partner.example"]
    assert chips(composer, f"bcc-{cid}") == ["finn@partner.example"]
    composer.get_by_label("Reply to Carla Customer").fill("A fire crew is on its way.")
    expect(composer.locator(".composer-draft")).to_have_text("Draft saved")
    db.session.expire_all()
    draft = reply_drafts.get(cid, ana.id)  # the chips are part of the draft
    assert (draft.to, draft.cc, draft.bcc) == (
        "gus@customer.example",
        "zoe@partner.example, eve@partner.example",
        "finn@partner.example",
    )
    screens(page, tmp_path, "composer-reply")

    composer.get_by_role("button", name="Send", exact=True).click()
    sent = page.locator("#thread-messages .msg-outgoing", has_text="fire crew")
    expect(sent).to_have_count(1)
    expect(sent.locator(".msg-recipients")).to_contain_text("To gus@customer.example")
    send_outbound(app)
    envelope = smtp.wait_for_messages(1)[0]
    assert sorted(envelope.rcpt_tos) == [
        "eve@partner.example",
        "finn@partner.example",
        "gus@customer.example",
        "zoe@partner.example",
    ]
    mail = BytesParser(policy=policy.default).parsebytes(envelope.content)
    assert str(mail["To"]) == "gus@customer.example"
    assert "dan@" not in str(mail["Cc"]) and "Bcc" not in mail
    assert "Ana from Support" in mail.get_body(("plain",)).get_content()  # as previewed

    # The Note tab: unmistakable (banner, no recipients, no signature, its own button).
    composer = page.locator("#composer")
    composer.get_by_text("Internal note", exact=True).click()
    expect(composer.get_by_role("radio", name="Internal note")).to_be_checked()
    expect(composer.get_by_text("Internal note, never emailed.")).to_be_visible()
    expect(composer.locator(".composer-recipients")).to_be_hidden()
    expect(composer.locator(".composer-signature")).to_be_hidden()
    expect(composer).to_have_css("border-top-style", "dashed")
    composer.get_by_label("Note for your team").fill("Carla sounds stressed, call her.")
    screens(page, tmp_path, "composer-note")
    composer.get_by_role("button", name="Add note", exact=True).click()
    note = page.locator("#thread-messages .msg-note", has_text="call her")
    expect(note).to_have_count(1)

    # The reply-all CC chips were still there on the hidden reply tab: a note drops them.
    send_outbound(app)
    db.session.expire_all()
    stored = db.session.scalar(select(Message).where(Message.direction == "note"))
    assert stored.cc_addresses == [] and stored.to_addresses == []
    assert stored.delivery_status is None
    page.wait_for_timeout(500)
    assert len(smtp.envelopes) == 1, "a note reached the SMTP server"
    # After sending, the composer is back on a fresh Reply tab.
    expect(page.locator("#composer").get_by_role("radio", name="Reply")).to_be_checked()


def test_a_draft_survives_a_reload_and_a_colleague_sees_it(
    app, browser, page, sign_in, people, live_server
):
    ana, bob = people
    conversation = receive(app)
    composer = open_thread(page, sign_in, ana, conversation)

    # A colleague already has the thread open: their viewers line picks the draft up.
    other = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    other.set_default_timeout(10_000)
    try:
        colleague = other.new_page()
        colleague.goto("/login")
        colleague.get_by_label("Email", exact=True).fill(bob.email)
        colleague.get_by_label("Password", exact=True).fill(bob.plain_password)
        colleague.get_by_role("button", name="Sign in").click()
        colleague.goto(f"/conversations/{conversation.id}")
        expect(colleague.locator("#thread-viewers")).not_to_contain_text("drafting")

        composer.get_by_text("Internal note", exact=True).click()
        composer.get_by_label("Note for your team").fill("Check the warranty first")
        expect(composer.locator(".composer-draft")).to_have_text("Draft saved")
        db.session.expire_all()
        draft = reply_drafts.get(conversation.id, ana.id)
        assert (draft.kind, draft.text) == ("note", "Check the warranty first")

        expect(colleague.locator("#thread-viewers")).to_contain_text(
            "Ana Agent is drafting a note…", timeout=POLL
        )
        expect(colleague.locator("#composer textarea")).to_have_value("")  # theirs, not Ana's

        # Reload: the composer is as Ana left it, on the Note tab.
        page.reload()
        composer = page.locator("#composer")
        expect(composer.get_by_role("radio", name="Internal note")).to_be_checked()
        expect(composer.locator("textarea[data-composer-text]")).to_have_value(
            "Check the warranty first"
        )
        expect(composer.locator(".composer-draft")).to_have_text("Draft restored")

        # Sent: the draft is gone, and so is "drafting" on the colleague's screen.
        composer.get_by_role("button", name="Add note", exact=True).click()
        expect(page.locator("#thread-messages .msg-note", has_text="warranty")).to_have_count(1)
        db.session.expire_all()
        assert reply_drafts.get(conversation.id, ana.id) is None
        expect(colleague.locator("#thread-viewers")).not_to_contain_text("drafting", timeout=POLL)
    finally:
        other.close()


DROP_A_FILE = """([name, text]) => {
  const data = new DataTransfer();
  data.items.add(new File([text], name, {type: "text/plain"}));
  const form = document.querySelector("#composer");
  for (const type of ["dragenter", "dragover", "drop"]) {
    form.dispatchEvent(new DragEvent(type, {dataTransfer: data, bubbles: true, cancelable: true}));
  }
}"""


def test_files_dropped_on_the_composer_are_attached(app, page, sign_in, people, smtp, live_server):
    ana, _bob = people
    conversation = receive(app)
    composer = open_thread(page, sign_in, ana, conversation)
    page.evaluate(DROP_A_FILE, ["quote.txt", "Quote: 3 extinguishers"])
    page.evaluate(DROP_A_FILE, ["map.txt", "Second floor"])
    files = composer.locator("[data-composer-files] .chip")
    expect(files).to_have_count(2)
    expect(files.first).to_contain_text("quote.txt")
    assert composer.locator('input[type="file"]').evaluate("el => el.files.length") == 2
    composer.get_by_role("button", name="Remove map.txt").click()
    expect(files).to_have_count(1)

    composer.get_by_label("Reply to Carla Customer").fill("Here is the quote.")
    composer.get_by_role("button", name="Send", exact=True).click()
    sent = page.locator("#thread-messages .msg-outgoing", has_text="Here is the quote.")
    expect(sent).to_have_count(1)
    expect(sent).to_contain_text("quote.txt")
    send_outbound(app)
    mail = BytesParser(policy=policy.default).parsebytes(smtp.wait_for_messages(1)[0].content)
    attached = [(p.get_filename(), p.get_content()) for p in mail.iter_attachments()]
    assert attached == [("quote.txt", "Quote: 3 extinguishers")]


def test_send_and_resolve(app, page, sign_in, people, live_server):
    ana, _bob = people
    conversation = receive(app)
    composer = open_thread(page, sign_in, ana, conversation)
    composer.get_by_label("Reply to Carla Customer").fill("All done, closing this.")
    composer.get_by_role("button", name="Send and resolve").click()
    expect(page.locator("#thread-messages .msg-outgoing", has_text="All done")).to_have_count(1)
    expect(
        page.locator("#thread-messages .msg-activity", has_text="resolved this conversation")
    ).to_have_count(1)
    db.session.expire_all()
    assert db.session.get(Conversation, conversation.id).status == "resolved"
    assert re.search("resolved", page.locator("#thread").inner_text())


def test_an_empty_to_is_refused_beside_the_to_field(app, page, sign_in, people, live_server):
    ana, _bob = people
    conversation = receive(app)
    composer = open_thread(page, sign_in, ana, conversation)
    to = composer.get_by_label("To", exact=True)
    to.focus()
    page.keyboard.press("Backspace")  # an empty box: Backspace takes the last chip off
    assert chips(composer, f"to-{conversation.id}") == []
    composer.get_by_label("Reply to Carla Customer").fill("Hello?")
    composer.get_by_role("button", name="Send", exact=True).click()
    error = page.locator(f"#reply-to-{conversation.id}-error")
    expect(error).to_have_text("Add at least one recipient in To.")
    to = page.locator("#composer").get_by_label("To", exact=True)
    expect(to).to_have_attribute("aria-describedby", f"reply-to-{conversation.id}-error")
    expect(page.locator("#composer textarea[data-composer-text]")).to_have_value("Hello?")
    db.session.expire_all()
    assert db.session.scalar(select(Message).where(Message.direction == "outgoing")) is None
