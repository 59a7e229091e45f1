"""HTML signatures (issue 19): the inbox's, saved on its settings' Identity tab, and the
agent's own, saved on the profile, each with a live preview that writes nothing; a reply
from the composer reaches a real SMTP server signed with both, the agent's first: the
text part ends with "-- " and their text versions, the HTML part carries the sanitised
signatures with the variables filled in."""

from __future__ import annotations

import html
import json
import re
from email import policy
from email.parser import BytesParser

import pytest

from extensions import db
from models import Inbox, User
from tests.conftest import global_smtp
from tests.integration import test_workspace
from tests.support.workspace import deliver, messages_of
from worker import build_worker

team = test_workspace.team
browser = test_workspace.browser

INBOX_SIGNATURE = (
    '<p onclick="steal()">The {{ inbox.name }} team<script>alert("x")</script><br>'
    '<a href="https://example.com/help">Help centre</a> '
    '<a href="javascript:alert(1)">click</a></p>'
)
IDENTITY = {
    "section": "identity",
    "sender_name_style": "agent_from_inbox",
    "reply_to_style": "inbox",
    "subject_threading": "1",
}


@pytest.fixture
def app_config(app_config, smtp):
    return {**app_config, **global_smtp(smtp)}


def settings_url(inbox) -> str:
    return f"/admin/inboxes/{inbox.id}/settings"


def save_inbox_signature(browser, inbox, signature: str):
    return browser.post(settings_url(inbox), {**IDENTITY, "signature": signature}, htmx=False)


def stored(model, row_id):
    db.session.expire_all()
    return db.session.get(model, row_id).signature


def sent_mail(smtp):
    return BytesParser(policy=policy.default).parsebytes(smtp.envelopes[-1].content)


def test_a_reply_is_signed_in_both_parts_agent_first_then_inbox(app, client, team, browser, smtp):
    browser.login(team.ana)  # the admin sets the inbox's signature
    saved = save_inbox_signature(browser, team.support, INBOX_SIGNATURE)
    assert saved.status_code == 200, saved.get_data(as_text=True)
    signature = stored(Inbox, team.support.id)
    assert "<script" not in signature and "onclick" not in signature
    assert "javascript" not in signature and "{{ inbox.name }}" in signature

    browser.login(team.bob)  # Bob signs his own replies
    response = browser.post(
        "/profile/signature",
        {"signature": "<b>{{agent.name}}</b> &middot; <i>{{agent.email}}</i>"},
        htmx=False,
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    assert stored(User, team.bob.id) == "<b>{{agent.name}}</b> · <i>{{agent.email}}</i>"

    conv = deliver(app, client, "m1@customer.example", "Where is my order?")
    page = browser.get(f"/conversations/{conv.id}").get_data(as_text=True)
    composer = re.search(
        r'<div class="composer-signature when-reply">.*?</div>\s*</div>', page, re.S
    )
    assert "<b>Bob Agent</b>" in composer.group(0) and "The Support team" in composer.group(0)

    before = len(smtp.envelopes)
    sent = browser.post(f"/conversations/{conv.id}/reply", {"text": "It ships today."})
    assert sent.status_code == 200, sent.get_data(as_text=True)
    build_worker(app, ["outbound"], simple=True).work(burst=True)
    [reply] = messages_of(conv, "outgoing")
    db.session.refresh(reply)
    assert reply.delivery_status == "sent", reply.delivery_error
    assert len(smtp.envelopes) == before + 1

    mail = sent_mail(smtp)
    text = mail.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert text.rstrip("\n").endswith(
        "It ships today.\n\n-- \n"
        "Bob Agent · bob@staff.example\n"
        "The Support team\n"
        "Help centre <https://example.com/help> click"
    ), text
    body = mail.get_body(("html",)).get_content()
    assert '<div dir="auto"><p>It ships today.</p></div><div class="signature">-- <br>' in body
    assert "<b>Bob Agent</b> · <i>bob@staff.example</i>" in body
    assert "The Support team<br>" in body
    assert '<a href="https://example.com/help" rel="noopener noreferrer">Help centre</a>' in body
    assert body.index("Bob Agent") < body.index("The Support team")
    for unsafe in ("<script", "onclick", "javascript:", "{{"):
        assert unsafe not in body, unsafe


def test_the_agents_name_is_escaped_where_it_fills_a_variable(app, client, team, browser, smtp):
    team.bob.name = "<b>Bob</b>"
    team.support.signature = "<p>{{agent.name}} for {{inbox.name}}</p>"
    db.session.commit()
    browser.login(team.bob)
    conv = deliver(app, client, "m1@customer.example", "Hello")
    browser.post(f"/conversations/{conv.id}/reply", {"text": "Hi"})
    build_worker(app, ["outbound"], simple=True).work(burst=True)
    mail = sent_mail(smtp)
    assert "&lt;b&gt;Bob&lt;/b&gt; for Support" in mail.get_body(("html",)).get_content()
    text = mail.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert text.rstrip().endswith("-- \n<b>Bob</b> for Support")


def test_the_settings_preview_renders_the_signature_and_writes_nothing(app, team, browser):
    team.support.signature = "<p>Kept</p>"
    db.session.commit()
    browser.login(team.ana)
    page = browser.get(settings_url(team.support) + "?section=identity").get_data(as_text=True)
    textarea = re.search(r"<textarea[^>]*>", page).group(0)
    assert 'hx-post="/admin/inboxes/signature-preview"' in textarea
    vals = json.loads(html.unescape(re.search(r'hx-vals="([^"]*)"', textarea).group(1)))
    assert vals == {"inbox_name": "Support", "inbox_address": "support@example.com"}
    assert '<div id="signature-preview" aria-live="polite">' in page and "<p>Kept</p>" in page

    preview = browser.post(
        "/admin/inboxes/signature-preview",
        {
            "signature": "<b>{{ agent.name }}</b> of {{inbox.name}} <script>x()</script>",
            "inbox_name": "Help desk",
            "inbox_address": "help@example.com",
        },
    )
    assert preview.status_code == 200
    body = preview.get_data(as_text=True)
    assert "<b>Ana Admin</b> of Help desk" in body and "<script" not in body
    assert stored(Inbox, team.support.id) == "<p>Kept</p>"

    # Without the page's CSRF token the preview is refused.
    assert (
        browser.post("/admin/inboxes/signature-preview", {"signature": "x"}, csrf=False).status_code
        == 400
    )
    # Agents cannot use the admin's preview.
    browser.login(team.bob)
    assert browser.post("/admin/inboxes/signature-preview", {"signature": "x"}).status_code == 403


def test_a_too_long_signature_is_refused_beside_the_field(app, team, browser):
    team.support.signature = "<p>Kept</p>"
    db.session.commit()
    browser.login(team.ana)
    long = "<p>" + "x" * 10_001 + "</p>"
    refused = save_inbox_signature(browser, team.support, long)
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert re.search(
        r'<p class="error" role="alert" id="signature-error">Keep the signature under 10,000 '
        r"characters.</p>",
        page,
    )
    assert stored(Inbox, team.support.id) == "<p>Kept</p>"
    preview = browser.post("/admin/inboxes/signature-preview", {"signature": long})
    assert preview.status_code == 422
    assert "Keep the signature under 10,000 characters." in preview.get_data(as_text=True)

    browser.login(team.bob)
    refused = browser.post("/profile/signature", {"signature": long}, htmx=False)
    assert refused.status_code == 422
    assert 'id="agent-signature-error">Keep the signature under 10,000 characters.' in (
        refused.get_data(as_text=True)
    )
    assert stored(User, team.bob.id) == ""


def test_the_profile_preview_fills_in_the_agent_and_their_inbox_and_writes_nothing(
    app, team, browser
):
    browser.login(team.bob)
    page = browser.get("/profile").get_data(as_text=True)
    assert 'hx-post="/profile/signature/preview"' in page and 'id="agent-signature"' in page
    preview = browser.post(
        "/profile/signature/preview",
        {"signature": "{{agent.name}} <{{agent.email}}>, {{inbox.name}} {{unknown}}"},
    )
    assert preview.status_code == 200
    body = preview.get_data(as_text=True)
    assert "Bob Agent" in body and "Support" in body and "{{unknown}}" in body
    assert stored(User, team.bob.id) == ""
