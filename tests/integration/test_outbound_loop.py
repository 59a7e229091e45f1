"""Conversation continuity end to end: customer email in → agent reply out over real SMTP →
the customer's answer, built from the captured mail, back into the same conversation."""

import base64
import smtplib
from email import policy
from email.parser import BytesParser
from email.utils import make_msgid

import pytest
from rq import Queue
from rq.job import Job
from sqlalchemy import select

from extensions import db, get_redis, get_settings, get_storage
from jobs.send_message import send_message
from mail.compose import OutgoingAttachment
from models import Conversation, Inbox, InboxMember, Message, utcnow
from services.forwards import forward
from services.replies import create_reply, retry_delivery
from tests.conftest import global_smtp
from tests.support.inbound import post_relay, work_inbound
from tests.support.smtp_server import running_smtp_server
from tests.support.tls import self_signed_context
from worker import build_worker

DOMAIN = "reply.example.com"


@pytest.fixture
def app_config(app_config, smtp):
    return {
        **app_config,
        "MAILER_INBOUND_EMAIL_DOMAIN": DOMAIN,
        **global_smtp(smtp),
    }


def customer_email(**headers) -> bytes:
    lines = {
        "From": "Carla Customer <carla@customer.example>",
        "To": "support@example.com",
        "Subject": "Printer on fire",
        "Message-ID": "<first@customer.example>",
    }
    lines.update({k.replace("_", "-"): v for k, v in headers.items() if v is not None})
    body = lines.pop("Body", "Help, it is burning.")
    head = "".join(f"{k}: {v}\r\n" for k, v in lines.items() if v != "")
    return f"{head}\r\n{body}\r\n".encode()


def send_queued(app) -> None:
    build_worker(app, ["outbound"], simple=True).work(burst=True)


def captured(smtp, index=-1):
    envelope = smtp.envelopes[index]
    return envelope, BytesParser(policy=policy.default).parsebytes(envelope.content)


def answer_to(sent, body: str, *, keep=("In-Reply-To", "References"), to=None, cc=None) -> bytes:
    """What the customer's mail client sends when they hit reply on our message."""
    refs = (str(sent["References"] or "") + " " + str(sent["Message-ID"])).strip()
    return customer_email(
        To=to or str(sent["Reply-To"]),
        Cc=cc,
        Subject=str(sent["Subject"]),
        Message_ID=make_msgid(domain="customer.example"),
        In_Reply_To=str(sent["Message-ID"]) if "In-Reply-To" in keep else "",
        References=refs if "References" in keep else "",
        Body=f"{body}\r\n\r\nOn Mon, Ana Agent wrote:\r\n> our words",
    )


def start_conversation(app, client) -> Conversation:
    post_relay(client, customer_email())
    work_inbound(app)
    return db.session.scalars(select(Conversation)).one()


def test_three_rounds_stay_in_one_conversation_with_correct_headers(app, client, agent, smtp):
    conversation = start_conversation(app, client)
    before = len(smtp.envelopes)
    for round_number in range(1, 4):
        reply = create_reply(conversation, agent, f"Answer {round_number}", cc=["boss@x.example"])
        assert reply.delivery_status == "queued"
        send_queued(app)
        db.session.refresh(reply)
        assert reply.delivery_status == "sent", reply.delivery_error
        assert reply.smtp_response.startswith("250")
        envelope, sent = captured(smtp)
        assert envelope.mail_from == "support@example.com"
        assert sorted(envelope.rcpt_tos) == ["boss@x.example", "carla@customer.example"]
        token = conversation.token
        assert str(sent["Message-ID"]) == f"<conversation/{token}/messages/{reply.id}@{DOMAIN}>"
        assert str(sent["From"]) == "Ana Agent from Support <support@example.com>"
        assert str(sent["To"]) == "Carla Customer <carla@customer.example>"
        assert str(sent["Cc"]) == "boss@x.example"
        assert str(sent["Reply-To"]) == f"reply+{token}@{DOMAIN}"
        assert str(sent["Subject"]) == "Re: Printer on fire"
        assert "Auto-Submitted" not in sent and "Bcc" not in sent
        assert str(sent["Thread-Topic"]) == "Printer on fire"
        assert sent["Date"] and sent["Thread-Index"]
        last_incoming = db.session.scalars(
            select(Message).where(Message.direction == "incoming").order_by(Message.id.desc())
        ).first()
        assert str(sent["In-Reply-To"]) == f"<{last_incoming.message_id}>"
        assert str(sent["References"]).split()[-1] == f"<{last_incoming.message_id}>"
        assert sent.get_content_type() == "multipart/alternative"
        assert f"Answer {round_number}" in sent.get_body(("plain",)).get_content()
        assert f"Answer {round_number}" in sent.get_body(("html",)).get_content()
        # The exact bytes sent are kept.
        assert get_storage().get_bytes(reply.mime_storage_key) == envelope.content
        # The customer answers from their mail client; it lands in the same conversation.
        post_relay(client, answer_to(sent, f"Customer answer {round_number}"))
        work_inbound(app)
        answer = db.session.scalars(select(Message).order_by(Message.id.desc())).first()
        assert answer.conversation_id == conversation.id
        assert answer.text_body.startswith(f"Customer answer {round_number}")
        assert "our words" in answer.quoted_text
    assert len(smtp.envelopes) - before == 3
    assert db.session.query(Conversation).count() == 1
    # Thread-Index keeps the conversation's header and grows one block per email after the
    # first: the customer's answer and our reply each add one (MS-OXOMSG 2.2.1.3).
    indexes = [base64.b64decode(str(captured(smtp, i)[1]["Thread-Index"])) for i in (-3, -2, -1)]
    assert [len(index) for index in indexes] == [22 + 5, 22 + 15, 22 + 25]
    assert indexes[1].startswith(indexes[0]) and indexes[2].startswith(indexes[1])
    assert indexes[0][0] == 0x01 and indexes[0][6:22] == bytes.fromhex(conversation.token[:32])


@pytest.mark.parametrize(
    ("variant", "rule"),
    [
        ("reply_to_token_only", "reply_token"),
        ("in_reply_to_only", "in_reply_to"),
        ("references_only", "references"),
        ("token_only_in_cc", "reply_token"),
        ("via_forwarding_support_address", "in_reply_to"),
    ],
)
def test_each_continuity_path_finds_the_conversation(app, client, agent, smtp, variant, rule):
    conversation = start_conversation(app, client)
    create_reply(conversation, agent, "Our answer")
    send_queued(app)
    _, sent = captured(smtp)
    token_address = str(sent["Reply-To"])
    raw = {
        # The customer's client dropped In-Reply-To and References.
        "reply_to_token_only": answer_to(sent, "x", keep=()),
        # Replying to the support address itself: only the headers link it.
        "in_reply_to_only": answer_to(sent, "x", keep=("In-Reply-To",), to="support@example.com"),
        "references_only": answer_to(sent, "x", keep=("References",), to="support@example.com"),
        "token_only_in_cc": answer_to(
            sent, "x", keep=(), to="someone@else.example", cc=token_address
        ),
        # support@ forwards to our generated address (the forwarding inbox setup).
        "via_forwarding_support_address": answer_to(
            sent, "x", keep=("In-Reply-To",), to="support@example.com"
        ).replace(b"\r\n\r\n", f"\r\nX-Forwarded-To: {agent.id}@nowhere\r\n\r\n".encode(), 1),
    }[variant]
    post_relay(client, raw)
    work_inbound(app)
    answer = db.session.scalars(select(Message).order_by(Message.id.desc())).first()
    assert answer.direction == "incoming"
    assert answer.conversation_id == conversation.id
    assert answer.threaded_by == rule


def test_a_private_note_is_never_sent(app, client, agent, smtp):
    conversation = start_conversation(app, client)
    before = len(smtp.envelopes)
    note = create_reply(conversation, agent, "Internal: customer is VIP", private=True)
    assert note.direction == "note" and note.delivery_status is None and note.message_id is None
    send_queued(app)
    assert len(smtp.envelopes) == before
    assert Queue("outbound", connection=get_redis()).count == 0


def test_a_dsn_for_our_reply_marks_it_failed(app, client, agent, smtp):
    conversation = start_conversation(app, client)
    reply = create_reply(conversation, agent, "Our answer")
    send_queued(app)
    _, sent = captured(smtp)
    dsn = (
        "From: MAILER-DAEMON@mx.customer.example\r\nTo: support@example.com\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn1@mx.customer.example>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        "Final-Recipient: rfc822; carla@customer.example\r\nAction: failed\r\n"
        "Status: 5.2.2\r\nDiagnostic-Code: smtp; 552 5.2.2 Mailbox full\r\n\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {sent['Message-ID']}\r\nSubject: {sent['Subject']}\r\n\r\n--B--\r\n"
    ).encode()
    post_relay(client, dsn)
    work_inbound(app)
    db.session.refresh(reply)
    assert reply.delivery_status == "failed"
    assert "552 5.2.2 Mailbox full" in reply.delivery_error
    bounce = db.session.scalars(select(Message).order_by(Message.id.desc())).first()
    assert bounce.conversation_id == conversation.id


@pytest.mark.parametrize("method", ["plain", "login"])
def test_starttls_and_auth_as_configured(app_config, inbox, make_user, tmp_path, method):
    from app import create_app

    context = self_signed_context(tmp_path)
    with running_smtp_server("mailer", "app-password", tls_context=context) as server:
        config = {
            **app_config,
            "SMTP_PORT": str(server.port),
            "SMTP_USERNAME": "mailer",
            "SMTP_PASSWORD": "app-password",
            "SMTP_AUTHENTICATION": method,
            "SMTP_OPENSSL_VERIFY_MODE": "none",  # the test certificate is self-signed
        }
        tls_app = create_app(config)
        with tls_app.app_context():
            post_relay(tls_app.test_client(), customer_email())
            work_inbound(tls_app)
            conversation = db.session.scalars(select(Conversation)).one()
            agent = make_user()
            reply = create_reply(conversation, agent, "Sent over TLS")
            send_queued(tls_app)
            db.session.refresh(reply)
            assert reply.delivery_status == "sent", reply.delivery_error
        assert server.tls_sessions == [True]
        assert server.logins == ["mailer"] and server.login_mechanisms == [method.upper()]


def test_certificate_is_verified_unless_told_otherwise(app_config, inbox, make_user, tmp_path):
    from app import create_app

    with running_smtp_server(tls_context=self_signed_context(tmp_path)) as server:
        strict = create_app({**app_config, "SMTP_PORT": str(server.port)})
        with strict.app_context():
            post_relay(strict.test_client(), customer_email())
            work_inbound(strict)
            reply = create_reply(db.session.scalars(select(Conversation)).one(), make_user(), "x")
            send_queued(strict)  # first attempt: certificate refused → retried later
            db.session.refresh(reply)
            assert reply.delivery_status == "queued"
            assert "CERTIFICATE_VERIFY_FAILED" in reply.delivery_error
        assert server.envelopes == []


def run_scheduled_retry(app, message_pk: int) -> None:
    """Time passes: move the job RQ scheduled for retry back onto its queue and work it."""
    queue = Queue("outbound", connection=get_redis())
    job = Job.fetch(f"send-message-{message_pk}", connection=get_redis())
    assert job.id in queue.scheduled_job_registry.get_job_ids()
    queue.scheduled_job_registry.remove(job)
    queue.enqueue_job(job)
    send_queued(app)


def test_a_temporary_refusal_is_retried_and_then_sent(app, client, agent, smtp):
    conversation = start_conversation(app, client)
    smtp.data_replies[:] = ["451 4.3.0 Try again later"]
    reply = create_reply(conversation, agent, "Persistence")
    send_queued(app)
    db.session.refresh(reply)
    assert reply.delivery_status == "queued"
    assert reply.delivery_error == "will retry: 451 4.3.0 Try again later"
    run_scheduled_retry(app, reply.id)
    db.session.refresh(reply)
    assert reply.delivery_status == "sent" and reply.delivery_attempts == 2


def test_a_permanent_refusal_fails_with_the_servers_words_and_can_be_retried(
    app, client, agent, smtp
):
    conversation = start_conversation(app, client)
    smtp.data_replies[:] = ["554 5.7.1 Message rejected as spam"]
    reply = create_reply(conversation, agent, "Buy now")
    send_queued(app)
    db.session.refresh(reply)
    assert reply.delivery_status == "failed"
    assert reply.delivery_error == "554 5.7.1 Message rejected as spam"
    retry_delivery(reply)  # the agent's "retry" action
    send_queued(app)
    db.session.refresh(reply)
    assert reply.delivery_status == "sent"


def test_retries_run_out_into_failed(app, client, agent, smtp):
    conversation = start_conversation(app, client)
    reply = create_reply(conversation, agent, "Unlucky")
    smtp.data_replies[:] = ["421 4.7.0 Busy"] * 10
    send_queued(app)
    for _ in range(4):
        run_scheduled_retry(app, reply.id)
    db.session.refresh(reply)
    smtp.data_replies.clear()
    assert reply.delivery_status == "failed"
    assert reply.delivery_error == "421 4.7.0 Busy" and reply.delivery_attempts == 5


def test_sending_twice_never_emails_the_customer_twice(app, client, agent, smtp):
    conversation = start_conversation(app, client)
    reply = create_reply(conversation, agent, "Once")
    send_queued(app)
    before = len(smtp.envelopes)
    assert send_message(reply.id) == "sent"
    assert len(smtp.envelopes) == before


def test_a_reply_saved_while_redis_is_down_is_sent_after_the_sweep(
    app, client, app_config, agent, smtp
):
    import socket
    from datetime import timedelta

    from app import create_app
    from jobs.sweeps import recover_outgoing

    conversation = start_conversation(app, client)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    no_redis = create_app({**app_config, "REDIS_URL": f"redis://127.0.0.1:{closed}/0"})
    with no_redis.app_context():
        reply = create_reply(db.session.get(Conversation, conversation.id), agent, "Saved")
        reply_id = reply.id
    message = db.session.get(Message, reply_id)
    assert message.delivery_status == "queued"
    assert recover_outgoing() == 0  # too fresh: it may still be on its way
    message.updated_at = utcnow() - timedelta(minutes=2)
    db.session.commit()
    assert recover_outgoing() == 1
    assert recover_outgoing() == 0  # its job is waiting now: never twice
    send_queued(app)
    db.session.refresh(message)
    assert message.delivery_status == "sent"


def test_implicit_tls_on_port_465_style(app_config, inbox, make_user, tmp_path):
    from app import create_app

    context = self_signed_context(tmp_path)
    with running_smtp_server("mailer", "pw", tls_context=context, implicit_tls=True) as server:
        config = {
            **app_config,
            "SMTP_PORT": str(server.port),
            "SMTP_SSL": "true",
            "SMTP_USERNAME": "mailer",
            "SMTP_PASSWORD": "pw",
            "SMTP_OPENSSL_VERIFY_MODE": "none",
        }
        tls_app = create_app(config)
        with tls_app.app_context():
            post_relay(tls_app.test_client(), customer_email())
            work_inbound(tls_app)
            reply = create_reply(db.session.scalars(select(Conversation)).one(), make_user(), "x")
            send_queued(tls_app)
            db.session.refresh(reply)
            assert reply.delivery_status == "sent", reply.delivery_error
        assert server.logins == ["mailer"] and len(server.envelopes) == 1
        with pytest.raises((smtplib.SMTPServerDisconnected, OSError)):  # it only speaks TLS
            smtplib.SMTP(server.host, server.port, timeout=3).ehlo()


def test_the_inboxs_own_smtp_wins_over_the_global_one(app, client, agent, inbox, smtp):
    from models import SmtpSettings

    with running_smtp_server("inbox-user", "inbox-pw") as own:
        inbox.smtp = SmtpSettings(
            host=own.host,
            port=own.port,
            security="none",
            auth_method="login",
            username="inbox-user",
            password="inbox-pw",
        )
        db.session.commit()
        conversation = start_conversation(app, client)
        global_before = len(smtp.envelopes)
        reply = create_reply(conversation, agent, "Through the inbox's server")
        send_queued(app)
        db.session.refresh(reply)
        assert reply.delivery_status == "sent", reply.delivery_error
        assert len(own.envelopes) == 1 and own.login_mechanisms == ["LOGIN"]
        assert len(smtp.envelopes) == global_before


def test_sent_mime_is_downloadable_by_the_inboxs_people_only(
    app, client, agent, smtp, auth, make_user
):
    conversation = start_conversation(app, client)
    reply = create_reply(conversation, agent, "Keep a copy")
    send_queued(app)
    db.session.refresh(reply)
    url = f"/messages/{reply.id}/sent.eml"
    outsider = make_user()
    auth.login(outsider.email, outsider.plain_password)
    assert client.get(url).status_code == 404
    auth.logout()
    auth.login(agent.email, agent.plain_password)
    response = client.get(url)
    assert response.status_code == 200
    assert response.data == smtp.envelopes[-1].content
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def mime_versions(raw: bytes) -> list[str]:
    """Every MIME-Version header of an email, the root's and any part's (walk() order)."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    return [value for part in message.walk() for value in part.get_all("MIME-Version", [])]


def test_what_the_smtp_server_receives_has_one_mime_version(app, client, agent, smtp):
    """A reply with attachments (text + HTML alternative inside mixed) and a forward of it:
    MIME-Version only at the top, in the bytes the server received and in the kept copy."""
    conversation = start_conversation(app, client)
    files = [
        OutgoingAttachment("screen.png", "image/png", b"\x89PNG\r\n\x1a\n"),
        OutgoingAttachment("notes.txt", "text/plain", b"line one\n"),
    ]
    reply = create_reply(conversation, agent, "Two files attached", attachments=files)
    send_queued(app)
    db.session.refresh(reply)
    assert reply.delivery_status == "sent", reply.delivery_error
    sent = smtp.envelopes[-1].content
    _, parsed = captured(smtp)
    assert [p.get_content_type() for p in parsed.walk()] == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "text/html",
        "image/png",
        "text/plain",
    ]
    assert sent.count(b"MIME-Version:") == 1 and mime_versions(sent) == ["1.0"]
    assert get_storage().get_bytes(reply.mime_storage_key) == sent
    forwarded = forward(conversation, agent, ["expert@third.example"], "Please have a look")
    send_queued(app)
    db.session.refresh(forwarded)
    assert forwarded.delivery_status == "sent", forwarded.delivery_error
    assert smtp.envelopes[-1].rcpt_tos == ["expert@third.example"]
    sent = smtp.envelopes[-1].content
    assert sent.count(b"MIME-Version:") == 1 and mime_versions(sent) == ["1.0"]


def test_the_api_retries_a_failed_reply(app, client, agent, smtp):
    conversation = start_conversation(app, client)
    smtp.data_replies[:] = ["550 5.1.1 No such user"]
    reply = create_reply(conversation, agent, "Retry me")
    send_queued(app)
    db.session.expire_all()
    token = agent.issue_api_token()
    db.session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    response = client.post(f"/api/v1/messages/{reply.id}/retry", headers=headers)
    assert response.status_code == 200 and response.get_json()["delivery_status"] == "queued"
    send_queued(app)
    db.session.expire_all()  # the worker wrote through its own session
    detail = client.get(f"/api/v1/conversations/{conversation.id}", headers=headers).get_json()
    sent = [m for m in detail["messages"] if m["id"] == reply.id][0]
    assert sent["delivery_status"] == "sent" and sent["smtp_response"].startswith("250")
    assert sent["sent_mime_url"].endswith(f"/messages/{reply.id}/sent.eml")
    again = client.post(f"/api/v1/messages/{reply.id}/retry", headers=headers)
    assert again.status_code == 422  # only a failed reply can be retried


def test_the_apis_sent_mime_url_gives_the_token_the_exact_bytes(
    app, client, agent, smtp, auth, make_user
):
    """The URL the API hands out is an API route: the bearer token gets the email as the
    SMTP server received it (not the sign-in page); no token is a 401, another inbox's
    message or one never sent by email a 404; the browser's own URL still works."""
    conversation = start_conversation(app, client)
    incoming = db.session.scalars(select(Message)).one()
    reply = create_reply(conversation, agent, "A copy for the script")
    send_queued(app)
    db.session.expire_all()
    token = agent.issue_api_token()
    billing = Inbox(name="Billing", support_address="billing@example.com")
    outsider = make_user(name="Olga Outsider")
    db.session.add(billing)
    db.session.flush()
    db.session.add(InboxMember(inbox_id=billing.id, user_id=outsider.id))
    outsider_token = outsider.issue_api_token()
    db.session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    detail = client.get(f"/api/v1/conversations/{conversation.id}", headers=headers).get_json()
    shown = {m["id"]: m["sent_mime_url"] for m in detail["messages"]}
    assert shown[incoming.id] is None
    assert shown[reply.id] == f"{get_settings().app_url}/api/v1/messages/{reply.id}/sent.eml"
    path = shown[reply.id].removeprefix(get_settings().app_url)

    response = client.get(path, headers=headers)
    assert response.status_code == 200
    assert response.data == smtp.envelopes[-1].content
    assert response.mimetype == "message/rfc822"
    assert response.headers["Content-Disposition"].startswith(
        f'attachment; filename="message-{reply.id}.eml"'
    )
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in response.headers["Cache-Control"]

    for refused in (
        client.get(path),
        client.get(path, headers={"Authorization": "Bearer tl_not-a-real-token"}),
    ):
        assert refused.status_code == 401 and refused.mimetype == "application/json"
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert "token" in refused.get_json()["error"]
    elsewhere = client.get(path, headers={"Authorization": f"Bearer {outsider_token}"})
    assert elsewhere.status_code == 404
    assert elsewhere.get_json() == {"error": f"message {reply.id}: no such message"}
    never_sent = client.get(f"/api/v1/messages/{incoming.id}/sent.eml", headers=headers)
    assert never_sent.status_code == 404 and "not sent by email" in never_sent.get_json()["error"]
    assert client.get("/api/v1/messages/999999/sent.eml", headers=headers).status_code == 404

    # A signed-in browser: the API still wants the token; the thread's own link still works.
    auth.login(agent.email, agent.plain_password)
    assert client.get(path).status_code == 401
    browser = client.get(f"/messages/{reply.id}/sent.eml")
    assert browser.status_code == 200 and browser.data == smtp.envelopes[-1].content


def test_the_api_marks_a_reply_of_unknown_fate_as_sent_and_it_is_never_sent(
    app, client, agent, smtp
):
    conversation = start_conversation(app, client)
    reply = create_reply(conversation, agent, "Did it arrive?")
    reply.delivery_status, reply.handed_over_at = "unknown", utcnow()
    db.session.commit()
    token = agent.issue_api_token()
    db.session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    before = len(smtp.envelopes)
    response = client.post(f"/api/v1/messages/{reply.id}/mark-sent", headers=headers)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["delivery_status"] == "sent"
    assert response.get_json()["smtp_response"] == f"marked as sent by {agent.name}"
    send_queued(app)  # the job queued when the reply was written finds nothing to send
    assert len(smtp.envelopes) == before
    again = client.post(f"/api/v1/messages/{reply.id}/mark-sent", headers=headers)
    assert again.status_code == 422
    assert "only a reply whose delivery is unknown" in again.get_json()["error"]
