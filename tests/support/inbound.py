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
