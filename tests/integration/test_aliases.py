"""Several addresses per inbox (issue 19): aliases added on the settings' Addresses tab (an
address another inbox uses, Threadline's own domain or a non-address refused beside the
field), mail to an alias routed to its inbox through the relay ingress, the reply sent over
real SMTP from the address the customer wrote to (or the one the agent picks), an alias
verified once its test email comes back through it, and no alias ever a reply-all recipient."""

from __future__ import annotations

import re
from email import policy
from email.parser import BytesParser
from html import unescape

import pytest
from sqlalchemy import select

from extensions import db
from models import InboxAddress, Message
from services.routing import OurAddresses
from tests.conftest import global_smtp
from tests.integration import test_workspace
from tests.support.inbound import post_relay, work_inbound
from tests.support.workspace import api, deliver, messages_of
from worker import build_worker

team = test_workspace.team
browser = test_workspace.browser
DOMAIN = "reply.example.com"


@pytest.fixture
def app_config(app_config, smtp):
    return {**app_config, "MAILER_INBOUND_EMAIL_DOMAIN": DOMAIN, **global_smtp(smtp)}


def settings(browser, inbox) -> str:
    page = browser.get(f"/admin/inboxes/{inbox.id}/settings?section=aliases")
    assert page.status_code == 200
    return unescape(page.get_data(as_text=True))


def add_alias(browser, inbox, address):
    return browser.post(f"/admin/inboxes/{inbox.id}/aliases", {"address": address}, htmx=False)


def alias_named(address) -> InboxAddress:
    db.session.expire_all()
    return db.session.scalar(select(InboxAddress).where(InboxAddress.address == address))


def send_queued(app) -> None:
    build_worker(app, ["outbound"], simple=True).work(burst=True)


def last_sent(smtp):
    envelope = smtp.envelopes[-1]
    return envelope, BytesParser(policy=policy.default).parsebytes(envelope.content)


def composer(html: str) -> str:
    return re.search(r'<form id="composer".*?</form>', html, re.S).group(0)


def test_an_admin_adds_an_alias_and_addresses_in_use_are_refused_beside_the_field(
    app, client, team, browser
):
    browser.login(team.ana)
    added = add_alias(browser, team.support, "  Sales@Example.com ")
    assert added.status_code == 303
    page = settings(browser, team.support)
    assert "sales@example.com" in page and "Not verified" in page
    assert alias_named("sales@example.com").inbox_id == team.support.id  # stored lower-case

    assert add_alias(browser, team.billing, "accounts@example.org").status_code == 303
    refusals = {
        "billing@example.com": "already the support address of the inbox “Billing”",
        "Accounts@example.org": "already the alias of the inbox “Billing”",
        "sales@example.com": "already an address of this inbox",
        "support@example.com": "already an address of this inbox",
        "not-an-address": "Enter an email address",
        f"anything@{DOMAIN}": f"Addresses at {DOMAIN} are Threadline's own",
    }
    for address, words in refusals.items():
        refused = add_alias(browser, team.support, address)
        assert refused.status_code == 422, address
        html = unescape(refused.get_data(as_text=True))
        field_error = re.search(
            r'<p class="error" role="alert" id="alias-address-error">(.*?)</p>', html
        )
        assert field_error is not None and words in field_error.group(1), (address, html)
    assert {a.address for a in team.support.aliases} == {"sales@example.com"}

    # The support address cannot become another inbox's alias either (the basics form).
    form = {"section": "basics", "go": "save", "name": "Billing"}
    taken = browser.post(
        f"/admin/inboxes/{team.billing.id}/settings",
        {**form, "support_address": "sales@example.com"},
        htmx=False,
    )
    assert taken.status_code == 422
    assert "sales@example.com is already an alias of the inbox “Support”" in unescape(
        taken.get_data(as_text=True)
    )

    alias = alias_named("sales@example.com")
    removed = browser.post(
        f"/admin/inboxes/{team.support.id}/aliases/{alias.id}/remove", htmx=False
    )
    assert removed.status_code == 303 and alias_named("sales@example.com") is None
    # An agent (not an admin) cannot manage them.
    browser.login(team.bob)
    assert add_alias(browser, team.support, "info@example.com").status_code in (302, 403)
    assert alias_named("info@example.com") is None


def test_mail_to_an_alias_is_answered_from_it_unless_the_agent_picks_the_primary(
    app, client, team, browser, smtp
):
    browser.login(team.ana)
    assert add_alias(browser, team.support, "sales@example.com").status_code == 303
    conv = deliver(app, client, "m1@customer.example", "A quote, please", to="sales@example.com")
    assert conv.inbox_id == team.support.id

    browser.login(team.bob)
    html = composer(browser.get(f"/conversations/{conv.id}").get_data(as_text=True))
    select_from = re.search(r'<select[^>]*name="from".*?</select>', html, re.S).group(0)
    assert '<option value="sales@example.com" selected>' in select_from
    assert '<option value="support@example.com">' in select_from

    before = len(smtp.envelopes)
    posted = browser.post(
        f"/conversations/{conv.id}/reply",
        {
            "text": "Here is your quote.",
            "to": "carla@customer.example",
            "from": "sales@example.com",
        },
    )
    assert posted.status_code == 200, posted.get_data(as_text=True)
    send_queued(app)
    assert len(smtp.envelopes) == before + 1
    envelope, sent = last_sent(smtp)
    assert sent["From"].addresses[0].addr_spec == "sales@example.com"
    assert envelope.mail_from == "support@example.com"  # the mailbox that sends, as before
    assert envelope.rcpt_tos == ["carla@customer.example"]
    assert sent["Reply-To"].addresses[0].addr_spec.startswith("reply+")  # continuity kept

    posted = browser.post(
        f"/conversations/{conv.id}/reply",
        {
            "text": "From the main desk.",
            "to": "carla@customer.example",
            "from": "support@example.com",
        },
    )
    assert posted.status_code == 200
    send_queued(app)
    _envelope, sent = last_sent(smtp)
    assert sent["From"].addresses[0].addr_spec == "support@example.com"

    refused = browser.post(
        f"/conversations/{conv.id}/reply",
        {"text": "Spoofed.", "to": "carla@customer.example", "from": "billing@example.com"},
    )
    assert refused.status_code == 422
    assert 'id="reply-from-' in refused.get_data(as_text=True)
    assert "not an address of this inbox" in unescape(refused.get_data(as_text=True))

    # The API without "from" answers from the alias the customer wrote to; with it, as asked.
    made = api(client, "POST", f"/conversations/{conv.id}/messages", team.bob, {"content": "Hi"})
    assert made.status_code == 201, made.get_json()
    chosen = api(
        client,
        "POST",
        f"/conversations/{conv.id}/messages",
        team.bob,
        {"content": "Hi", "from": "support@example.com"},
    )
    assert chosen.status_code == 201
    bad = api(
        client,
        "POST",
        f"/conversations/{conv.id}/messages",
        team.bob,
        {"content": "Hi", "from": "someone@example.org"},
    )
    assert bad.status_code == 422
    froms = [m.from_address for m in messages_of(conv, "outgoing")]
    assert froms == ["sales@example.com", "", "sales@example.com", ""]


def test_a_test_email_through_the_alias_verifies_it(app, client, team, browser, smtp):
    browser.login(team.ana)
    for address in ("sales@example.com", "info@example.com"):
        assert add_alias(browser, team.support, address).status_code == 303
    sales = alias_named("sales@example.com")
    before = len(smtp.envelopes)
    sent = browser.post(f"/admin/inboxes/{team.support.id}/aliases/{sales.id}/test", htmx=False)
    assert sent.status_code == 303
    assert len(smtp.envelopes) == before + 1
    envelope, email = last_sent(smtp)
    assert envelope.rcpt_tos == ["sales@example.com"]
    assert email["To"] == "sales@example.com"
    assert email["Message-ID"].startswith("<threadline-test.")
    assert alias_named("sales@example.com").test_sent_at is not None
    assert "not arrived yet" in settings(browser, team.support)

    # The provider delivers it (to the alias, or forwarded from it): it comes back in.
    post_relay(client, envelope.content)
    work_inbound(app)
    assert alias_named("sales@example.com").verified_at is not None
    assert alias_named("info@example.com").verified_at is None  # not among its recipients
    page = settings(browser, team.support)
    row = r'<li class="alias" id="alias-\d+">\s*<span class="alias-address"><strong>{}@.*?</li>'
    sales_row = re.search(row.format("sales"), page, re.S)
    info_row = re.search(row.format("info"), page, re.S)
    assert "Verified " in sales_row.group(0)
    assert "Not verified" in info_row.group(0)


def test_an_alias_is_never_a_reply_all_recipient(app, client, team, browser):
    browser.login(team.ana)
    for address in ("sales@example.com", "info@example.com"):
        assert add_alias(browser, team.support, address).status_code == 303
    raw = (
        b"From: Carla Customer <carla@customer.example>\r\n"
        b"To: sales@example.com\r\n"
        b"Cc: Info <INFO@example.com>, Dan <dan@customer.example>\r\n"
        b"Subject: Team question\r\n"
        b"Message-ID: <cc1@customer.example>\r\n\r\nHello all\r\n"
    )
    post_relay(client, raw)
    work_inbound(app)
    message = db.session.scalar(select(Message).where(Message.message_id == "cc1@customer.example"))
    assert message.inbox_id == team.support.id
    ours = OurAddresses()
    assert "sales@example.com" in ours and "Info@example.com" in ours
    assert "dan@customer.example" not in ours

    browser.login(team.bob)
    html = composer(browser.get(f"/conversations/{message.conversation_id}").get_data(as_text=True))
    cc = re.search(r'<input[^>]*name="cc"[^>]*>', html).group(0)
    assert 'value="dan@customer.example"' in cc
    to = re.search(r'<input[^>]*name="to"[^>]*>', html).group(0)
    assert "sales@" not in to and "info@" not in to.lower()
