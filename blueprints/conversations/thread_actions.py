"""Everything a thread's forms POST: reply, assign, status, a reply's delivery (send again,
mark as sent), labels, snooze, fixing wrong threading (move an email into another
conversation, or split it off into a new one) and marking the thread read.

Each view parses its form (forms.py: `validate_on_submit`), calls a service and renders; a
service's refusal is added to the form's errors and the form is drawn again with a 4xx.
POST only, CSRF via base.html's hx-headers or the form's hidden field. Templates:
_composer.html, _controls.html, _labels.html, _snooze.html and the "Wrong conversation?" form
and delivery buttons in _message.html. The controls (assign, status), labels and snooze are
components that answer htmx with themselves (plus what the change also shows, out of band);
the composer, delivery and move forms get the whole thread back, since what they change runs
through it (the collision question, a message's state, the messages themselves).
"""

from __future__ import annotations

from flask import abort, flash, redirect, url_for
from flask_login import current_user, login_required

from blueprints.conversations.blueprint import bp
from blueprints.conversations.forms import (
    ActionForm,
    AssignForm,
    ComposerForm,
    LabelsForm,
    MoveForm,
    SnoozeForm,
    StatusForm,
)
from blueprints.conversations.pages import (
    component_response,
    next_after_resolve,
    thread_response,
    visible_conversation,
)
from blueprints.htmx import is_htmx
from extensions import db
from models import Conversation, Message
from services.conversations import ConversationError, update_conversation
from services.labels import LabelError, set_labels
from services.message_moves import MoveError, find_target, move_message, split_message
from services.replies import (
    ReplyError,
    create_reply,
    mark_sent,
    reply_and_resolve,
    retry_delivery,
)
from services.reply_form import collisions
from services.send_later import TooLate, scheduled_moment, undo_window
from services.timezones import user_zone
from services.unread import mark_read

# Each component's partial, then the partials that also show what it changes: the status line
# shows the assignee and the status; the status buttons, the snooze line and the label chips'
# links (which keep the thread's status) show the status too.
COMPONENTS = {
    "assign": ("_controls", ("_meta",)),
    "status": ("_controls", ("_meta", "_labels", "_snooze", "_spam")),
    "labels": ("_labels", ()),
    "snooze": ("_snooze", ("_meta", "_controls", "_labels", "_spam")),
}


def after_action(conversation: Conversation, status: int = 200, **extra):
    """A plain form is redirected to the thread (no resubmit on reload); htmx gets the thread
    back, with the failed form (`forms`) showing what to fix. The agent acted on the thread
    as it is now: it is read for them (an explicit POST, like `read`)."""
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


@bp.post("/conversations/<int:conversation_id>/read")
@login_required
def read(conversation_id: int):
    """The thread is on the agent's screen: the page and a poll that brought news ask for
    this themselves (_messages.html), since a GET never writes."""
    conversation = visible_conversation(conversation_id)
    mark_read(conversation, current_user.id)
    return "", 204


@bp.post("/conversations/<int:conversation_id>/reply")
@login_required
def reply(conversation_id: int):
    conversation = visible_conversation(conversation_id)
    form = ComposerForm()
    form.offer_from(conversation.inbox)
    if not form.validate_on_submit():  # an attachment over the limit
        return after_action(conversation, 422, forms={"composer": form})
    newer = collisions(conversation.id, form.seen.data)
    if newer and not form.confirmed:  # ask before sending over news
        return after_action(
            conversation,
            409,
            forms={"composer": form},
            collision=newer,
            dropped_files=len(form.uploads),
        )
    send = reply_and_resolve if form.and_resolve else create_reply  # "Send and resolve"
    try:
        send_after, scheduled = _when_to_send(form)
        send(
            conversation,
            current_user,
            form.text.data,
            private=form.private.data,
            to=form.recipients,
            cc=form.cc.data,
            bcc=form.bcc.data,
            attachments=form.uploads,
            send_after=send_after,
            scheduled=scheduled,
            from_address=form.sender,
        )
    except ReplyError as exc:  # what is wrong with To (or the time) is shown beside it
        field = {"to": form.to, "send_at": form.send_at, "from_address": form.from_address}.get(
            exc.field
        )
        (field.errors if field is not None else form.form_errors).append(str(exc))
        return after_action(conversation, 422, forms={"composer": form})
    return after_action(conversation)


def _when_to_send(form: ComposerForm):
    """ "Send later": the time typed, in the agent's zone (scheduled). "Send": after the undo
    window (SEND_UNDO_SECONDS), or at once when it is off; a note at once."""
    if form.send_later:
        return scheduled_moment(form.send_at.data, user_zone(current_user)), True
    return (None if form.private.data else undo_window()), False


@bp.post("/conversations/<int:conversation_id>/assign")
@login_required
def assign(conversation_id: int):
    conversation = visible_conversation(conversation_id)
    form = AssignForm()
    if not form.validate_on_submit():
        return after_change(conversation, "assign", 422, forms={"assign": form})
    try:
        update_conversation(conversation, current_user, assignee_id=form.assignee)
    except ConversationError as exc:
        form.assignee_id.errors.append(str(exc))
        return after_change(conversation, "assign", 422, forms={"assign": form})
    return after_change(conversation, "assign")


@bp.post("/conversations/<int:conversation_id>/status")
@login_required
def set_status(conversation_id: int):
    conversation = visible_conversation(conversation_id)
    form = StatusForm()
    if not form.validate_on_submit():
        return after_change(conversation, "status", 422, forms={"status": form})
    update_conversation(conversation, current_user, status=form.status.data)
    if form.and_next and is_htmx():
        # "Resolve and go on" (the header's Resolve, the `e` key): the next conversation of
        # the list beside the thread opens in its place. Without a script the page stays.
        mark_read(conversation, current_user.id)
        return next_after_resolve(conversation)
    return after_change(conversation, "status")


@bp.post("/conversations/<int:conversation_id>/messages/<int:message_pk>/retry")
@login_required
def retry(conversation_id: int, message_pk: int):
    """Send a failed reply, or one of unknown fate, again."""
    return _decide(conversation_id, message_pk, retry_delivery)


@bp.post("/conversations/<int:conversation_id>/messages/<int:message_pk>/mark-sent")
@login_required
def mark_as_sent(conversation_id: int, message_pk: int):
    """A reply of unknown fate reached the customer: never send it again."""
    return _decide(conversation_id, message_pk, lambda message: mark_sent(message, current_user))


def _decide(conversation_id: int, message_pk: int, decision):
    conversation = visible_conversation(conversation_id)
    message = _message_in(conversation.id, message_pk)
    try:
        decision(message)
    except ReplyError as exc:
        return delivery_refused(conversation, exc)
    return after_action(conversation)


def delivery_refused(conversation: Conversation, exc: ReplyError):
    """What the thread says above its messages when a reply's delivery button is refused:
    422, or 409 when a send job took the reply meanwhile (services/send_later.TooLate)."""
    form = ActionForm()
    form.form_errors.append(str(exc))
    status = 409 if isinstance(exc, TooLate) else 422
    return after_action(conversation, status, forms={"delivery": form})


def _message_in(conversation_id: int, message_pk: int) -> Message:
    message = db.session.get(Message, message_pk)
    if message is None or message.conversation_id != conversation_id:
        abort(404, "No such message.")
    return message


# --- labels and snooze ----------------------------------------------------------------------


@bp.post("/conversations/<int:conversation_id>/labels")
@login_required
def labels(conversation_id: int):
    """Replace the thread's labels with the comma-separated `labels` field."""
    conversation = visible_conversation(conversation_id)
    form = LabelsForm()
    if not form.validate_on_submit():
        return after_change(conversation, "labels", 422, forms={"labels": form})
    try:
        set_labels(conversation, current_user, form.names)
    except LabelError as exc:
        form.labels.errors.append(str(exc))
        return after_change(conversation, "labels", 422, forms={"labels": form})
    return after_change(conversation, "labels")


@bp.post("/conversations/<int:conversation_id>/snooze")
@login_required
def snooze(conversation_id: int):
    """Snooze for a preset or until a date and time in the agent's own time zone (their
    profile; UTC until they set one): forms.SnoozeForm."""
    conversation = visible_conversation(conversation_id)
    form = SnoozeForm(zone=user_zone(current_user))
    if not form.validate_on_submit():
        return after_change(conversation, "snooze", 422, forms={"snooze": form})
    try:
        update_conversation(conversation, current_user, status="snoozed", snoozed_until=form.moment)
    except ConversationError as exc:
        form.until.errors.append(str(exc))
        return after_change(conversation, "snooze", 422, forms={"snooze": form})
    return after_change(conversation, "snooze")


# --- wrong threading ------------------------------------------------------------------------


def _moved(source, target, verb: str):
    """Back to the source thread, saying where the email went (with a link)."""
    notice = {"text": f"Email {verb} #{target.display_number}.", "conversation": target}
    if is_htmx():
        return after_action(source, moved=notice)
    flash(f"Email {verb} #{target.display_number}.")
    return redirect(url_for(".show", conversation_id=source.id), 303)


@bp.post("/conversations/<int:conversation_id>/messages/<int:message_pk>/move")
@login_required
def move(conversation_id: int, message_pk: int):
    """Move an email into the conversation numbered `target` ("#42") of the same inbox."""
    source = visible_conversation(conversation_id)
    message = _message_in(source.id, message_pk)
    form = MoveForm()
    try:
        target = find_target(source, current_user, form.target.data or "")
        move_message(message, source, target, current_user)
    except MoveError as exc:
        form.form_errors.append(str(exc))
        return after_action(source, 422, forms={"move": form}, move_message_pk=message.id)
    return _moved(source, target, "moved to")


@bp.post("/conversations/<int:conversation_id>/messages/<int:message_pk>/split")
@login_required
def split(conversation_id: int, message_pk: int):
    """Split an email off into a new conversation of its own."""
    source = visible_conversation(conversation_id)
    message = _message_in(source.id, message_pk)
    try:
        target = split_message(message, source, current_user)
    except MoveError as exc:
        form = ActionForm()
        form.form_errors.append(str(exc))
        return after_action(source, 422, forms={"split": form}, move_message_pk=message.id)
    return _moved(source, target, "split off into")
