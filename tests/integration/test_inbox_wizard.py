"""The admin inbox wizard and inbox settings, through the real pages: every step and its
validation, connection tests against a live Dovecot and a real aiosmtpd server, and a test
email followed all the way to a conversation."""

from __future__ import annotations

import base64
import html
import json
import re
import time

import pytest
from sqlalchemy import select

from extensions import db, get_redis
from models import Inbox, InboxMember, User
from models.inboxes import ImapSettings, SmtpSettings
from tests.conftest import TEST_INGRESS_PASSWORD, csrf_token_from
from tests.support.inbound import post_relay, work_inbound
from tests.support.smtp_server import running_smtp_server

DOMAIN = "in.example.com"
HTMX = {"HX-Request": "true"}


@pytest.fixture
def app_config(app_config, extra_settings):
    config = {**app_config, "MAILER_INBOUND_EMAIL_DOMAIN": DOMAIN, **extra_settings}
    return {k: v for k, v in config.items() if v is not None}


@pytest.fixture
def admin(app, make_user, auth):
    user = make_user(email="root@example.com", name="Rita Admin", role="admin")
    auth.login(user.email, user.plain_password)
    return user


@pytest.fixture
def csrf(client, admin) -> str:
    return csrf_token_from(client.get("/admin/inboxes").get_data(as_text=True))


@pytest.fixture
def smtp():
    with running_smtp_server("agent", "smtp-secret") as server:
        yield server


class Wizard:
    """Opening the wizard writes nothing; its first POST (step 1) starts the draft, whose
    address the helper then reads from the answer."""

    def __init__(self, client, csrf):
        self.client, self.csrf = client, csrf
        response = client.get("/admin/inboxes/new")
        assert response.status_code == 200 and "Step 1 of 6" in text(response)
        self.base = self.draft_id = None

    def start(self, name="Help", address="help@example.com"):
        location(self.post("name", {"name": name, "support_address": address}))

    def get(self, step: str):
        return self.client.get(f"{self.base}/{step}")

    def post(self, step: str, data: dict | None = None, go="next", htmx=False):
        form = {"csrf_token": self.csrf, "go": go, **(data or {})}
        headers = HTMX if htmx else {}
        url = f"{self.base}/{step}" if self.base else "/admin/inboxes/new"
        assert self.base or step == "name", "the wizard starts with step 1"
        response = self.client.post(url, data=form, headers=headers)
        if self.base is None:
            self.learn_draft(response)
        return response

    def learn_draft(self, response) -> None:
        """Where the draft lives: the redirect, or the form action of the step swapped in."""
        if response.status_code == 303:
            self.base = response.headers["Location"].rsplit("/", 1)[0]
        else:
            match = re.search(r'action="(/admin/inboxes/new/[^/"]+)/', text(response))
            self.base = match.group(1) if match else None
        if self.base:
            self.draft_id = self.base.rsplit("/", 1)[1]

    def test(self, which: str, data: dict):
        form = {"csrf_token": self.csrf, **data}
        return self.client.post(f"{self.base}/test/{which}", data=form, headers=HTMX)


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def location(response) -> str:
    assert response.status_code == 303, text(response)
    return response.headers["Location"]


@pytest.fixture
def wizard(client, csrf) -> Wizard:
    return Wizard(client, csrf)


def imap_fields(dovecot, username, password, **extra) -> dict:
    fields = {
        "imap_host": "127.0.0.1",
        "imap_port": str(dovecot.port),
        "imap_security": "none",
        "imap_username": username,
        "imap_password": password,
        "imap_folders": "INBOX",
        "imap_poll_interval": "60",
        "imap_after_import": "leave",
    }
    return {**fields, **extra}


def smtp_fields(server, password="smtp-secret", **extra) -> dict:
    fields = {
        "smtp_host": server.host,
        "smtp_port": str(server.port),
        "smtp_security": "none",
        "smtp_auth_method": "login",
        "smtp_username": "agent",
        "smtp_password": password,
    }
    return {**fields, **extra}


IDENTITY = {
    "sender_name_style": "agent_from_inbox",
    "reply_to_style": "continuity",
    "signature": "The Support team",
    "subject_threading": "1",
}


# --- access and the list --------------------------------------------------------------------


def test_agents_cannot_open_any_inbox_admin_page(app, client, make_user, auth):
    inbox = Inbox(name="Support", support_address="support@example.com")
    db.session.add(inbox)
    db.session.commit()
    agent = make_user(email="ana@example.com")
    auth.login(agent.email, agent.plain_password)
    for url in ("/admin/inboxes", "/admin/inboxes/new", f"/admin/inboxes/{inbox.id}/settings"):
        assert client.get(url).status_code == 403, url
    assert client.get(f"/admin/inboxes/{inbox.id}/test").status_code == 403


def test_list_shows_mode_members_attention_and_links(client, admin):
    inbox = Inbox(name="Billing", support_address="billing@example.com", mode="imap")
    inbox.needs_attention = "IMAP login failed: [AUTHENTICATIONFAILED]"
    inbox.members = [InboxMember(user_id=admin.id)]
    db.session.add(inbox)
    db.session.commit()
    page = text(client.get("/admin/inboxes"))
    assert "Billing" in page and "billing@example.com" in page and "IMAP/SMTP" in page
    assert "needs attention" in page and "[AUTHENTICATIONFAILED]" in page
    assert re.search(r"<td>1</td>", page)
    assert f"/admin/inboxes/{inbox.id}/settings" in page
    assert 'href="/admin/inboxes/new"' in page


# --- step 1: name and address -----------------------------------------------------------------


def test_name_step_explains_each_problem(wizard):
    response = wizard.post("name", {"name": "", "support_address": "not-an-address"})
    assert response.status_code == 422
    page = text(response)
    assert "Give the inbox a name" in page
    assert "Enter the address customers write to" in page
    assert 'value="not-an-address"' in page  # what was typed stays


def test_support_address_must_be_unique(wizard):
    db.session.add(Inbox(name="Support", support_address="support@example.com"))
    db.session.commit()
    response = wizard.post("name", {"name": "Help", "support_address": "Support@Example.com"})
    assert response.status_code == 422
    assert "support@example.com is already the address of the inbox “Support”" in text(response)


def test_htmx_gets_the_step_alone_and_the_next_url_pushed(wizard):
    response = wizard.post(
        "name", {"name": "Help", "support_address": "help@example.com"}, htmx=True
    )
    assert response.status_code == 200
    assert response.headers["HX-Push-Url"] == f"{wizard.base}/mode"
    page = text(response)
    assert "<html" not in page and 'id="wizard"' in page and "Connection mode" in page
    invalid = wizard.post("name", {"name": "", "support_address": "x"}, htmx=True)
    assert invalid.status_code == 422 and "<html" not in text(invalid)


def test_back_and_next_keep_what_was_typed(wizard):
    assert location(wizard.post("name", {"name": "Help", "support_address": "help@example.com"}))
    # Going back saves the current step unvalidated, so nothing typed is lost.
    back = wizard.post("mode", {"mode": "imap"}, go="back")
    assert location(back).endswith("/name")
    page = text(wizard.get("name"))
    assert 'value="Help"' in page and 'value="help@example.com"' in page
    assert re.search(r'value="imap" checked', text(wizard.get("mode")))


def test_mode_step_explains_both_modes_and_requires_one(wizard):
    wizard.start()
    page = text(wizard.get("mode"))
    assert "Forwarding" in page and "IMAP/SMTP" in page and "fetches new mail" in page
    response = wizard.post("mode", {"mode": "carrier-pigeon"})
    assert response.status_code == 422 and "Choose Forwarding or IMAP/SMTP." in text(response)


def test_drafts_belong_to_their_admin(wizard):
    wizard.start()
    key = f"threadline:inbox-draft:{wizard.draft_id}"
    draft = json.loads(get_redis().get(key))
    get_redis().set(key, json.dumps({**draft, "user_id": draft["user_id"] + 1}))
    response = wizard.get("name")
    assert response.status_code == 404 and "expired or is not yours" in text(response)


# --- step 3: forwarding ------------------------------------------------------------------------


def walk_to_forwarding(wizard) -> str:
    location(wizard.post("name", {"name": "Help", "support_address": "help@example.com"}))
    assert location(wizard.post("mode", {"mode": "forwarding"})).endswith("/forwarding")
    return text(wizard.get("forwarding"))


def test_forwarding_walkthrough_creates_the_inbox_it_showed(client, wizard, admin, make_user):
    agent = make_user(email="ana@example.com", name="Ana Agent")
    page = walk_to_forwarding(wizard)
    address = re.search(r'id="forwarding-address" readonly value="([0-9a-f]{32}@[^"]+)"', page)
    assert address and address.group(1).endswith("@" + DOMAIN)
    assert "Copy" in page
    assert "http://localhost/rails/action_mailbox/relay/inbound_emails" in page
    assert location(wizard.post("forwarding")).endswith("/identity")
    assert location(wizard.post("identity", IDENTITY)).endswith("/agents")
    page = text(wizard.get("agents"))
    assert "Ana Agent" in page and "Rita Admin" in page
    created = location(wizard.post("agents", {"member_ids": [str(agent.id)]}))
    inbox = db.session.scalar(select(Inbox).where(Inbox.support_address == "help@example.com"))
    assert created.endswith(f"/admin/inboxes/{inbox.id}/test")
    assert inbox.forwarding_address(DOMAIN) == address.group(1)
    assert (inbox.name, inbox.mode, inbox.signature) == ("Help", "forwarding", "The Support team")
    assert inbox.subject_threading and not inbox.auto_assign
    assert [m.user_id for m in inbox.members] == [agent.id]
    assert inbox.imap is None and inbox.smtp is None
    assert get_redis().get(f"threadline:inbox-draft:{wizard.draft_id}") is None


def test_auto_assignment_needs_an_agent(wizard):
    walk_to_forwarding(wizard)
    location(wizard.post("identity", {**IDENTITY, "auto_assign": "1"}))
    response = wizard.post("agents", {})
    assert response.status_code == 422
    assert "Auto-assignment is on, so choose at least one agent" in text(response)
    assert db.session.scalar(select(Inbox)) is None


PROVIDERS = {
    "INBOUND_EMAIL_SERVICE": "relay,postmark,sendgrid,mailgun,mandrill",
    "MAILGUN_INGRESS_SIGNING_KEY": "mailgun-key",
    "MANDRILL_INGRESS_API_KEY": "mandrill-key",
    "APP_URL": "https://help.example.com",
}


@pytest.mark.parametrize("extra_settings", [PROVIDERS], indirect=True)
def test_forwarding_step_gives_each_providers_exact_url_and_ticks(wizard):
    page = walk_to_forwarding(wizard).replace("&#34;", '"')
    base = "https://help.example.com/rails/action_mailbox"
    secret = f"https://actionmailbox:{TEST_INGRESS_PASSWORD}@help.example.com/rails/action_mailbox"
    assert f'value="{base}/relay/inbound_emails"' in page
    assert f'value="{secret}/postmark/inbound_emails"' in page
    assert f'value="{secret}/sendgrid/inbound_emails"' in page
    assert f'value="{base}/mailgun/inbound_emails/mime"' in page
    assert f'value="{base}/mandrill/inbound_emails"' in page
    assert "Include raw email content in JSON payload" in page
    assert "Post the raw, full MIME message" in page
    assert f'forward("{base}/mailgun/inbound_emails/mime")' in page
    assert "APP_URL is" not in page


def _postal_key() -> str:
    """A public key as Postal shows it (its DKIM record's p= value)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    der = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return base64.b64encode(der).decode()


NEWER_PROVIDERS = {
    "INBOUND_EMAIL_SERVICE": "ses,postal,sparkpost,mailersend,mailjet,brevo,resend",
    "SES_TOPIC_ARNS": "arn:aws:sns:eu-west-1:123456789012:threadline",
    "POSTAL_INGRESS_PUBLIC_KEY": _postal_key(),
    "SPARKPOST_INGRESS_TOKEN": "token",
    "MAILERSEND_INGRESS_SIGNING_SECRET": "secret",
    "RESEND_INGRESS_SIGNING_SECRET": "whsec_c2VjcmV0",
    "RESEND_API_KEY": "re_key",
    "APP_URL": "https://help.example.com",
}


@pytest.mark.parametrize("extra_settings", [NEWER_PROVIDERS], indirect=True)
def test_forwarding_step_covers_the_newer_providers(wizard):
    page = walk_to_forwarding(wizard).replace("&#34;", '"')
    base = "https://help.example.com/rails/action_mailbox"
    secret = f"https://actionmailbox:{TEST_INGRESS_PASSWORD}@help.example.com/rails/action_mailbox"
    for name in ("ses", "postal", "sparkpost", "mailersend", "resend"):
        assert f'value="{base}/{name}/inbound_emails"' in page
    for name in ("mailjet", "brevo"):
        assert f'value="{secret}/{name}/inbound_emails"' in page
    assert "Amazon SES (through an SNS topic)" in page and "Threadline confirms it" in page
    assert "postal default-dkim-record" in page
    assert "auth_token set to SPARKPOST_INGRESS_TOKEN" in page
    assert "MAILERSEND_INGRESS_SIGNING_SECRET" in page
    assert "X-Threadline-Rebuilt: mailjet" in page and "X-Threadline-Rebuilt: brevo" in page
    assert "event email.received" in page


@pytest.mark.parametrize("extra_settings", [{"MAILER_INBOUND_EMAIL_DOMAIN": None}], indirect=True)
def test_missing_inbound_domain_is_explained(wizard):
    page = walk_to_forwarding(wizard)
    assert "MAILER_INBOUND_EMAIL_DOMAIN is not set" in page
    assert "MAILER_INBOUND_EMAIL_DOMAIN=mail.yourcompany.com" in page
    assert 'id="forwarding-address"' not in page
    assert "APP_URL is <code>http://localhost</code>" in page


# --- step 4: IMAP and SMTP, against real servers ----------------------------------------------


def forgive(dovecot, username: str, password: str) -> None:
    """Dovecot delays every login from an IP after a failed one, longer with each failure,
    until one succeeds: sign in once so later tests (ours and other modules') are not slowed."""
    dovecot.client(username, password).logout()


def walk_to_connection(wizard, address="imap@example.com") -> None:
    location(wizard.post("name", {"name": "Mailbox", "support_address": address}))
    assert location(wizard.post("mode", {"mode": "imap"})).endswith("/connection")


def test_imap_test_lists_the_servers_folders(wizard, dovecot, imap_account):
    username, password = imap_account
    dovecot.append(username, password, b"Subject: x\r\n\r\nhi\r\n", folder="Support")
    walk_to_connection(wizard)
    response = wizard.test("imap", imap_fields(dovecot, username, password))
    assert response.status_code == 200
    page = text(response)
    assert f"Signed in to 127.0.0.1:{dovecot.port} (none) as {username}; 2 folders found." in page
    assert 'id="imap-folders" hx-swap-oob="true"' in page
    assert 'value="INBOX" checked' in page and 'value="Support">' in page


def test_imap_test_gives_the_servers_words_on_a_wrong_password(wizard, dovecot, imap_account):
    username, password = imap_account
    walk_to_connection(wizard)
    page = text(wizard.test("imap", imap_fields(dovecot, username, "wrong")))
    forgive(dovecot, username, password)
    assert "IMAP test failed" in page and "refused the sign-in" in page
    assert "[AUTHENTICATIONFAILED] Authentication failed." in page
    assert "app password" in page and "hx-swap-oob" not in page


def test_imap_test_on_a_tls_server_with_an_unknown_certificate(wizard, dovecot_tls):
    walk_to_connection(wizard)
    fields = imap_fields(dovecot_tls, "probe@example.com", "probe-password", imap_security="ssl")
    page = text(wizard.test("imap", fields))
    assert "TLS with 127.0.0.1" in page and "CERTIFICATE_VERIFY_FAILED" in page


def test_test_buttons_say_what_is_missing_first(wizard):
    walk_to_connection(wizard)
    page = text(wizard.test("imap", {"imap_port": "99999", "imap_security": "ssl"}))
    assert "Fill in first:" in page and "IMAP server's host name" in page and "port" in page


def test_nothing_is_saved_with_a_failing_test_unless_overridden(
    wizard, dovecot, imap_account, smtp
):
    username, password = imap_account
    walk_to_connection(wizard)
    fields = {**imap_fields(dovecot, username, "wrong"), **smtp_fields(smtp)}
    refused = wizard.post("connection", fields)
    forgive(dovecot, username, password)
    assert refused.status_code == 422
    page = text(refused)
    assert "[AUTHENTICATIONFAILED]" in page and 'name="imap_override"' in page
    assert "wrong" not in re.findall(r'name="imap_password"[^>]*>', page)[0]
    # The typed password is kept (encrypted) in the draft: the override needs no retyping.
    raw = get_redis().get(f"threadline:inbox-draft:{wizard.draft_id}")
    assert b"wrong" not in raw and b"smtp-secret" not in raw
    fields.pop("imap_password")
    overridden = wizard.post("connection", {**fields, "imap_override": "1"})
    assert location(overridden).endswith("/identity")
    location(wizard.post("identity", IDENTITY))
    location(wizard.post("agents", {}))
    inbox = db.session.scalar(select(Inbox).where(Inbox.support_address == "imap@example.com"))
    assert inbox.mode == "imap" and inbox.imap.password == "wrong"
    assert inbox.imap.username == username and inbox.imap.folder_list == ["INBOX"]
    assert inbox.smtp.password == "smtp-secret" and inbox.smtp.auth_method == "login"
    assert inbox.reply_to_style == "continuity"


def test_imap_inbox_with_good_servers_and_a_folder_that_does_not_exist(
    wizard, dovecot, imap_account, smtp
):
    username, password = imap_account
    walk_to_connection(wizard)
    smtp_missing = wizard.post("connection", imap_fields(dovecot, username, password))
    assert smtp_missing.status_code == 422
    assert "Replies need an SMTP server" in text(smtp_missing)
    fields = {**imap_fields(dovecot, username, password), **smtp_fields(smtp)}
    no_folder = wizard.post("connection", {**fields, "imap_folders": "INBOX\nArchive"})
    assert no_folder.status_code == 422
    assert "The server has no folder Archive; it has INBOX." in text(no_folder)
    since = {"imap_import_since": "2024-01-02", "imap_after_import": "move"}
    move_without_folder = wizard.post("connection", {**fields, **since})
    assert "Name the folder imported messages move to." in text(move_without_folder)
    since["imap_move_to_folder"] = "Done"
    assert location(wizard.post("connection", {**fields, **since})).endswith("/identity")
    # IMAP inboxes answer from their own address unless the admin picks otherwise.
    assert re.search(r'value="inbox" checked', text(wizard.get("identity")))
    location(wizard.post("identity", {**IDENTITY, "reply_to_style": "inbox"}))
    location(wizard.post("agents", {}))
    imap = db.session.scalar(select(ImapSettings))
    assert (imap.host, imap.port, imap.security) == ("127.0.0.1", dovecot.port, "none")
    assert imap.after_import == "move" and imap.move_to_folder == "Done"
    assert imap.import_since.date().isoformat() == "2024-01-02"
    assert imap.enabled and imap.next_poll_at is None


def test_smtp_test_against_a_real_server(wizard, smtp):
    walk_to_connection(wizard)
    page = text(wizard.test("smtp", smtp_fields(smtp)))
    assert f"Connected to {smtp.address} (no TLS), signed in as agent." in page
    assert smtp.logins == ["agent"]
    page = text(wizard.test("smtp", smtp_fields(smtp, password="nope")))
    assert f"{smtp.address} refused the login: 535 5.7.8 Authentication credentials invalid" in page
    page = text(wizard.test("smtp", smtp_fields(smtp, smtp_security="starttls")))
    assert "does not offer STARTTLS" in page


def test_smtp_test_on_a_closed_port(wizard):
    from tests.support.dovecot import free_port

    walk_to_connection(wizard)
    fields = {
        "smtp_host": "127.0.0.1",
        "smtp_port": str(free_port()),
        "smtp_security": "none",
        "smtp_auth_method": "none",
    }
    page = text(wizard.test("smtp", fields))
    assert "cannot talk to 127.0.0.1" in page and "Connection refused" in page


def test_test_buttons_work_without_javascript(wizard, smtp):
    walk_to_connection(wizard)
    response = wizard.post("connection", smtp_fields(smtp), go="test_smtp")
    assert response.status_code == 200
    assert "signed in as agent" in text(response) and "<html" in text(response)


# --- step 7: the test email ---------------------------------------------------------------------


def make_inbox(**fields) -> Inbox:
    inbox = Inbox(name="Support", support_address="support@example.com", **fields)
    db.session.add(inbox)
    db.session.commit()
    return inbox


def poll_url(page: str) -> str:
    match = re.search(r'hx-get="(/admin/inboxes/\d+/test/[^"]+)" hx-trigger="every 2s"', page)
    assert match, page
    return match.group(1)


def test_inject_sample_waits_for_the_worker_then_links_the_conversation(client, csrf, app):
    inbox = make_inbox()
    page = text(client.get(f"/admin/inboxes/{inbox.id}/test"))
    assert "no outbound path yet" in page and "Send a test email</button>" not in page
    response = client.post(f"/admin/inboxes/{inbox.id}/test/inject", data={"csrf_token": csrf})
    assert response.status_code == 200
    page = text(response)
    assert "waiting for a background worker" in page
    url = poll_url(page)
    still = text(client.get(url))
    assert "every 2s" in still and "<html" not in still
    work_inbound(app)
    done = text(client.get(url))
    assert "every 2s" not in done  # the fragment stops polling
    link = re.search(
        r'href="/conversations/(\d+)">Open conversation #\d+: Threadline setup test', done
    )
    assert link, done
    assert client.get(f"/conversations/{link.group(1)}").status_code == 200


def test_send_test_email_goes_out_through_the_inboxs_smtp(client, csrf, app, smtp):
    inbox = make_inbox()
    inbox.smtp = SmtpSettings(
        host=smtp.host, port=smtp.port, security="none", username="agent", password="smtp-secret"
    )
    db.session.commit()
    page = text(client.get(f"/admin/inboxes/{inbox.id}/test"))
    assert f"the inbox's SMTP server {smtp.host}:{smtp.port}" in page
    response = client.post(f"/admin/inboxes/{inbox.id}/test/send", data={"csrf_token": csrf})
    assert response.status_code == 200, text(response)
    url = poll_url(text(response))
    envelope = smtp.wait_for_messages(1)[0]
    assert envelope.rcpt_tos == ["support@example.com"]
    token = url.rsplit("/", 1)[1]
    assert f"Subject: Threadline setup test {token}".encode() in envelope.content
    # The provider forwards it to the ingress; a worker makes it a conversation.
    post_relay(client, envelope.content)
    work_inbound(app)
    assert "Open conversation #" in text(client.get(url))


def test_send_failure_and_timeout_explain_what_to_check(client, csrf):
    from tests.support.dovecot import free_port

    inbox = make_inbox()
    inbox.smtp = SmtpSettings(host="127.0.0.1", port=free_port(), security="none")
    inbox.smtp.auth_method = "none"
    db.session.commit()
    response = client.post(f"/admin/inboxes/{inbox.id}/test/send", data={"csrf_token": csrf})
    assert response.status_code == 422
    assert "The test email was not sent" in text(response)
    stale = f"{int(time.time()) - 300}.abcdef123456"
    page = text(client.get(f"/admin/inboxes/{inbox.id}/test/{stale}"))
    assert "Nothing showed up as a conversation after 5 minutes" in page
    assert "forwards the support address" in page and "every 2s" not in page


# --- settings ----------------------------------------------------------------------------------


def settings_post(client, csrf, inbox, section, data, htmx=False):
    form = {"csrf_token": csrf, "section": section, "go": "save", **data}
    return client.post(
        f"/admin/inboxes/{inbox.id}/settings", data=form, headers=HTMX if htmx else {}
    )


def test_settings_use_the_wizards_validation(client, csrf, admin):
    inbox = make_inbox()
    other = Inbox(name="Billing", support_address="billing@example.com")
    db.session.add(other)
    db.session.commit()
    page = text(client.get(f"/admin/inboxes/{inbox.id}/settings"))
    assert 'value="support@example.com"' in page and f"@{DOMAIN}" in page
    taken = settings_post(
        client,
        csrf,
        inbox,
        "basics",
        {"name": "S", "support_address": "billing@example.com"},
        htmx=True,
    )
    assert taken.status_code == 422
    assert "already the address of the inbox “Billing”" in text(taken)
    assert 'id="settings-basics"' in text(taken) and "<html" not in text(taken)
    renamed = settings_post(
        client,
        csrf,
        inbox,
        "basics",
        {"name": "Helpdesk", "support_address": "support@example.com"},
    )
    assert renamed.status_code == 200 and "Saved." in text(renamed)
    identity = settings_post(
        client, csrf, inbox, "identity", {**IDENTITY, "sender_name_style": "x"}
    )
    assert identity.status_code == 422
    settings_post(client, csrf, inbox, "identity", {**IDENTITY, "auto_assign": "1"})
    no_agents = settings_post(client, csrf, inbox, "agents", {})
    assert "Auto-assignment is on" in text(no_agents)
    settings_post(client, csrf, inbox, "agents", {"member_ids": [str(admin.id)]})
    db.session.refresh(inbox)
    assert inbox.name == "Helpdesk" and inbox.auto_assign
    assert [m.user_id for m in inbox.members] == [admin.id]


def test_settings_keep_passwords_when_blank_and_never_show_them(
    client, csrf, dovecot, imap_account, smtp
):
    username, password = imap_account
    inbox = make_inbox(mode="imap", needs_attention="IMAP login failed: [AUTHENTICATIONFAILED]")
    inbox.imap = ImapSettings(
        host="127.0.0.1",
        port=dovecot.port,
        security="none",
        username=username,
        password=password,
        consecutive_failures=4,
    )
    inbox.smtp = SmtpSettings(
        host=smtp.host, port=smtp.port, security="none", username="agent", password="smtp-secret"
    )
    db.session.commit()
    page = text(client.get(f"/admin/inboxes/{inbox.id}/settings?section=connection"))
    assert password not in page and "smtp-secret" not in page
    assert page.count("A password is saved. Leave this empty to keep it.") == 2
    # The settings page's test buttons use the stored passwords when the fields are blank.
    tested = client.post(
        f"/admin/inboxes/{inbox.id}/settings/test/imap",
        data={"csrf_token": csrf, **imap_fields(dovecot, username, "")},
        headers=HTMX,
    )
    assert "Signed in to" in text(tested)
    fields = {"mode": "imap", **imap_fields(dovecot, username, ""), **smtp_fields(smtp, "")}
    fields["imap_poll_interval"] = "120"
    saved = settings_post(client, csrf, inbox, "connection", fields)
    assert saved.status_code == 200, text(saved)
    assert password not in text(saved) and "smtp-secret" not in text(saved)
    db.session.refresh(inbox)
    assert inbox.imap.password == password and inbox.smtp.password == "smtp-secret"
    assert inbox.imap.poll_interval_seconds == 120
    # Saving resumes polling: the poller skips inboxes that need attention.
    assert inbox.needs_attention is None and inbox.imap.consecutive_failures == 0
    assert inbox.imap.next_poll_at is None
    wrong = settings_post(client, csrf, inbox, "connection", {**fields, "imap_password": "bad"})
    forgive(dovecot, username, password)
    assert wrong.status_code == 422 and "[AUTHENTICATIONFAILED]" in text(wrong)
    db.session.refresh(inbox)
    assert inbox.imap.password == password


def test_settings_switch_back_to_forwarding(client, csrf, dovecot, imap_account):
    username, password = imap_account
    inbox = make_inbox(mode="imap")
    inbox.imap = ImapSettings(
        host="127.0.0.1", port=dovecot.port, security="none", username=username, password=password
    )
    db.session.commit()
    saved = settings_post(client, csrf, inbox, "connection", {"mode": "forwarding"})
    assert saved.status_code == 200, text(saved)
    db.session.refresh(inbox)
    assert inbox.mode == "forwarding" and not inbox.imap.enabled and inbox.smtp is None


def test_users_offered_as_agents_are_the_active_ones(wizard, make_user):
    gone = make_user(email="gone@example.com", name="Gone Person")
    gone.active = False
    db.session.commit()
    walk_to_forwarding(wizard)
    assert "Gone Person" not in text(wizard.get("agents"))
    location(wizard.post("identity", IDENTITY))
    response = wizard.post("agents", {"member_ids": [str(gone.id)]})
    assert response.status_code == 422 and "deactivated" in text(response)
    assert db.session.scalar(select(User).where(User.email == "gone@example.com")).active is False
