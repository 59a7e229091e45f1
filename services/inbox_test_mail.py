"""The wizard's last step: send a test email to the new inbox (or inject a sample through the
shared ingress path) and follow it until it is a conversation.

A test is identified by a token in its Message-ID and subject; the token starts with the
time it was sent, so following it needs no stored state.
"""

from __future__ import annotations

import secrets
import smtplib
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from sqlalchemy import select

from extensions import db, get_settings
from ingress import RawEmail
from ingress.receive import receive
from mail.smtp import send_mime, smtp_session
from models import Conversation, InboundEmail, Inbox, Message, utcnow
from services.oauth import OAuthError
from services.outbound import NoTransport, transport_for

WAIT_SECONDS = 120
SOURCE = "setup-test"


class TestMailError(Exception):
    """The test could not be sent or injected; the message says why and what to check."""


@dataclass
class Progress:
    state: str  # waiting | received | delivered | bounced | failed | timeout
    elapsed: int
    conversation: Conversation | None = None
    inbound: InboundEmail | None = None


def new_token() -> str:
    return f"{int(time.time())}.{secrets.token_hex(6)}"


def started_at(token: str) -> int | None:
    head, _, tail = token.partition(".")
    return int(head) if head.isdigit() and tail.isalnum() else None


def message_id_for(inbox: Inbox, token: str) -> str:
    return f"threadline-test.{token}@{inbox.support_address.rpartition('@')[2]}"


def outbound_path(inbox: Inbox) -> str | None:
    """Which SMTP server a test email would go through, or None without one."""
    if inbox.smtp is not None and inbox.smtp.enabled and inbox.smtp.host:
        return f"the inbox's SMTP server {inbox.smtp.host}:{inbox.smtp.port}"
    settings = get_settings()
    if settings.smtp_address:
        return f"the deployment's SMTP server {settings.smtp_address}:{settings.smtp_port}"
    return None


def build_test_email(
    inbox: Inbox,
    token: str,
    sender: str,
    reply_to: str,
    text: str,
    *,
    to: str | None = None,
    subject: str = "Threadline setup test",
) -> bytes:
    """To the support address, or `to` (an alias: services/inbox_aliases.py)."""
    message = EmailMessage(policy=SMTP)
    message["Message-ID"] = f"<{message_id_for(inbox, token)}>"
    message["Date"] = format_datetime(utcnow())
    message["From"] = sender
    message["To"] = to or inbox.support_address
    message["Reply-To"] = reply_to
    message["Subject"] = f"{subject} {token}"
    message.set_content(text)
    return message.as_bytes()


def send_test_email(
    inbox: Inbox, admin_email: str, *, to: str | None = None, subject: str = "Threadline setup test"
) -> str:
    """Through the inbox's SMTP (or the global one) to its support address (or `to`, an
    alias being verified); the token."""
    to = to or inbox.support_address
    try:
        target = transport_for(inbox)
    except NoTransport as exc:
        raise TestMailError(f"{exc}; inject a sample email instead.") from exc
    except OAuthError as exc:  # revoked sign-in, or the provider unreachable
        raise TestMailError(
            f"The test email was not sent: {exc.words}. Reconnect the mailbox in the "
            "inbox's connection settings, or inject a sample email instead."
        ) from exc
    token = new_token()
    raw = build_test_email(
        inbox,
        token,
        inbox.support_address,
        admin_email,
        "This is a test email sent by Threadline through "
        f"{target.address} to {to}. If you can read it as a "
        "conversation, receiving works.\n",
        to=to,
        subject=subject,
    )
    try:
        with smtp_session(target, timeout=15) as session:
            send_mime(session, inbox.support_address, [to], raw)
    except (smtplib.SMTPException, OSError) as exc:
        raise TestMailError(
            f"The test email was not sent: {target.address} said: {exc}. "
            "Check the SMTP settings (test connection) or inject a sample email instead."
        ) from exc
    return token


def inject_sample(inbox: Inbox, admin_email: str) -> str:
    """Through receive(), exactly as a webhook's message would enter; the token."""
    token = new_token()
    raw = build_test_email(
        inbox,
        token,
        f"Threadline setup <{admin_email}>",
        admin_email,
        "This sample email was injected by the Threadline setup wizard. It skipped the "
        "mail provider but took the same path as every received message: storage, the "
        "inbound log and a background worker.\n",
    )
    received = receive(RawEmail(raw), source=SOURCE, inbox_id=inbox.id)
    if not received.enqueued and received.inbound_email.status == "pending":
        raise TestMailError(
            "The sample was stored but could not be queued (Redis is unreachable); the "
            "periodic sweep will queue it once Redis is back."
        )
    return token


def progress(inbox: Inbox, token: str) -> Progress:
    elapsed = int(time.time()) - (started_at(token) or 0)
    message_id = message_id_for(inbox, token)
    found = db.session.scalar(
        select(Message).where(Message.inbox_id == inbox.id, Message.message_id == message_id)
    )
    conversation = db.session.get(Conversation, found.conversation_id) if found else None
    if conversation is None:
        # Some providers rewrite Message-IDs; the subject still carries the token.
        conversation = db.session.scalar(
            select(Conversation)
            .where(Conversation.inbox_id == inbox.id, Conversation.subject.contains(token))
            .limit(1)
        )
    inbound = db.session.scalar(
        select(InboundEmail)
        .where(InboundEmail.message_id == message_id)
        .order_by(InboundEmail.id.desc())
        .limit(1)
    )
    if conversation is not None:
        return Progress("delivered", elapsed, conversation, inbound)
    if inbound is not None and inbound.status in ("bounced", "failed"):
        return Progress(inbound.status, elapsed, None, inbound)
    if elapsed > WAIT_SECONDS:
        return Progress("timeout", elapsed, None, inbound)
    return Progress("received" if inbound is not None else "waiting", elapsed, None, inbound)
