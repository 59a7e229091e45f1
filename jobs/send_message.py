"""The RQ job that sends one outgoing reply: build the MIME, keep it, hand it to SMTP.

queued → sending → sent (with the server's reply, often its queue id) or failed (with the
server's words): a 5xx refusal fails at once; 4xx and network errors are retried with backoff
and fail only when the retries are used up. `sending` is a lease (services/leases.py); the moment
DATA begins is recorded, and a reply whose connection or worker was lost after it is
`unknown`: an agent decides whether to send it again (jobs/sweeps.py recover_outgoing).
"""

from __future__ import annotations

import io
import logging
import smtplib

from rq import get_current_job
from sqlalchemy import select, update

from extensions import db, get_settings, get_storage
from mail.compose import OutgoingAttachment, OutgoingEmail, build_mime, reply_subject, thread_index
from mail.model import Person
from mail.smtp import DeliveryRefused, SmtpTarget, send_mime, smtp_session
from models import Contact, Conversation, Inbox, Message, User, utcnow
from services.health import smtp_target_from_settings
from services.leases import OUTGOING, LeaseKeeper, claim, finish, held
from services.replies import UNKNOWN_FATE, last_incoming

log = logging.getLogger(__name__)


class NoTransport(Exception):
    """Neither the inbox nor the deployment has an SMTP server configured."""


def transport_for(inbox: Inbox) -> SmtpTarget:
    """The inbox's own SMTP when configured, else the global SMTP_* settings."""
    own = inbox.smtp
    if own is not None and own.enabled and own.host:
        return SmtpTarget(
            host=own.host,
            port=own.port,
            implicit_tls=own.security == "ssl",
            starttls=own.security == "starttls",
            helo=None,
            username=(own.username or "") if own.auth_method != "none" else "",
            password=(own.password or "") if own.auth_method != "none" else "",
            auth_method=own.auth_method if own.auth_method in ("plain", "login") else "",
        )
    settings = get_settings()
    if not settings.smtp_address:
        raise NoTransport(
            f"no SMTP server: configure SMTP for inbox {inbox.name} or set SMTP_ADDRESS"
        )
    return smtp_target_from_settings(settings)


def sender_name(inbox: Inbox, author: User | None) -> str:
    if inbox.sender_name_style == "agent_from_inbox" and author is not None:
        return f"{author.name} from {inbox.name}"
    return inbox.name


def compose(message: Message) -> OutgoingEmail:
    conversation = db.session.get(Conversation, message.conversation_id)
    inbox = db.session.get(Inbox, conversation.inbox_id)
    contact = db.session.get(Contact, conversation.contact_id)
    author = db.session.get(User, message.sender_user_id) if message.sender_user_id else None
    settings = get_settings()
    parent = last_incoming(conversation.id, message.id)
    references = (parent.references or "").split() if parent else []
    continuity = inbox.reply_to_style == "continuity" and settings.inbound_domain
    reply_to = (
        f"reply+{conversation.token}@{settings.inbound_domain}"
        if continuity
        else inbox.support_address
    )
    position = db.session.scalar(
        select(db.func.count(Message.id)).where(
            Message.conversation_id == conversation.id,
            Message.direction == "outgoing",
            Message.id <= message.id,
        )
    )
    text = message.text_body
    if inbox.signature.strip():
        text = f"{text}\n\n-- \n{inbox.signature.strip()}"
    storage = get_storage()
    return OutgoingEmail(
        message_id=message.message_id,
        sender=Person(inbox.support_address, sender_name(inbox, author)),
        to=[Person(contact.email, contact.name)],
        cc=[a for a in message.cc_addresses.split(", ") if a],
        bcc=[a for a in message.bcc_addresses.split(", ") if a],
        reply_to=reply_to,
        subject=reply_subject(conversation.subject),
        date=message.created_at,
        text=text,
        html=None,
        in_reply_to=parent.message_id if parent else None,
        references=references,
        thread_index=thread_index(conversation.token, conversation.created_at, position),
        attachments=[
            OutgoingAttachment(a.filename, a.content_type, storage.get_bytes(a.storage_key))
            for a in message.attachments
            if a.storage_key
        ],
    )


def send_message(message_pk: int) -> str:
    number = claim(
        OUTGOING,
        message_pk,
        (Message.direction == "outgoing") & (Message.delivery_status == "queued"),
        handed_over_at=None,
    )
    if number is None:  # sent, failed or in another job's hands: nothing for this one to do
        message = db.session.get(Message, message_pk)
        return message.delivery_status if message else "nothing to send"
    with LeaseKeeper(OUTGOING, message_pk, number):
        return _send(db.session.get(Message, message_pk, populate_existing=True), number)


def _send(message: Message, number: int) -> str:
    outgoing = compose(message)
    raw = build_mime(outgoing)
    key = f"outgoing/{db.session.get(Conversation, message.conversation_id).token}/{message.id}.eml"
    get_storage().put(key, io.BytesIO(raw), len(raw), "message/rfc822")
    message.mime_storage_key = key
    db.session.commit()
    inbox = db.session.get(Inbox, message.inbox_id)

    def hand_over() -> None:
        """Recorded before DATA: if this worker dies from here on, the server may have the
        reply, and the sweep asks an agent instead of sending it again (jobs/sweeps.py)."""
        if (
            db.session.execute(
                update(Message)
                .where(held(OUTGOING, message.id, number))
                .values(handed_over_at=utcnow())
                .execution_options(synchronize_session=False)
            ).rowcount
            != 1
        ):
            db.session.rollback()
            raise ClaimLost(f"message {message.id} was taken over while this job stalled")
        db.session.commit()

    try:
        with smtp_session(transport_for(inbox), timeout=60) as session:
            response = send_mime(
                session, inbox.support_address, outgoing.envelope_recipients, raw, hand_over
            )
    except DeliveryRefused as exc:  # the server's answer: it did not take the message
        if exc.permanent:
            return _fail(message, number, str(exc))
        return _temporary(message, number, str(exc))
    except NoTransport as exc:
        return _fail(message, number, str(exc))
    except smtplib.SMTPAuthenticationError as exc:
        said = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else ""
        return _fail(message, number, f"SMTP login refused: {exc.smtp_code} {said}".strip())
    except (smtplib.SMTPException, OSError) as exc:
        db.session.refresh(message)
        if message.handed_over_at is not None:  # lost during DATA: the server may have it
            return _unknown(message, number, str(exc) or type(exc).__name__)
        return _temporary(message, number, f"could not talk to the SMTP server: {exc}")
    # The server's answer and the new state are one write: never "sent" without its answer.
    finish(
        OUTGOING,
        message.id,
        number,
        delivery_status="sent",
        delivery_error=None,
        sent_at=utcnow(),
        smtp_response=response[:1000],
    )
    log.info("message %d sent: %s", message.id, response)
    return "sent"


def _fail(message: Message, number: int, reason: str) -> str:
    finish(OUTGOING, message.id, number, delivery_status="failed", delivery_error=reason[:2000])
    log.warning("message %d failed: %s", message.id, reason)
    return "failed"


def _unknown(message: Message, number: int, reason: str) -> str:
    """The connection broke after DATA began: sending again could deliver it twice."""
    finish(
        OUTGOING,
        message.id,
        number,
        delivery_status="unknown",
        delivery_error=f"The connection broke after the reply was handed over ({reason}). "
        f"{UNKNOWN_FATE}"[:2000],
    )
    log.warning("message %d: fate unknown (%s); an agent decides", message.id, reason)
    return "unknown"


def _temporary(message: Message, number: int, reason: str) -> str:
    """Keep it queued and let RQ retry; when no retry is left, it has failed."""
    job = get_current_job()
    if job is None or not job.retries_left:
        return _fail(message, number, reason)
    finish(
        OUTGOING,
        message.id,
        number,
        delivery_status="queued",
        delivery_error=f"will retry: {reason}"[:2000],
        handed_over_at=None,
    )
    raise TemporaryDeliveryError(reason)


class TemporaryDeliveryError(Exception):
    """Raised so RQ schedules the next attempt with backoff."""


class ClaimLost(Exception):
    """Another job took the reply over after this one stalled past its lease: not sent."""
