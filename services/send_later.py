"""Replies that wait before a send job may take them: the undo window and scheduled sends.

A reply sent from the composer waits SEND_UNDO_SECONDS (its `send_after`) with an "Undo"
button; one the agent scheduled waits for the time they chose (`scheduled`). Nothing is
enqueued meanwhile: the scheduler's tick (jobs/sweeps.py send_due_replies, every 5 s)
enqueues what is due, so a waiting reply lives in the database alone (no RQ job to cancel,
nothing lost with Redis), and the send job claims only what is `sendable`, so no sweep,
retry or stray job sends early.

Taking a reply back (Undo, Cancel, Edit) is one conditional DELETE, allowed while the reply
is queued or held and never handed to the mail server; the send job's claim moves it to
`sending` in one UPDATE, so exactly one of the two wins. Its words become the agent's draft.

A scheduled reply is held when the customer writes after it was scheduled (an incoming email,
not an automatic one, newer than the reply): it is not sent, and the thread asks the agent
to send it now or edit it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from sqlalchemy import delete, exists, or_, select, update
from sqlalchemy.orm import aliased

from extensions import db, get_settings, get_storage
from models import Message, Participant, ReplyDraft, User, utcnow
from models.enums import ParticipantRole
from services import reply_drafts
from services.replies import ReplyError, enqueue_send

log = logging.getLogger(__name__)

WAITING = ("queued", "held")  # never handed to a mail server: may still be taken back
AHEAD = timedelta(days=366)  # the furthest a reply can be scheduled


class TooLate(ReplyError):
    """The send job has it: it is being sent (or was)."""


def due(now: datetime):
    """SQL: a reply whose wait, if any, is over."""
    return Message.send_after.is_(None) | (Message.send_after <= now)


def answered():
    """SQL: a scheduled reply that the people it is for wrote after (an email newer than it)."""
    incoming = aliased(Message)
    return Message.scheduled & exists().where(
        incoming.conversation_id == Message.conversation_id,
        incoming.direction == "incoming",
        incoming.id > Message.id,
        incoming.auto_flag.is_(None),
        same_party(incoming, Message),
    )


def same_party(incoming, reply):
    """SQL: `incoming` is from the side `reply` (a Message row or the Message class) is for:
    a reply to a third party (its participant_id) is answered by that party alone; a reply to
    the customer by the customer's side (the contact or someone they copied), never by a
    third party's email."""
    by_third_party = exists().where(
        Participant.id == incoming.participant_id, Participant.role == ParticipantRole.THIRD_PARTY
    )
    if isinstance(reply, Message):  # one reply: its side is known
        if reply.participant_id is None:
            return ~by_third_party
        return incoming.participant_id == reply.participant_id
    return or_(
        reply.participant_id.is_not(None) & (incoming.participant_id == reply.participant_id),
        reply.participant_id.is_(None) & ~by_third_party,
    )


def sendable(now: datetime):
    """SQL: what a send job may claim now, besides being queued."""
    return due(now) & ~answered()


def undo_window() -> datetime | None:
    """When a reply sent from the composer now may go: SEND_UNDO_SECONDS on (None: at once)."""
    seconds = get_settings().send_undo_seconds
    return utcnow() + timedelta(seconds=seconds) if seconds else None


def scheduled_moment(raw: str | None, zone: tzinfo, now: datetime | None = None) -> datetime:
    """The composer's "Send later" time, typed in the agent's zone, in UTC. A refusal says
    what to type instead (ReplyError on the field `send_at`)."""
    name = getattr(zone, "key", str(zone))
    raw = (raw or "").strip()
    if not raw:
        raise ReplyError(f"Choose when to send it: a date and a time ({name}).", "send_at")
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ReplyError(
            f"“{raw[:40]}” is not a date and time: give it as YYYY-MM-DD HH:MM ({name}).",
            "send_at",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    now = now or utcnow()
    if moment <= now:
        here = now.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        raise ReplyError(
            f"{moment.astimezone(zone):%Y-%m-%d %H:%M} has passed (it is {here} in {name}): "
            "choose a later time, or press Send.",
            "send_at",
        )
    if moment > now + AHEAD:
        raise ReplyError(
            "A reply can be scheduled up to a year ahead: choose a closer date.", "send_at"
        )
    return moment.astimezone(now.tzinfo)


def hold_answered(message_pk: int | None = None) -> int:
    """Hold the scheduled replies (or this one) that the customer wrote after; how many.
    Read first: the tick runs every few seconds and mostly finds nothing to write."""
    holdable = (
        (Message.direction == "outgoing") & (Message.delivery_status == "queued") & answered()
    )
    if message_pk is not None:
        holdable &= Message.id == message_pk
    found = db.session.scalars(select(Message.id).where(holdable)).all()
    if not found:
        return 0
    held = db.session.execute(
        update(Message)
        .where(Message.id.in_(found), holdable)  # again: a job may have claimed one since
        .values(delivery_status="held", updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if held:
        log.info("%d scheduled reply(ies) held: the customer wrote after they were scheduled", held)
    return held


@dataclass(frozen=True)
class TakenBack:
    """What the composer says after Undo/Cancel/Edit: the files to attach again."""

    files: list[str]
    draft: ReplyDraft


def take_back(message: Message, agent: User) -> TakenBack:
    """Undo, Cancel or Edit: the reply leaves the thread unsent and its words, To, CC and
    BCC become `agent`'s draft (ahead of any draft they have begun since). Refused with
    TooLate once a send job took it. Attachments are not kept: the answer names them."""
    if message.direction != "outgoing":
        raise ReplyError("Only a reply that waits to be sent can be taken back.")
    conversation, author = message.conversation, message.sender
    files = [(a.filename, a.storage_key) for a in message.attachments]
    words, to, cc, bcc = (
        message.text_body or "",
        # The composer's fields hold addresses separated by commas.
        ", ".join(message.to_addresses.addresses()),
        ", ".join(message.cc_addresses.addresses()),
        ", ".join(message.bcc_addresses.addresses()),
    )
    gone = db.session.execute(
        delete(Message)
        .where(
            Message.id == message.id,
            Message.delivery_status.in_(WAITING),
            Message.handed_over_at.is_(None),
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if not gone:
        db.session.rollback()
        raise TooLate("Too late to take it back: the reply is being sent, or was.")
    db.session.expunge(message)
    draft = reply_drafts.get(conversation.id, agent.id)
    if draft is None:
        draft = ReplyDraft(conversation_id=conversation.id, user_id=agent.id)
        db.session.add(draft)
    elif draft.text.strip():
        words = f"{words}\n\n{draft.text}"
    draft.kind, draft.text = "reply", words[: reply_drafts.MAX_TEXT]
    draft.to, draft.cc, draft.bcc = to, cc, bcc
    draft.updated_at = utcnow()
    if author is not None and author.id != agent.id:
        db.session.add(
            conversation.activity(
                f"{agent.name} took back {author.name}'s reply before it was sent", agent.id
            )
        )
    db.session.commit()
    _forget_files([key for _name, key in files if key])
    return TakenBack([name for name, _key in files], draft)


def _forget_files(keys: list[str]) -> None:
    storage = get_storage()
    for key in keys:
        try:
            storage.delete(key)
        except Exception as exc:  # the row is gone; a stray object is only space
            log.warning("outgoing attachment %s of a reply taken back not deleted: %s", key, exc)


def send_now(message: Message) -> None:
    """A scheduled (or held) reply goes now, whatever the customer wrote meanwhile: the
    agent has read it."""
    changed = db.session.execute(
        update(Message)
        .where(
            Message.id == message.id,
            Message.scheduled,
            Message.delivery_status.in_(WAITING),
            Message.handed_over_at.is_(None),
        )
        .values(delivery_status="queued", scheduled=False, send_after=None, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if not changed:
        raise TooLate("It is already being sent: nothing to do.")
    enqueue_send(message.id)


def wrote_since(message: Message) -> str | None:
    """Who wrote after this held reply was scheduled, as the thread names them ("Carla")."""
    incoming = db.session.scalar(
        select(Message)
        .where(
            Message.conversation_id == message.conversation_id,
            Message.direction == "incoming",
            Message.id > message.id,
            Message.auto_flag.is_(None),
            same_party(Message, message),
        )
        .order_by(Message.id.desc())
        .limit(1)
    )
    if incoming is None:
        return None
    name, address = incoming.from_name, incoming.from_address
    contact = message.conversation.contact
    if address.lower() == (contact.email or "").lower():
        name = contact.name or name
    return name or address or "The customer"
