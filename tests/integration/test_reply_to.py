"""The composer's To as editable chips: prefilled with the contact (reply-all's To), stored on
the reply (Message.to_addresses) and sent to exactly those addresses over real SMTP; an empty
or invalid To is refused beside the field; a draft keeps To; the API takes an optional `to`."""

from __future__ import annotations

import re
from email import policy
from email.parser import BytesParser

import pytest

from extensions import db
from models import Message
from services import reply_drafts
from services.replies import ReplyError, create_reply
from tests.conftest import global_smtp
from tests.integration import test_workspace
from tests.support.workspace import api, deliver, messages_of
from worker import build_worker

team = test_workspace.team
browser = test_workspace.browser
DOMAIN = "reply.example.com"


@pytest.fixture
def app_config(app_config, smtp):
    return {**app_config, "MAILER_INBOUND_EMAIL_DOMAIN": DOMAIN, **global_smtp(smtp)}


def composer(html: str) -> str:
    return re.search(r'<form id="composer".*?</form>', html, re.S).group(0)


def send_queued(app) -> None:
    build_worker(app, ["outbound"], simple=True).work(burst=True)


def sent_mail(smtp):
    envelope = smtp.envelopes[-1]
    return envelope, BytesParser(policy=policy.default).parsebytes(envelope.content)


def test_the_composer_prefills_to_with_the_contact_as_an_editable_field(app, client, team, browser):
    conv = deliver(app, client, "m1@customer.example", "Help!")
    browser.login(team.bob)
    html = composer(browser.get(f"/conversations/{conv.id}").get_data(as_text=True))
    field = re.search(r'<input[^>]*name="to"[^>]*>', html).group(0)
    assert f'id="reply-to-{conv.id}"' in field and 'value="carla@customer.example"' in field
    assert 'data-chips="To"' in field and 'data-chip-name="Carla Customer"' in field
    assert f'<label for="reply-to-{conv.id}"' in html  # the label names the field
    assert "chip-fixed" not in html
    assert 'hx-params="csrf_token,text,to,cc,bcc,private"' in html  # the draft carries To


def test_a_reply_to_a_changed_to_is_stored_shown_and_sent_to_exactly_those(
    app, client, team, browser, smtp
):
    conv = deliver(app, client, "m1@customer.example", "Help!")
    browser.login(team.bob)
    before = len(smtp.envelopes)
    response = browser.post(
        f"/conversations/{conv.id}/reply",
        {
            "text": "Sending this to your accounts team.",
            "to": "Accounts@Customer.example; carla@customer.example",
            "cc": "boss@customer.example",
        },
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    [reply] = messages_of(conv, "outgoing")
    assert reply.to_addresses.addresses() == ["accounts@customer.example", "carla@customer.example"]
    assert "To accounts@customer.example, carla@customer.example · CC boss@customer.example" in (
        response.get_data(as_text=True)
    )

    send_queued(app)
    db.session.refresh(reply)
    assert reply.delivery_status == "sent", reply.delivery_error
    assert len(smtp.envelopes) == before + 1
    envelope, mail = sent_mail(smtp)
    assert sorted(envelope.rcpt_tos) == [
        "accounts@customer.example",
        "boss@customer.example",
        "carla@customer.example",
    ]
    # The contact keeps their display name; the other address goes bare.
    assert str(mail["To"]) == "accounts@customer.example, Carla Customer <carla@customer.example>"
    assert str(mail["Cc"]) == "boss@customer.example"


def test_a_reply_without_the_contact_never_reaches_the_contact(app, client, team, browser, smtp):
    conv = deliver(app, client, "m1@customer.example", "Help!")
    browser.login(team.bob)
    response = browser.post(
        f"/conversations/{conv.id}/reply", {"text": "Only for you.", "to": "other@customer.example"}
    )
    assert response.status_code == 200
    send_queued(app)
    envelope, mail = sent_mail(smtp)
    assert envelope.rcpt_tos == ["other@customer.example"]
    assert str(mail["To"]) == "other@customer.example"


def test_an_empty_to_is_refused_beside_the_field(app, client, team, browser):
    conv = deliver(app, client, "m1@customer.example", "Help!")
    browser.login(team.bob)
    refused = browser.post(
        f"/conversations/{conv.id}/reply",
        {"text": "Hello", "to": " , ", "cc": "a@customer.example"},
    )
    assert refused.status_code == 422
    html = composer(refused.get_data(as_text=True))
    error = f'<p class="error" role="alert" id="reply-to-{conv.id}-error">'
    assert error + "Add at least one recipient in To.</p>" in html
    field = re.search(r'<input[^>]*name="to"[^>]*>', html).group(0)
    assert 'aria-invalid="true"' in field
    assert f'aria-describedby="reply-to-{conv.id}-error"' in field
    assert ">Hello</textarea>" in html  # nothing typed is lost
    assert messages_of(conv, "outgoing") == []


def test_an_invalid_to_address_is_refused_by_name(app, client, team, browser):
    conv = deliver(app, client, "m1@customer.example", "Help!")
    browser.login(team.bob)
    refused = browser.post(
        f"/conversations/{conv.id}/reply",
        {"text": "Hello", "to": "carla@customer.example, not-an-address"},
    )
    assert refused.status_code == 422
    html = composer(refused.get_data(as_text=True))
    assert "To: &#39;not-an-address&#39; is not an email address" in html
    assert f'id="reply-to-{conv.id}-error"' in html
    assert messages_of(conv, "outgoing") == []


def test_without_a_to_field_the_reply_goes_to_the_contact(app, client, team, browser, smtp):
    """Old tabs and scripts that post no `to` at all: the contact, as before."""
    conv = deliver(app, client, "m1@customer.example", "Help!")
    browser.login(team.bob)
    assert browser.post(f"/conversations/{conv.id}/reply", {"text": "Hi"}).status_code == 200
    [reply] = messages_of(conv, "outgoing")
    assert reply.to_addresses.addresses() == ["carla@customer.example"]
    send_queued(app)
    envelope, mail = sent_mail(smtp)
    assert envelope.rcpt_tos == ["carla@customer.example"]
    assert str(mail["To"]) == "Carla Customer <carla@customer.example>"


def test_a_note_ignores_to(app, client, team, browser):
    conv = deliver(app, client, "m1@customer.example", "Help!")
    browser.login(team.bob)
    response = browser.post(
        f"/conversations/{conv.id}/reply",
        {"text": "Call her", "private": "1", "to": "carla@customer.example"},
    )
    assert response.status_code == 200
    [note] = messages_of(conv, "note")
    assert note.to_addresses == [] and note.delivery_status is None


def test_a_draft_keeps_to_across_a_reload(app, client, team, browser):
    conv = deliver(app, client, "m1@customer.example", "Help!")
    browser.login(team.bob)
    saved = browser.post(
        f"/conversations/{conv.id}/draft",
        {"text": "For accounts", "to": "accounts@customer.example", "cc": ""},
    )
    assert saved.get_data(as_text=True) == "Draft saved"
    db.session.expire_all()
    assert reply_drafts.get(conv.id, team.bob.id).to == "accounts@customer.example"
    html = composer(browser.get(f"/conversations/{conv.id}").get_data(as_text=True))
    field = re.search(r'<input[^>]*name="to"[^>]*>', html).group(0)
    assert 'value="accounts@customer.example"' in field
    assert "Draft restored" in html

    # A draft saved without a To (older composers) gets reply-all's To back.
    browser.post(f"/conversations/{conv.id}/draft", {"text": "Still here"})
    html = composer(browser.get(f"/conversations/{conv.id}").get_data(as_text=True))
    field = re.search(r'<input[^>]*name="to"[^>]*>', html).group(0)
    assert 'value="carla@customer.example"' in field


def test_the_service_defaults_to_the_contact_and_refuses_an_empty_to(app, client, team):
    conv = deliver(app, client, "m1@customer.example", "Help!")
    reply = create_reply(conv, team.bob, "Default")
    assert reply.to_addresses.addresses() == ["carla@customer.example"]
    with pytest.raises(ReplyError, match="at least one recipient") as refused:
        create_reply(conv, team.bob, "Nobody", to=[])
    assert refused.value.field == "to"
    twice = create_reply(conv, team.bob, "Twice", to=["a@x.example", "A@x.example"])
    assert twice.to_addresses.addresses() == ["a@x.example"]


def test_the_api_takes_an_optional_to(app, client, team, smtp):
    conv = deliver(app, client, "m1@customer.example", "Help!")
    before = len(smtp.envelopes)  # the server serves the whole module
    path = f"/conversations/{conv.id}/messages"
    made = api(client, "POST", path, team.bob, {"content": "Hi", "to": ["ops@customer.example"]})
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["to"] == [{"name": "", "address": "ops@customer.example"}]
    default = api(client, "POST", path, team.bob, {"content": "Hi again"})
    assert default.status_code == 201 and default.get_json()["to"] == [
        {"name": "", "address": "carla@customer.example"}
    ]

    empty = api(client, "POST", path, team.bob, {"content": "x", "to": []})
    assert empty.status_code == 422 and "at least one recipient" in empty.get_json()["error"]
    bad = api(client, "POST", path, team.bob, {"content": "x", "to": ["nope"]})
    assert bad.status_code == 422 and "'nope' is not an email address" in bad.get_json()["error"]
    wrong = api(client, "POST", path, team.bob, {"content": "x", "to": "ops@customer.example"})
    assert wrong.status_code == 422 and "to must be a list" in wrong.get_json()["error"]
    note = api(client, "POST", path, team.bob, {"content": "x", "private": True, "to": ["a@b.co"]})
    assert note.status_code == 422 and "cannot have To" in note.get_json()["error"]

    send_queued(app)
    recipients = sorted(tuple(e.rcpt_tos) for e in smtp.envelopes[before:])
    assert recipients == [("carla@customer.example",), ("ops@customer.example",)]
    assert db.session.query(Message).filter_by(direction="outgoing").count() == 2
