"""The RQ job that sends one outgoing reply: claim → compose → store → send → record.

queued → sending → sent (with the server's reply, often its queue id) or failed (with the
server's words): a 5xx refusal fails at once; 4xx and network errors are retried with backoff
and fail only when the retries are used up. An inbox signed in with OAuth whose refresh token
the provider refused fails its replies at once (the agent retries after someone reconnects);
an unreachable identity provider is retried like a network error. `sending` is a lease
(services/leases.py); the moment DATA begins is recorded, and a reply whose connection or
worker was lost after it is `unknown`: an agent decides whether to send it again
(jobs/sweeps.py recover_outgoing).
"""

from __future__ import annotations

import logging
import smtplib

from rq import get_current_job
from sqlalchemy import update

from extensions import db
from mail.smtp import DeliveryRefused, describe_refusal, send_mime, smtp_session
from models import Message, utcnow
from models.enums import NotificationEvent as Event
from services import send_later
from services.leases import OUTGOING, LeaseKeeper, claim, finish, held
from services.mail_credentials import NoTransport, provider_label, smtp_target_for
from services.notifications import events as notifications
from services.oauth import OAuthRevoked, OAuthUnavailable
from services.outbound import compose, store_mime
from services.replies import UNKNOWN_FATE

log = logging.getLogger(__name__)


def send_message(message_pk: int) -> str:
    """Send the reply if it is queued and due (services/send_later.py: not before its undo
    window or scheduled time ends, never a scheduled one the customer wrote after)."""
    number = claim(
        OUTGOING,
        message_pk,
        (Message.direction == "outgoing")
        & (Message.delivery_status == "queued")
        & send_later.sendable(utcnow()),
        handed_over_at=None,
    )
    if number is None:  # sent, failed, in another job's hands, taken back, not due or held
        if send_later.hold_answered(message_pk):
            return "held"
        message = db.session.get(Message, message_pk)
        return message.delivery_status if message else "nothing to send"
    with LeaseKeeper(OUTGOING, message_pk, number):
        return _send(db.session.get(Message, message_pk, populate_existing=True), number)


def _send(message: Message, number: int) -> str:
    outgoing = compose(message)
    raw = store_mime(message, outgoing)
    inbox = message.conversation.inbox

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

    target = None
    try:
        target = smtp_target_for(inbox)
        with smtp_session(target, timeout=60) as session:
            response = send_mime(
                session, inbox.support_address, outgoing.envelope_recipients, raw, hand_over
            )
    except DeliveryRefused as exc:  # the server's answer: it did not take the message
        if exc.permanent:
            return _fail(message, number, str(exc))
        return _temporary(message, number, str(exc))
    except NoTransport as exc:
        return _fail(message, number, str(exc))
    except OAuthRevoked as exc:
        return _fail(
            message,
            number,
            f"Not sent: {exc.words.rstrip('.')}. Reconnect {provider_label(inbox)} in the "
            "inbox settings, then retry.",
        )
    except OAuthUnavailable as exc:
        return _temporary(message, number, f"no access token for the SMTP sign-in: {exc.words}")
    except smtplib.SMTPAuthenticationError as exc:
        reason = f"SMTP login refused: {describe_refusal(exc)}"
        if target is not None and target.oauth_token:
            reason += (
                f" (XOAUTH2 as {target.username}). Reconnect {provider_label(inbox)} in the "
                "inbox settings, or allow authenticated SMTP for the mailbox, then retry."
            )
        return _fail(message, number, reason)
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
    if finish(OUTGOING, message.id, number, delivery_status="failed", delivery_error=reason[:2000]):
        _tell_author(message)
    log.warning("message %d failed: %s", message.id, reason)
    return "failed"


def _tell_author(message: Message) -> None:
    """The agent who wrote the reply hears that it was not (or may not have been) sent."""
    db.session.refresh(message)
    notifications.record(Event.SEND_FAILED, message.conversation, message=message)
    db.session.commit()


def _unknown(message: Message, number: int, reason: str) -> str:
    """The connection broke after DATA began: sending again could deliver it twice."""
    if finish(
        OUTGOING,
        message.id,
        number,
        delivery_status="unknown",
        delivery_error=f"The connection broke after the reply was handed over ({reason}). "
        f"{UNKNOWN_FATE}"[:2000],
    ):
        _tell_author(message)
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
