"""Feeding raw email through the real relay ingress and a real (in-process) RQ worker."""

import base64

from tests.conftest import TEST_INGRESS_PASSWORD

RELAY_URL = "/rails/action_mailbox/relay/inbound_emails"
RELAY_HEADERS = {
    "Authorization": "Basic "
    + base64.b64encode(f"actionmailbox:{TEST_INGRESS_PASSWORD}".encode()).decode(),
    "Content-Type": "message/rfc822",
}


def post_relay(client, raw: bytes) -> None:
    response = client.post(RELAY_URL, data=raw, headers=RELAY_HEADERS)
    assert response.status_code == 204, response.get_data(as_text=True)


def work_inbound(app) -> None:
    """Run every queued inbound job in this process (SimpleWorker, burst)."""
    from worker import build_worker

    build_worker(app, ["inbound"], simple=True).work(burst=True)


def deliver(app, client, raw: bytes):
    """Through the relay ingress and the worker; the newest incoming message afterwards."""
    from sqlalchemy import select

    from extensions import db
    from models import Message

    post_relay(client, raw)
    work_inbound(app)
    db.session.expire_all()
    return db.session.scalars(
        select(Message).where(Message.direction == "incoming").order_by(Message.id.desc())
    ).first()


def email_message(sender, to, subject, message_id, body, **headers):
    """An email as a mail client sends it; more headers by keyword (In_Reply_To, Cc). Lines
    up to 998 characters, as mail clients write them: with the library's 78, a long
    In-Reply-To (one of our Message-IDs with a three-digit id) would be written as RFC 2047
    encoded words, which no mail client does to a Message-ID."""
    from email import policy
    from email.message import EmailMessage

    email = EmailMessage(policy=policy.default.clone(max_line_length=998))
    email["From"], email["To"], email["Subject"] = sender, to, subject
    email["Message-ID"] = message_id
    for name, value in headers.items():
        email[name.replace("_", "-")] = value
    email.set_content(body)
    return email


def arrive(app, client, email):
    """Through the relay ingress and the worker: the message stored for this email."""
    from sqlalchemy import select

    from extensions import db
    from models import Message

    post_relay(client, email.as_bytes())
    work_inbound(app)
    db.session.expire_all()
    stored = db.session.scalar(
        select(Message).where(Message.message_id == email["Message-ID"].strip("<>"))
    )
    assert stored is not None, "the inbound job did not store the message"
    return stored
