"""A reply that waits to be sent (services/send_later.py), as the thread shows and answers it:
"Sending in 8 s · Undo" during the undo window, "Scheduled for Tue 09:00 · Send now · Cancel"
for a scheduled one, and "Carla wrote after you scheduled this: Send now / Edit" once held.

Undo, Cancel and Edit are one POST (`take_back`): the reply leaves the thread and its words
are back in the composer; Send now is another. Both are plain forms (CSRF field) that htmx
upgrades, and both are refused once a send job has the reply ("too late"): 409 with the
thread saying so. The markup is _message.html's; static/composer.js counts the seconds down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from flask import flash, redirect, url_for
from flask_login import current_user, login_required

from blueprints.conversations.blueprint import bp
from blueprints.conversations.pages import visible_conversation
from blueprints.conversations.thread_actions import (
    _decide,
    _message_in,
    after_action,
    delivery_refused,
)
from blueprints.htmx import is_htmx
from models import Message, utcnow
from services import send_later
from services.replies import ReplyError
from services.timezones import user_zone


@dataclass(frozen=True)
class Waiting:
    """How the thread shows a reply that waits: `kind` is undo, scheduled or held."""

    kind: str
    at: datetime
    seconds: int  # left, for the undo window's countdown
    when: str  # the time in the viewer's zone: "Tue 09:00", "Tue 3 Dec 09:00"
    writer: str | None = None  # held: who wrote after it was scheduled


def waiting(message: Message) -> Waiting | None:
    """The reply's wait as the thread shows it, or None (sent, failed, not waiting)."""
    status, at = message.delivery_status, message.send_after
    if message.direction != "outgoing" or status not in send_later.WAITING:
        return None
    if status == "held":
        return Waiting("held", at, 0, _when(at), send_later.wrote_since(message))
    now = utcnow()
    if at is None or (at <= now and not message.scheduled):
        return None  # queued for the send job, as any reply
    seconds = max(0, math.ceil((at - now).total_seconds()))
    if not message.scheduled:  # the undo window: to the second
        return Waiting("undo", at, seconds, f"{at.astimezone(user_zone(current_user)):%H:%M:%S}")
    return Waiting("scheduled", at, seconds, _when(at))


def _when(moment: datetime | None) -> str:
    """ "Tue 09:00" within the coming week, else "Tue 3 Dec 09:00" (and the year if not
    this one), in the viewer's zone."""
    if moment is None:
        return ""
    zone = user_zone(current_user)
    local, today = moment.astimezone(zone), utcnow().astimezone(zone)
    if 0 <= (local.date() - today.date()).days < 6:
        return local.strftime("%a %H:%M")
    if local.year == today.year:
        return f"{local:%a} {local.day} {local:%b %H:%M}"
    return f"{local:%a} {local.day} {local:%b %Y %H:%M}"


@bp.context_processor
def sending_helpers():
    return {"waiting_send": waiting}


@bp.post("/conversations/<int:conversation_id>/messages/<int:message_pk>/take-back")
@login_required
def take_back(conversation_id: int, message_pk: int):
    """Undo (in the undo window), Cancel (a scheduled reply) or Edit (a held one): the reply
    is not sent and its words are back in this agent's composer."""
    conversation = visible_conversation(conversation_id)
    message = _message_in(conversation.id, message_pk)
    try:
        taken = send_later.take_back(message, current_user)
    except ReplyError as exc:
        return delivery_refused(conversation, exc)
    note = "Not sent: your reply is back in the composer."
    if taken.files:
        note += f" Attach {', '.join(taken.files)} again before sending."
    if is_htmx():
        return after_action(conversation, taken_back=note)
    flash(note)
    return redirect(url_for(".show", conversation_id=conversation.id), 303)


@bp.post("/conversations/<int:conversation_id>/messages/<int:message_pk>/send-now")
@login_required
def send_now(conversation_id: int, message_pk: int):
    """A scheduled reply, held or not, goes now."""
    return _decide(conversation_id, message_pk, send_later.send_now)
