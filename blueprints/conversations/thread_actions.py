"""Everything a thread's forms POST: reply, assign, status, a reply's delivery (send again,
mark as sent), labels, snooze and fixing wrong threading (move an email into another
conversation, or split it off into a new one).

POST only, CSRF via base.html's hx-headers or the form's hidden field. Templates:
_composer.html, _controls.html, _labels.html, _snooze.html and the "Wrong conversation?" form
and delivery buttons in _message.html. The controls (assign, status), labels and snooze are
components that answer htmx with themselves (plus what the change also shows, out of band);
the composer, delivery and move forms get the whole thread back, since what they change runs
through it (the collision question, a message's state, the messages themselves).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user, login_required

from blueprints.conversations.blueprint import bp
from blueprints.conversations.pages import (
    ACTION_STATUSES,
    component_response,
    thread_response,
    visible_conversation,
)
from blueprints.htmx import is_htmx
from extensions import db
from models import Conversation, Message
from services.conversations import ConversationError, update_conversation
from services.labels import LabelError, conversation_labels, set_labels, split_names
from services.message_moves import MoveError, find_target, move_message, split_message
from services.replies import ReplyError, create_reply, mark_sent, retry_delivery
from services.reply_form import collisions, uploaded_attachments
from services.timezones import user_zone
from services.unread import mark_read

# Each component's partial, then the partials that also show what it changes: the status line
# shows the assignee and the status; the status buttons, the snooze line and the label chips'
# links (which keep the thread's status) show the status too.
COMPONENTS = {
    "assign": ("_controls", ("_meta",)),
    "status": ("_controls", ("_meta", "_labels", "_snooze")),
    "labels": ("_labels", ()),
    "snooze": ("_snooze", ("_meta", "_controls", "_labels")),
}

SNOOZE_PRESETS = {
    "1h": timedelta(hours=1),
    "4h": timedelta(hours=4),
    "1d": timedelta(days=1),
    "1w": timedelta(weeks=1),
}


@bp.context_processor
def label_helpers():
    return {"labels_of": conversation_labels, "snooze_presets": SNOOZE_PRESETS}


def after_action(conversation: Conversation, status: int = 200, **extra):
    """A plain form is redirected to the thread (no resubmit on reload); htmx gets the thread
    back, with the form's errors when it failed."""
    if not is_htmx() and status < 400:
        return redirect(url_for(".show", conversation_id=conversation.id), 303)
    mark_read(conversation, current_user.id)
    return thread_response(conversation, "conversations/_thread.html", status, **extra)


def after_change(conversation: Conversation, component: str, status: int = 200, **extra):
    """As after_action, but htmx gets only the component whose form this was (COMPONENTS)."""
    if not is_htmx():
        return after_action(conversation, status, **extra)
    mark_read(conversation, current_user.id)
    partial, also = COMPONENTS[component]
    return component_response(
        conversation,
        f"conversations/{partial}.html",
        tuple(f"conversations/{name}.html" for name in also),
        status,
        **extra,
    )


@bp.post("/conversations/<int:conversation_id>/reply")
@login_required
def reply(conversation_id: int):
    conversation = visible_conversation(conversation_id)
    form = {
        "text": request.form.get("text", ""),
        "cc": request.form.get("cc", ""),
        "bcc": request.form.get("bcc", ""),
        "private": request.form.get("private") == "1",
    }
    try:
        attachments = uploaded_attachments(request.files.getlist("attachments"))
        newer = collisions(conversation.id, request.form.get("seen", ""))
        if newer and request.form.get("confirm") != "1":  # ask before sending over news
            return after_action(
                conversation, 409, form=form, collision=newer, dropped_files=len(attachments)
            )
        create_reply(
            conversation,
            current_user,
            form["text"],
            private=form["private"],
            cc=form["cc"],
            bcc=form["bcc"],
            attachments=attachments,
        )
    except ReplyError as exc:
        return after_action(conversation, 422, form=form, errors={"reply": str(exc)})
    return after_action(conversation)


@bp.post("/conversations/<int:conversation_id>/assign")
@login_required
def assign(conversation_id: int):
    conversation = visible_conversation(conversation_id)
    raw = request.form.get("assignee_id", "").strip()
    if raw and not raw.isdigit():
        return after_change(
            conversation, "assign", 422, errors={"assign": "Choose a person from the list."}
        )
    try:
        update_conversation(conversation, current_user, assignee_id=int(raw) if raw else None)
    except ConversationError as exc:
        return after_change(conversation, "assign", 422, errors={"assign": str(exc)})
    return after_change(conversation, "assign")


@bp.post("/conversations/<int:conversation_id>/status")
@login_required
def set_status(conversation_id: int):
    conversation = visible_conversation(conversation_id)
    status = request.form.get("status", "")
    if status not in ACTION_STATUSES:
        message = f"Status must be one of {', '.join(ACTION_STATUSES)}."
        return after_change(conversation, "status", 422, errors={"status": message})
    update_conversation(conversation, current_user, status=status)
    return after_change(conversation, "status")


@bp.post("/conversations/<int:conversation_id>/messages/<int:message_id>/retry")
@login_required
def retry(conversation_id: int, message_id: int):
    """Send a failed reply, or one of unknown fate, again."""
    return _decide(conversation_id, message_id, retry_delivery)


@bp.post("/conversations/<int:conversation_id>/messages/<int:message_id>/mark-sent")
@login_required
def mark_as_sent(conversation_id: int, message_id: int):
    """A reply of unknown fate reached the customer: never send it again."""
    return _decide(conversation_id, message_id, lambda message: mark_sent(message, current_user))


def _decide(conversation_id: int, message_id: int, decision):
    conversation = visible_conversation(conversation_id)
    message = _message_in(conversation.id, message_id)
    try:
        decision(message)
    except ReplyError as exc:
        return after_action(conversation, 422, errors={"retry": str(exc)})
    return after_action(conversation)


def _message_in(conversation_id: int, message_id: int) -> Message:
    message = db.session.get(Message, message_id)
    if message is None or message.conversation_id != conversation_id:
        abort(404, "No such message.")
    return message


# --- labels and snooze ----------------------------------------------------------------------


@bp.post("/conversations/<int:conversation_id>/labels")
@login_required
def labels(conversation_id: int):
    """Replace the thread's labels with the comma-separated `labels` field."""
    conversation = visible_conversation(conversation_id)
    text = request.form.get("labels", "")
    try:
        set_labels(conversation, current_user, split_names(text))
    except LabelError as exc:
        return after_change(
            conversation, "labels", 422, errors={"labels": str(exc)}, labels_text=text
        )
    return after_change(conversation, "labels")


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
            return after_change(conversation, "snooze", 422, errors={"snooze": message})
        until = until.replace(tzinfo=zone) if until.tzinfo is None else until
        until = until.astimezone(UTC)
    else:
        message = "Choose how long to snooze, or a date and time."
        return after_change(conversation, "snooze", 422, errors={"snooze": message})
    try:
        update_conversation(conversation, current_user, status="snoozed", snoozed_until=until)
    except ConversationError as exc:
        return after_change(conversation, "snooze", 422, errors={"snooze": str(exc)})
    return after_change(conversation, "snooze")


# --- wrong threading ------------------------------------------------------------------------


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
        return after_action(source, 422, errors={"move": str(exc)}, move_message_id=message.id)
    return _moved(source, target, "split off into")
