"""Thread actions beyond reply/assign/status: labels, snooze and fixing wrong threading
(move an email into another conversation, or split it off into a new one).

Routes live on the conversations blueprint; templates: _labels.html, _snooze.html and the
"Wrong conversation?" form in _messages.html.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user, login_required

from blueprints.conversations import after_action, bp, visible_conversation
from blueprints.htmx import is_htmx
from extensions import db
from models import Message
from services.conversations import ConversationError, update_conversation
from services.labels import LabelError, conversation_labels, set_labels, split_names
from services.message_moves import MoveError, find_target, move_message, split_message
from services.timezones import user_zone

SNOOZE_PRESETS = {
    "1h": timedelta(hours=1),
    "4h": timedelta(hours=4),
    "1d": timedelta(days=1),
    "1w": timedelta(weeks=1),
}


@bp.context_processor
def label_helpers():
    return {"labels_of": conversation_labels, "snooze_presets": SNOOZE_PRESETS}


@bp.post("/conversations/<int:conversation_id>/labels")
@login_required
def labels(conversation_id: int):
    """Replace the thread's labels with the comma-separated `labels` field."""
    conversation = visible_conversation(conversation_id)
    text = request.form.get("labels", "")
    try:
        set_labels(conversation, current_user, split_names(text))
    except LabelError as exc:
        db.session.rollback()
        return after_action(conversation, 422, errors={"labels": str(exc)}, labels_text=text)
    return after_action(conversation)


@bp.post("/conversations/<int:conversation_id>/snooze")
@login_required
def snooze(conversation_id: int):
    """Snooze for a preset (`for`: 1h, 4h, 1d, 1w) or until `until`, a date and time in the
    agent's own time zone (their profile; UTC until they set one)."""
    conversation = visible_conversation(conversation_id)
    preset, raw = request.form.get("for", ""), request.form.get("until", "").strip()
    zone = user_zone(current_user)
    if preset in SNOOZE_PRESETS:
        until = datetime.now(UTC) + SNOOZE_PRESETS[preset]
    elif raw:
        try:
            until = datetime.fromisoformat(raw)
        except ValueError:
            message = f"Give the date and time as YYYY-MM-DD HH:MM ({zone.key})."
            return after_action(conversation, 422, errors={"snooze": message})
        until = until.replace(tzinfo=zone) if until.tzinfo is None else until
        until = until.astimezone(UTC)
    else:
        message = "Choose how long to snooze, or a date and time."
        return after_action(conversation, 422, errors={"snooze": message})
    try:
        update_conversation(conversation, current_user, status="snoozed", snoozed_until=until)
    except ConversationError as exc:
        db.session.rollback()
        return after_action(conversation, 422, errors={"snooze": str(exc)})
    return after_action(conversation)


# --- wrong threading ------------------------------------------------------------------------


def _message_in(conversation_id: int, message_id: int) -> Message:
    message = db.session.get(Message, message_id)
    if message is None or message.conversation_id != conversation_id:
        abort(404, "No such message.")
    return message


def _moved(source, target, verb: str):
    """Back to the source thread, saying where the email went (with a link)."""
    notice = {"text": f"Email {verb} #{target.display_number}.", "conversation": target}
    if is_htmx():
        return after_action(source, moved=notice)
    flash(f"Email {verb} #{target.display_number}.")
    return redirect(url_for(".show", conversation_id=source.id), 303)


@bp.post("/conversations/<int:conversation_id>/messages/<int:message_id>/move")
@login_required
def move(conversation_id: int, message_id: int):
    """Move an email into the conversation numbered `target` ("#42") of the same inbox."""
    source = visible_conversation(conversation_id)
    message = _message_in(source.id, message_id)
    try:
        target = find_target(source, current_user, request.form.get("target", ""))
        move_message(message, source, target, current_user)
    except MoveError as exc:
        db.session.rollback()
        return after_action(source, 422, errors={"move": str(exc)}, move_message_id=message.id)
    return _moved(source, target, "moved to")


@bp.post("/conversations/<int:conversation_id>/messages/<int:message_id>/split")
@login_required
def split(conversation_id: int, message_id: int):
    """Split an email off into a new conversation of its own."""
    source = visible_conversation(conversation_id)
    message = _message_in(source.id, message_id)
    try:
        target = split_message(message, source, current_user)
    except MoveError as exc:
        db.session.rollback()
        return after_action(source, 422, errors={"move": str(exc)}, move_message_id=message.id)
    return _moved(source, target, "split off into")
