"""The composer's Forward tab (templates/conversations/_forward.html): forward the whole
conversation, or one of its emails, to a third party with a note on top (services/forwards.py).

The tab is a third radio beside Reply and Note; its form is a form of its own, posted here.
What went wrong (no address, not an address, the customer's own address) is shown beside
To with a 422, the tab still open. POST only, CSRF like every thread form.
"""

from __future__ import annotations

from flask_login import current_user, login_required
from wtforms import SelectField, StringField, TextAreaField

from blueprints.conversations.blueprint import bp
from blueprints.conversations.forms import OrderedSelect, PlainTextArea, ThreadForm
from blueprints.conversations.pages import visible_conversation
from blueprints.conversations.thread_actions import after_action
from extensions import db
from models import Message
from services import forwards, participants
from services.replies import ReplyError

WHOLE = ""  # the `message` choice that forwards the whole conversation


class ForwardForm(ThreadForm):
    """`to`: one or more addresses (comma-separated); `note`: text above the forwarded
    email(s); `message`: the id of the email to forward, or "" for the whole conversation."""

    to = StringField("To", render_kw={"placeholder": "name@example.com", "autocomplete": "off"})
    message = SelectField(
        "What to forward", coerce=str, validate_choice=False, widget=OrderedSelect()
    )
    note = TextAreaField("Note on top", widget=PlainTextArea(), render_kw={"rows": 4})


def forward_form(conversation, chosen: int | None = None, shown=None) -> ForwardForm:
    """A blank Forward tab: the whole conversation, or the email `chosen`. `shown`: the
    messages the thread shows (a long thread's page reads no more than those)."""
    form = ForwardForm(formdata=None, message=str(chosen) if chosen else WHOLE)
    form.message.choices = _choices(conversation, shown)
    return form


def _choices(conversation, shown=None) -> list[tuple[str, str]]:
    """The whole conversation, then each email (the thread's shown ones, else all)."""
    emails = forwards.forwardable(conversation) if shown is None else shown
    choices = [(WHOLE, "The whole conversation (emails only, no notes)")]
    for message in emails:
        if message.direction == "incoming":
            who = f"Email from {message.from_display or 'the customer'}"
        elif message.direction == "outgoing" and not message.auto_flag:
            who = f"Our email to {message.to_addresses or 'the customer'}"
        else:
            continue  # notes, activity and automatic replies are never forwarded
        choices.append((str(message.id), f"{who}, {message.created_at:%d %b %H:%M}"))
    return choices


@bp.context_processor
def forwarding_helpers():
    return {"forward_form": forward_form, "third_party_of": third_party_of}


def third_party_of(message):
    """The third party a message is from or to (the thread's badge), else None."""
    return participants.participant_of(message) if participants.is_third_party(message) else None


@bp.post("/conversations/<int:conversation_id>/forward")
@login_required
def forward(conversation_id: int):
    conversation = visible_conversation(conversation_id)
    form = ForwardForm()
    form.message.choices = _choices(conversation)
    if not form.validate_on_submit():
        return _refused(conversation, form)
    chosen = None
    raw = (form.message.data or WHOLE).strip()
    if raw != WHOLE:
        chosen = db.session.get(Message, int(raw)) if raw.isdigit() and len(raw) < 10 else None
        if chosen is None or chosen.conversation_id != conversation.id:
            form.message.errors = ["Choose an email of this conversation to forward."]
            return _refused(conversation, form)
    try:
        forwards.forward(conversation, current_user, form.to.data, form.note.data or "", chosen)
    except ReplyError as exc:  # beside the field it is about (To, mostly)
        field = {"to": form.to, "message": form.message}.get(exc.field)
        (field.errors if field is not None else form.form_errors).append(str(exc))
        return _refused(conversation, form)
    return after_action(conversation)


def _refused(conversation, form: ForwardForm):
    """The thread again with the Forward tab open, showing what to fix (422)."""
    return after_action(conversation, 422, forms={"forward": form}, forwarding=True)
