"""The composer's server side: drafts saved per agent and conversation (and shown to
colleagues), reply-all recipients, Reply/Note tabs as `private`, the signature preview and
"Send and resolve"."""

from __future__ import annotations

import re
from email.message import EmailMessage

import pytest
from sqlalchemy import func, select

from extensions import db
from models import Conversation, InboxMember, ReplyDraft
from services import reply_drafts
from services.replies import reply_all_recipients
from tests.integration import test_workspace
from tests.support.inbound import post_relay, work_inbound
from tests.support.workspace import deliver, messages_of

team = test_workspace.team
browser = test_workspace.browser
DOMAIN = "reply.example.com"


@pytest.fixture
def app_config(app_config):
    return {**app_config, "MAILER_INBOUND_EMAIL_DOMAIN": DOMAIN}


def draft_of(conv, user) -> ReplyDraft | None:
    db.session.expire_all()
    return reply_drafts.get(conv.id, user.id)


def composer(html: str) -> str:
    return re.search(r'<form id="composer".*?</form>', html, re.S).group(0)


def test_a_draft_is_saved_as_typed_restored_on_reload_and_deleted_when_sent(
    app, client, team, browser
):
    conv = deliver(app, client, "m1@customer.example", "Printer smokes.")
    browser.login(team.bob)
    saved = browser.post(
        f"/conversations/{conv.id}/draft",
        {"text": "We are on it", "cc": "boss@customer.example", "bcc": "", "private": ""},
    )
    assert saved.status_code == 200 and saved.get_data(as_text=True) == "Draft saved"
    draft = draft_of(conv, team.bob)
    assert (draft.kind, draft.text, draft.cc) == ("reply", "We are on it", "boss@customer.example")

    # Typing on: the same row is updated, never a second one.
    browser.post(f"/conversations/{conv.id}/draft", {"text": "We are on it, Carla", "cc": ""})
    count = db.session.scalar(select(func.count(ReplyDraft.id)))
    assert count == 1 and draft_of(conv, team.bob).text == "We are on it, Carla"

    # A reload draws the composer from the draft.
    html = composer(browser.get(f"/conversations/{conv.id}").get_data(as_text=True))
    assert ">We are on it, Carla</textarea>" in html
    assert "Draft restored" in html
    assert 'name="private" value="" checked' in html  # the Reply tab

    # The Note tab is part of the draft too.
    browser.post(f"/conversations/{conv.id}/draft", {"text": "VIP, be nice", "private": "1"})
    assert draft_of(conv, team.bob).kind == "note"
    html = composer(browser.get(f"/conversations/{conv.id}").get_data(as_text=True))
    assert 'name="private" value="1" checked' in html and ">VIP, be nice</textarea>" in html

    # Sending the note deletes the draft; the next composer is a fresh reply.
    sent = browser.post(f"/conversations/{conv.id}/reply", {"text": "VIP, be nice", "private": "1"})
    assert sent.status_code == 200
    assert draft_of(conv, team.bob) is None
    assert [m.text_body for m in messages_of(conv, "note")] == ["VIP, be nice"]
    html = composer(sent.get_data(as_text=True))
    assert "</textarea>" in html and "VIP, be nice</textarea>" not in html
    assert 'name="private" value="" checked' in html


def test_emptying_the_composer_deletes_the_draft(app, client, team, browser):
    conv = deliver(app, client, "m1@customer.example", "Hello")
    browser.login(team.bob)
    browser.post(f"/conversations/{conv.id}/draft", {"text": "Hi"})
    assert draft_of(conv, team.bob) is not None
    cleared = browser.post(f"/conversations/{conv.id}/draft", {"text": "   "})
    assert cleared.status_code == 200 and cleared.get_data(as_text=True) == ""
    assert draft_of(conv, team.bob) is None


def test_drafts_are_private_to_members_and_need_csrf(app, client, team, browser):
    conv = deliver(app, client, "m1@customer.example", "Hello")
    browser.login(team.olga)  # not a member of Support
    assert browser.post(f"/conversations/{conv.id}/draft", {"text": "x"}).status_code == 404
    browser.login(team.bob)
    refused = browser.post(f"/conversations/{conv.id}/draft", {"text": "x"}, csrf=False)
    assert refused.status_code in (400, 403)
    assert db.session.scalar(select(func.count(ReplyDraft.id))) == 0


def test_colleagues_see_who_is_drafting_but_not_themselves(app, client, team, browser):
    conv = deliver(app, client, "m1@customer.example", "Hello")
    db.session.add(InboxMember(inbox_id=conv.inbox_id, user_id=team.ana.id))
    db.session.commit()
    browser.login(team.bob)
    browser.post(f"/conversations/{conv.id}/draft", {"text": "Working on it"})
    mine = browser.get(f"/conversations/{conv.id}/viewers", htmx=True).get_data(as_text=True)
    assert "drafting" not in mine

    browser.login(team.ana)
    theirs = browser.get(f"/conversations/{conv.id}/viewers", htmx=True).get_data(as_text=True)
    assert theirs.lstrip().startswith('<p id="thread-viewers"')
    assert "Bob Agent is drafting a reply…" in theirs
    page = browser.get(f"/conversations/{conv.id}").get_data(as_text=True)
    assert "Bob Agent is drafting a reply…" in page

    # An old draft is not "drafting" any more, but still worth knowing about.
    draft = reply_drafts.get(conv.id, team.bob.id)
    draft.updated_at = draft.updated_at - reply_drafts.ACTIVE * 2
    db.session.commit()
    later = browser.get(f"/conversations/{conv.id}/viewers", htmx=True).get_data(as_text=True)
    assert "Bob Agent has an unsent reply draft" in later

    # Bob sends: nobody is drafting.
    browser.login(team.bob)
    browser.post(f"/conversations/{conv.id}/reply", {"text": "Working on it"})
    browser.login(team.ana)
    gone = browser.get(f"/conversations/{conv.id}/viewers", htmx=True).get_data(as_text=True)
    assert "Bob Agent" not in gone


def cc_email(conv_subject: str = "Group question") -> bytes:
    message = EmailMessage()
    message["From"] = "Carla Customer <carla@customer.example>"
    message["To"] = "support@example.com, Zoe Partner <zoe@partner.example>"
    message["Cc"] = "dan@customer.example, carla@customer.example, reply+abc@" + DOMAIN
    message["Subject"], message["Message-ID"] = conv_subject, "<group-1@customer.example>"
    message.set_content("Can you all have a look?")
    return message.as_bytes()


def test_reply_all_prefills_cc_with_everyone_else_on_the_latest_email(app, client, team, browser):
    post_relay(client, cc_email())
    work_inbound(app)
    conv = db.session.scalar(select(Conversation).where(Conversation.subject == "Group question"))
    to, cc = reply_all_recipients(conv)
    assert to == "carla@customer.example"
    assert cc == ["zoe@partner.example", "dan@customer.example"]  # not us, not Carla

    browser.login(team.bob)
    html = composer(browser.get(f"/conversations/{conv.id}").get_data(as_text=True))
    assert 'value="zoe@partner.example, dan@customer.example"' in html
    assert "carla@customer.example" in html  # the To chip
    # A draft wins over reply-all: the agent's choice survives a reload.
    browser.post(f"/conversations/{conv.id}/draft", {"text": "Hi", "cc": "dan@customer.example"})
    html = composer(browser.get(f"/conversations/{conv.id}").get_data(as_text=True))
    assert 'value="dan@customer.example"' in html and "zoe@partner.example," not in html


def test_the_signature_is_previewed_on_the_reply_tab(app, client, team, browser):
    conv = deliver(app, client, "m1@customer.example", "Hello")
    conv.inbox.signature = "Ana & the Support team\nexample.com"
    db.session.commit()
    browser.login(team.bob)
    html = composer(browser.get(f"/conversations/{conv.id}").get_data(as_text=True))
    assert "Signature, added when sent" in html
    # A plain-text signature is drawn as HTML: escaped, its line breaks kept.
    assert "-- <br><div>Ana &amp; the Support team<br>\nexample.com</div></div>" in html

    # The agent's own signature comes first, with its variables filled in; markup that
    # reached the database unsanitised is sanitised again when drawn.
    team.bob.signature = "<b>{{agent.name}}</b><script>alert(1)</script>"
    db.session.commit()
    html = composer(browser.get(f"/conversations/{conv.id}").get_data(as_text=True))
    assert "-- <br><div><b>Bob Agent</b></div><div>Ana &amp; the Support team" in html
    assert "<script>alert(1)" not in html


def test_send_and_resolve_is_one_request(app, client, team, browser):
    conv = deliver(app, client, "m1@customer.example", "Help!")
    browser.login(team.bob)
    browser.post(f"/conversations/{conv.id}/draft", {"text": "Fixed"})
    response = browser.post(f"/conversations/{conv.id}/reply", {"text": "Fixed", "resolve": "1"})
    assert response.status_code == 200
    db.session.expire_all()
    assert db.session.get(Conversation, conv.id).status == "resolved"
    outgoing = messages_of(conv, "outgoing")
    assert [m.text_body for m in outgoing] == ["Fixed"] and outgoing[0].delivery_status == "queued"
    assert draft_of(conv, team.bob) is None
    assert "resolved this conversation" in response.get_data(as_text=True)

    # A refused reply resolves nothing.
    conv2 = deliver(app, client, "m2@customer.example", "Again", subject="Other")
    refused = browser.post(f"/conversations/{conv2.id}/reply", {"text": " ", "resolve": "1"})
    assert refused.status_code == 422
    db.session.expire_all()
    assert db.session.get(Conversation, conv2.id).status == "open"


def test_send_and_resolve_that_collides_asks_first_then_does_both(app, client, team, browser):
    conv = deliver(app, client, "m1@customer.example", "Help!")
    browser.login(team.bob)
    seen = re.search(r'name="seen" value="(\d+)"', browser.get(f"/conversations/{conv.id}").text)
    deliver(app, client, "m2@customer.example", "Fixed it", in_reply_to="m1@customer.example")
    asked = browser.post(
        f"/conversations/{conv.id}/reply", {"text": "Done", "resolve": "1", "seen": seen[1]}
    )
    assert asked.status_code == 409 and "Send anyway and resolve" in asked.text
    db.session.expire_all()
    assert db.session.get(Conversation, conv.id).status == "open"
    both = browser.post(
        f"/conversations/{conv.id}/reply", {"text": "Done", "confirm": "resolve", "seen": seen[1]}
    )
    assert both.status_code == 200
    db.session.expire_all()
    assert db.session.get(Conversation, conv.id).status == "resolved"
    assert [m.text_body for m in messages_of(conv, "outgoing")] == ["Done"]


def test_a_note_from_the_note_tab_never_carries_recipients(app, client, team, browser):
    conv = deliver(app, client, "m1@customer.example", "Help!")
    browser.login(team.bob)
    refused = browser.post(
        f"/conversations/{conv.id}/reply",
        {"text": "x", "private": "1", "cc": "a@customer.example"},
    )
    assert refused.status_code == 422 and "never emailed" in refused.get_data(as_text=True)
    assert messages_of(conv, "note") == [] and messages_of(conv, "outgoing") == []
