"""The sender verdict through the path a message takes: the relay ingress, the inbound job
(DKIM checked through the session's DNS stand-in, DNS_RESOLVER), the thread page's badge and
banner, and the API (issue 21). And a delivery report from the empty sender: in the
conversation of the email it names, else bounced with a reason that says so."""

from __future__ import annotations

import dkim
import pytest
from sqlalchemy import select

from extensions import db
from models import InboundEmail, Message
from tests.support import inbound
from tests.support.dkim_keys import key_record, new_key
from tests.support.workspace import Browser, make_team

TRUSTED = "mx.ours.test"
KEY_NAME = "sel._domainkey.example.com"


def message(number: int, extra: bytes = b"") -> bytes:
    return (
        extra + b"From: Ann Example <ann@example.com>\r\n"
        b"To: support@example.com\r\n"
        b"Subject: Please change my bank account\r\n"
        b"Date: Tue, 01 Dec 2026 09:00:00 +0000\r\n"
        b"Message-ID: <verdict-%d@example.com>\r\n"
        b"\r\n"
        b"Please pay refunds to my new account from now on.\r\n" % number
    )


@pytest.fixture(scope="module")
def key() -> tuple[bytes, str]:
    return new_key()


@pytest.fixture
def app_config(app_config):
    return {**app_config, "TRUSTED_AUTHSERV_IDS": TRUSTED}


@pytest.fixture
def bob(client, auth, inbox, make_user):
    team = make_team(inbox, make_user)
    browser = Browser(client, auth).login(team.bob)
    browser.token = team.bob.token
    return browser


def arrive(app, client, raw: bytes, connection: dict | None = None) -> Message:
    """Through the relay ingress (with the relay command's X-Threadline-* connection headers,
    if given) and the worker."""
    if connection is None:
        inbound.post_relay(client, raw)
    else:
        headers = {**inbound.RELAY_HEADERS, **connection}
        response = client.post(inbound.RELAY_URL, data=raw, headers=headers)
        assert response.status_code == 204, response.get_data(as_text=True)
    inbound.work_inbound(app)
    db.session.expire_all()
    message_id = raw.split(b"Message-ID: <", 1)[1].split(b">", 1)[0].decode()
    stored = db.session.scalar(select(Message).where(Message.message_id == message_id))
    assert stored is not None
    return stored


def shown(bob, client, stored: Message) -> tuple[str, dict]:
    """The thread page's HTML and the API's JSON of the message."""
    page = bob.get(f"/conversations/{stored.conversation_id}").get_data(as_text=True)
    response = client.get(
        f"/api/v1/conversations/{stored.conversation_id}",
        headers={"Authorization": f"Bearer {bob.token}"},
    )
    data = next(m for m in response.get_json()["messages"] if m["id"] == stored.id)
    return page, data


def test_a_signed_email_is_a_verified_sender_in_the_thread_and_the_api(
    app, client, bob, key, dns_records
):
    dns_records[KEY_NAME] = [key_record(key)]
    raw = message(1)
    signed = dkim.sign(raw, b"sel", b"example.com", key[0]) + raw
    stored = arrive(app, client, signed)
    page, data = shown(bob, client, stored)
    assert data["sender_verdict"]["status"] == "verified"
    assert data["sender_verdict"]["dkim"] == "pass"
    assert data["sender_verdict"]["dkim_domain"] == "example.com"
    assert ">verified sender</span>" in page and "msg-spoof-warning" not in page


def test_a_body_changed_after_signing_is_unverified(app, client, bob, key, dns_records):
    dns_records[KEY_NAME] = [key_record(key)]
    raw = message(2)
    signed = dkim.sign(raw, b"sel", b"example.com", key[0]) + raw
    tampered = signed.replace(b"new account", b"other account")
    stored = arrive(app, client, tampered)
    page, data = shown(bob, client, stored)
    assert data["sender_verdict"]["status"] == "unverified"
    assert data["sender_verdict"]["dkim"] == "fail"
    assert ">unverified</span>" in page and "msg-spoof-warning" not in page


def test_an_unsigned_email_is_unverified(app, client, bob, dns_records):
    stored = arrive(app, client, message(3))
    _page, data = shown(bob, client, stored)
    assert data["sender_verdict"]["status"] == "unverified"
    assert data["sender_verdict"]["dkim"] == "none"


def test_failed_dmarc_under_p_reject_from_a_trusted_server_warns_the_agent(
    app, client, bob, dns_records
):
    dns_records["_dmarc.example.com"] = ["v=DMARC1; p=reject"]
    results = (
        b"Authentication-Results: mx.ours.test; spf=fail smtp.mailfrom=example.com; "
        b"dkim=none; dmarc=fail header.from=example.com\r\n"
    )
    stored = arrive(app, client, message(4, results))
    page, data = shown(bob, client, stored)
    assert data["sender_verdict"]["status"] == "failed_dmarc"
    assert data["sender_verdict"]["dmarc_policy"] == "reject"
    assert "failed DMARC — may be spoofed" in page
    assert 'class="msg-spoof-warning" role="alert"' in page
    assert "This email may not be from ann@example.com." in page


def test_the_same_results_from_an_untrusted_server_change_nothing(app, client, bob, dns_records):
    dns_records["_dmarc.example.com"] = ["v=DMARC1; p=reject"]
    forged = (
        b"Authentication-Results: mx.elsewhere.test; spf=pass smtp.mailfrom=example.com; "
        b"dmarc=pass header.from=example.com\r\n"
    )
    stored = arrive(app, client, message(5, forged))
    _page, data = shown(bob, client, stored)
    assert data["sender_verdict"]["status"] == "unverified"
    assert data["sender_verdict"]["dmarc"] is None


REPORT = (
    b"From: Mail Delivery System <>\r\n"
    b"To: support@example.com\r\n"
    b"Subject: Undelivered Mail Returned to Sender\r\n"
    b"Message-ID: <report-%d@mx.example.net>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n'
    b"\r\n"
    b"--b\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"Your message could not be delivered.\r\n"
    b"--b\r\n"
    b"Content-Type: message/delivery-status\r\n"
    b"\r\n"
    b"Reporting-MTA: dns; mx.example.net\r\n"
    b"\r\n"
    b"Final-Recipient: rfc822; gone@customer.example\r\n"
    b"Action: failed\r\n"
    b"Status: 5.1.1\r\n"
    b"--b\r\n"
    b"Content-Type: text/rfc822-headers\r\n"
    b"\r\n"
    b"Message-ID: <%s>\r\n"
    b"--b--\r\n"
)


def test_a_report_from_the_empty_sender_about_none_of_ours_is_bounced_with_its_reason(
    app, client, inbox
):
    inbound.post_relay(client, REPORT % (1, b"unknown-1@elsewhere.example"))
    inbound.work_inbound(app)
    db.session.expire_all()
    row = db.session.scalar(select(InboundEmail).order_by(InboundEmail.id.desc()))
    assert row.status == "bounced" and row.inbox_id == inbox.id  # in the inbox's log
    assert row.reason == (
        "a delivery report from the empty sender (MAILER-DAEMON) that names "
        "unknown-1@elsewhere.example, which is not one of ours"
    )


def test_a_report_from_the_empty_sender_about_our_reply_joins_its_conversation(
    app, client, inbox, make_user
):
    from services.replies import create_reply

    team = make_team(inbox, make_user)
    first = arrive(app, client, message(6))
    reply = create_reply(first.conversation, team.bob, "Which account?")
    raw = REPORT % (2, reply.message_id.encode())
    inbound.post_relay(client, raw)
    inbound.work_inbound(app)
    db.session.expire_all()
    row = db.session.scalar(select(InboundEmail).order_by(InboundEmail.id.desc()))
    assert row.status == "delivered", row.reason
    stored = db.session.scalar(
        select(Message).where(Message.message_id == "report-2@mx.example.net")
    )
    assert stored.conversation_id == first.conversation_id
    assert (stored.from_address, stored.from_name) == ("", "Mail delivery system")
    assert db.session.get(Message, reply.id).delivery_status == "failed"


# --- SPF and DMARC checked here, from the client address the relay passed -------------------

SPF_RECORD = "v=spf1 ip4:192.0.2.0/24 -all"


def connection(address: str, mail_from: str, helo: str = "mail.example.net") -> dict:
    return {
        "X-Threadline-Client-Address": address,
        "X-Threadline-Helo": helo,
        "X-Threadline-Mail-From": mail_from,
    }


def test_spf_checked_here_for_an_authorised_server_is_a_verified_sender(
    app, client, bob, dns_records
):
    dns_records["example.com"] = [SPF_RECORD]
    dns_records["_dmarc.example.com"] = ["v=DMARC1; p=reject; aspf=r"]
    stored = arrive(app, client, message(20), connection("192.0.2.25", "bounces@example.com"))
    page, data = shown(bob, client, stored)
    verdict = data["sender_verdict"]
    assert (verdict["status"], verdict["spf"], verdict["dmarc"]) == ("verified", "pass", "pass")
    assert verdict["dkim"] == "none"
    assert "Threadline checked SPF for 192.0.2.25" in verdict["reason"]
    assert ">verified sender</span>" in page and "msg-spoof-warning" not in page


@pytest.mark.parametrize(
    "records, mail_from",
    [
        ({}, "ann@example.com"),  # the forger gives the victim's address: SPF fails
        # ... or their own domain, which allows them: SPF passes, but not aligned with From.
        ({"forger.example": ["v=spf1 +all"]}, "x@forger.example"),
    ],
    ids=["spf-fail", "spf-pass-unaligned"],
)
def test_a_forged_from_of_a_p_reject_domain_from_an_unauthorised_server_fails_dmarc(
    app, client, bob, dns_records, records, mail_from
):
    dns_records.update({"example.com": [SPF_RECORD], **records})
    dns_records["_dmarc.example.com"] = ["v=DMARC1; p=reject"]
    stored = arrive(app, client, message(21), connection("203.0.113.66", mail_from))
    page, data = shown(bob, client, stored)
    verdict = data["sender_verdict"]
    assert (verdict["status"], verdict["dmarc"], verdict["dmarc_policy"]) == (
        "failed_dmarc",
        "fail",
        "reject",
    )
    assert "Threadline checked SPF for 203.0.113.66" in verdict["reason"]
    assert "failed DMARC — may be spoofed" in page
    assert 'class="msg-spoof-warning" role="alert"' in page


def test_strict_spf_alignment_needs_the_exact_domain(app, client, bob, dns_records):
    """aspf=s: an SPF pass for a subdomain of the From domain is not aligned."""
    dns_records["bounce.example.com"] = [SPF_RECORD]
    dns_records["_dmarc.example.com"] = ["v=DMARC1; p=quarantine; aspf=s"]
    stored = arrive(app, client, message(22), connection("192.0.2.25", "b@bounce.example.com"))
    _page, data = shown(bob, client, stored)
    assert data["sender_verdict"]["spf"] == "pass"
    assert data["sender_verdict"]["status"] == "failed_dmarc"


def test_without_the_connection_headers_spf_is_not_checked_here(
    app, client, bob, dns_records, dns_stand_in
):
    """Today's behaviour: no client address, no SPF of our own, so no DMARC failure guessed."""
    dns_records["example.com"] = [SPF_RECORD]
    dns_records["_dmarc.example.com"] = ["v=DMARC1; p=reject"]
    dns_stand_in.queries.clear()
    stored = arrive(app, client, message(23))
    _page, data = shown(bob, client, stored)
    verdict = data["sender_verdict"]
    assert (verdict["status"], verdict["spf"], verdict["dmarc"]) == ("unverified", None, None)
    assert ("example.com", "TXT") not in dns_stand_in.queries


def test_a_trusted_servers_spf_wins_over_the_check_here(app, client, bob, dns_records):
    dns_records["example.com"] = [SPF_RECORD]
    results = b"Authentication-Results: mx.ours.test; spf=pass smtp.mailfrom=example.com\r\n"
    # The client address would fail SPF; the trusted server saw the real one.
    stored = arrive(app, client, message(24, results), connection("203.0.113.66", "a@example.com"))
    _page, data = shown(bob, client, stored)
    assert data["sender_verdict"]["status"] == "verified"
    assert data["sender_verdict"]["reason"].startswith("mx.ours.test checked SPF")
