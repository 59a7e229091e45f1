"""Archiving and deleting an inbox, and the admin pages around it: an archived inbox gets no
new mail (routing bounces it to the Inbound log with the reason, IMAP polling skips it), keeps
its conversations readable and can be unarchived; only an empty inbox can be deleted. Also the
inbox list's health column, the settings' tabs and the Inbound log's From/To/Subject search."""

from __future__ import annotations

import re
from email.message import EmailMessage

import pytest
from rq import Queue
from sqlalchemy import func, select

from extensions import db, get_redis, get_settings
from jobs.imap_poll import enqueue_due_imap_polls, poll_inbox
from mail.parse import parse_email
from models import Conversation, ImapSettings, InboundEmail, Inbox, InboxMember, Message, utcnow
from services.background import poll_job_id
from services.routing import route
from tests.support.inbound import post_relay, work_inbound
from tests.support.workspace import Browser, make_team

DOMAIN = "in.example.com"


@pytest.fixture
def app_config(app_config):
    return {**app_config, "MAILER_INBOUND_EMAIL_DOMAIN": DOMAIN}


@pytest.fixture
def team(app, inbox, make_user):
    return make_team(inbox, make_user)


@pytest.fixture
def admin(client, auth, team):
    return Browser(client, auth).login(team.ana)


def raw_email(message_id: str, *, to="support@example.com", subject="Printer on fire", **more):
    message = EmailMessage()
    message["From"] = "Carla Customer <carla@customer.example>"
    message["To"], message["Subject"] = to, subject
    message["Message-ID"] = f"<{message_id}>"
    for name, value in more.items():
        message[name.replace("_", "-")] = value
    message.set_content("It is still burning.\n")
    return message.as_bytes()


def inbound(message_id: str) -> InboundEmail:
    db.session.expire_all()
    return db.session.scalar(select(InboundEmail).where(InboundEmail.message_id == message_id))


def text(response) -> str:
    return response.get_data(as_text=True)


def archived(inbox: Inbox) -> bool:
    db.session.expire_all()
    return db.session.get(Inbox, inbox.id).archived_at is not None


# --- archive ------------------------------------------------------------------------------------


def test_mail_to_an_archived_inbox_is_bounced_kept_and_delivered_after_unarchiving(
    app, client, admin, team
):
    support = team.support
    post_relay(client, raw_email("before@customer.example"))
    work_inbound(app)
    first = inbound("before@customer.example")
    assert first.status == "delivered"
    conversation = db.session.scalars(select(Conversation)).one()

    response = admin.post(f"/admin/inboxes/{support.id}/archive", htmx=False)
    assert response.status_code == 303 and "section=archive" in response.headers["Location"]
    assert archived(support)

    for message_id, more in (
        ("after@customer.example", {}),  # to the support address
        ("answer@customer.example", {"In_Reply_To": "<before@customer.example>"}),
    ):
        post_relay(client, raw_email(message_id, **more))
    token_address = f"reply+{conversation.token}@{DOMAIN}"
    post_relay(client, raw_email("token@customer.example", to=token_address))
    forwarded_to = support.forwarding_address(DOMAIN)
    post_relay(client, raw_email("fwd@customer.example", to=forwarded_to))
    work_inbound(app)
    for message_id in ("after", "answer", "token", "fwd"):
        row = inbound(f"{message_id}@customer.example")
        assert row.status == "bounced" and row.inbox_id is None, (message_id, row.reason)
        assert "is archived" in row.reason, "the Inbound log says why"
        assert row.storage_key, "the raw message is kept: never lost"
    assert db.session.scalar(select(func.count(Message.id))) == 1
    # What routing says about it: the inbox by name, that it is archived, what to do.
    parsed = parse_email(raw_email("x@customer.example"), get_settings().attachment_max_bytes)
    refused = route(parsed)
    assert refused.inbox is None
    assert "“Support” (support@example.com) is archived" in refused.refusal
    assert "unarchive it" in refused.refusal

    # History stays readable, for the agent too.
    bob = admin.login(team.bob)
    assert bob.get(f"/conversations/{conversation.id}").status_code == 200

    ana = admin.login(team.ana)
    assert ana.post(f"/admin/inboxes/{support.id}/unarchive", htmx=False).status_code == 303
    assert not archived(support)
    row = inbound("after@customer.example")
    assert ana.post(f"/admin/inbound/{row.id}/reprocess").status_code == 200
    work_inbound(app)
    assert inbound("after@customer.example").status == "delivered"
    assert inbound("after@customer.example").inbox_id == support.id


def test_an_active_inbox_sharing_the_recipients_still_gets_the_mail(app, client, admin, team):
    admin.post(f"/admin/inboxes/{team.support.id}/archive", htmx=False)
    post_relay(
        client,
        raw_email("both@customer.example", to="support@example.com, billing@example.com"),
    )
    work_inbound(app)
    row = inbound("both@customer.example")
    assert row.status == "delivered" and row.inbox_id == team.billing.id


def test_archiving_needs_the_csrf_token_and_an_admin(admin, team):
    assert admin.post(f"/admin/inboxes/{team.support.id}/archive", csrf=False).status_code == 400
    bob = admin.login(team.bob)
    assert bob.post(f"/admin/inboxes/{team.support.id}/archive").status_code == 403
    assert not archived(team.support)


def test_an_archived_imap_inbox_is_not_polled_until_unarchived(app):
    inbox = Inbox(name="Mailbox", support_address="mailbox@example.com", mode="imap")
    inbox.imap = ImapSettings(host="imap.example.com", username="u", password="p")
    inbox.archived_at = utcnow()
    db.session.add(inbox)
    db.session.commit()

    assert enqueue_due_imap_polls() == 0
    assert poll_inbox(inbox.id) == "skipped"  # a poll queued before archiving does nothing
    assert db.session.get(ImapSettings, inbox.id).last_poll_at is None

    from services.inbox_archive import unarchive

    unarchive(inbox)
    assert enqueue_due_imap_polls() == 1
    queued = Queue("default", connection=get_redis()).get_job_ids()
    assert queued == [poll_job_id(inbox.id)]


def test_the_archive_tab_explains_and_offers_unarchive(admin, team):
    page = text(admin.get(f"/admin/inboxes/{team.support.id}/settings?section=archive"))
    assert "Archive this inbox" in page and "Delete this inbox" in page
    admin.post(f"/admin/inboxes/{team.support.id}/archive", htmx=False)
    page = text(admin.get(f"/admin/inboxes/{team.support.id}/settings?section=archive"))
    assert "Unarchive: receive mail again" in page and "Archived" in page
    listing = text(admin.get("/admin/inboxes"))
    row = re.search(rf'<tr id="inbox-{team.support.id}".*?</tr>', listing, re.S).group(0)
    assert "archived" in row
    health = text(admin.get(f"/admin/inboxes/{team.support.id}/health"))
    assert "Archived" in health and "Unarchive it" in health


# --- delete -------------------------------------------------------------------------------------


def test_an_empty_inbox_is_deleted_after_confirming(app, client, admin, team):
    billing = team.billing
    post_relay(client, raw_email("lost@customer.example", to="nobody@example.com"))
    work_inbound(app)
    row = inbound("lost@customer.example")
    row.inbox_id = billing.id  # e.g. an IMAP import that bounced
    db.session.commit()

    unconfirmed = admin.post(f"/admin/inboxes/{billing.id}/delete", htmx=False)
    assert unconfirmed.status_code == 422
    assert "Tick the box to confirm" in text(unconfirmed)
    assert db.session.get(Inbox, billing.id) is not None

    deleted = admin.post(f"/admin/inboxes/{billing.id}/delete", {"confirm": "y"}, htmx=False)
    assert deleted.status_code == 303 and deleted.headers["Location"].endswith("/admin/inboxes")
    db.session.expire_all()
    assert db.session.get(Inbox, billing.id) is None
    assert db.session.scalar(select(func.count(InboxMember.user_id))) == 1  # Bob's in Support
    assert inbound("lost@customer.example").inbox_id is None  # the log keeps the email
    assert "is deleted" in text(admin.get("/admin/inboxes"))


def test_an_inbox_with_conversations_cannot_be_deleted(app, client, admin, team):
    post_relay(client, raw_email("kept@customer.example"))
    work_inbound(app)
    page = text(admin.get(f"/admin/inboxes/{team.support.id}/settings?section=archive"))
    assert "has 1 conversation, so it cannot be deleted" in page
    assert "Delete this inbox" not in page
    refused = admin.post(f"/admin/inboxes/{team.support.id}/delete", {"confirm": "y"}, htmx=False)
    assert refused.status_code == 422 and "archive it instead" in text(refused)
    assert db.session.get(Inbox, team.support.id) is not None


# --- the list, the settings' tabs ---------------------------------------------------------------


def test_the_list_shows_each_inboxs_health_and_links_its_name(app, client, admin, team):
    post_relay(client, raw_email("hello@customer.example"))
    work_inbound(app)
    attention = Inbox(name="Mailbox", support_address="mailbox@example.com", mode="imap")
    attention.needs_attention = "IMAP sign-in failed: [AUTHENTICATIONFAILED]"
    db.session.add(attention)
    db.session.commit()
    page = text(admin.get("/admin/inboxes"))

    def row(inbox):
        return re.search(rf'<tr id="inbox-{inbox.id}".*?</tr>', page, re.S).group(0)

    assert ">OK</a>" in row(team.support) and "Forwarding" in row(team.support)
    assert ">never received</a>" in row(team.billing)
    assert ">needs attention</a>" in row(attention) and "IMAP/SMTP" in row(attention)
    link = f'<a class="inbox-name" href="/admin/inboxes/{team.support.id}/settings">Support</a>'
    assert link in row(team.support)
    assert f'href="/admin/inboxes/{team.support.id}/health"' in row(team.support)


def test_settings_show_one_section_and_only_the_modes_fields(admin, team):
    base = f"/admin/inboxes/{team.support.id}/settings"
    page = text(admin.get(base))
    assert 'id="settings-basics"' in page and 'id="settings-identity"' not in page
    assert re.search(r'<a href="[^"]*section=basics" aria-current="page">', page)
    assert page.count(">Save ") == 1
    forwarding = text(admin.get(base + "?section=connection"))
    assert re.search(r'<fieldset class="server mode-imap" id="imap-settings" hidden>', forwarding)
    assert '<fieldset class="server" id="smtp-settings">' in forwarding  # optional SMTP stays
    assert "Forwarding address and provider settings" in forwarding

    imap = Inbox(name="Mailbox", support_address="mailbox@example.com", mode="imap")
    imap.imap = ImapSettings(host="imap.example.com", username="u", password="p")
    db.session.add(imap)
    db.session.commit()
    page = text(admin.get(f"/admin/inboxes/{imap.id}/settings?section=connection"))
    assert '<fieldset class="server mode-imap" id="imap-settings">' in page
    assert '<div class="mode-forwarding" hidden>' in page
    # Choosing IMAP on a forwarding inbox and saving without servers shows the IMAP fields.
    switched = admin.post(base, {"section": "connection", "mode": "imap"}, htmx=False)
    assert switched.status_code == 422
    assert '<fieldset class="server mode-imap" id="imap-settings">' in text(switched)
    assert "Enter the IMAP server" in text(switched)


# --- the Inbound log ----------------------------------------------------------------------------


def test_the_inbound_log_shows_from_to_subject_and_searches_them(app, client, admin, team):
    post_relay(client, raw_email("one@customer.example", subject="Printer on fire"))
    post_relay(
        client, raw_email("two@customer.example", to="nobody@example.com", subject="Lost mail")
    )
    work_inbound(app)
    page = text(admin.get("/admin/inbound"))
    delivered = re.search(
        r'<tr id="inbound-\d+" class="inbound-row status-delivered".*?</tr>', page, re.S
    )
    assert "carla@customer.example" in delivered.group(0)
    assert "support@example.com" in delivered.group(0) and "Printer on fire" in delivered.group(0)
    bounced = re.search(
        r'<tr id="inbound-\d+" class="inbound-row status-bounced".*?</tr>', page, re.S
    )
    # Stored on its row when accepted: it became no message.
    assert "Lost mail" in bounced.group(0) and "nobody@example.com" in bounced.group(0)
    assert "carla@customer.example" in bounced.group(0)

    found = text(admin.get("/admin/inbound?q=printer"))
    assert "Printer on fire" in found and "Lost mail" not in found
    assert 'value="printer"' in found
    found = text(admin.get("/admin/inbound?q=nobody%40example.com"))  # the bounce reason
    assert "Lost mail" in found and "Printer on fire" not in found
    assert "matching “no such thing”" in text(admin.get("/admin/inbound?q=no+such+thing"))
    fragment = text(admin.get("/admin/inbound?q=CARLA", htmx=True))
    assert "<html" not in fragment and "Printer on fire" in fragment
    # LIKE wildcards are searched for literally.
    assert "Printer on fire" not in text(admin.get("/admin/inbound?q=%25"))
