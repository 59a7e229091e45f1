"""One Flask-WTF form per thread action: the composer, assign, status, labels, snooze, and
fixing wrong threading (move, split); ActionForm is the CSRF token alone, for buttons that are
the whole request (send again, mark as sent, mark as read).

A form parses and checks what the request says (`validate_<field>`); what needs the database
or is shared with the API (addresses, who may be assigned, labels' limits, the move's target)
is the service's to refuse, and the view adds that refusal to `form.form_errors`. The HTML
field names are the ones the API, the tests and old tabs post: `for` (a snooze preset),
`until`, `assignee_id`, `labels`, `target`, `text`, `to`, `cc`, `bcc`, `private`, `seen`,
`confirm`, `resolve` ("Send and resolve"), `later` and `send_at` ("Send later"), `from`
(the address the reply goes out from, when the inbox has aliases). The
composer's Reply/Note tabs are the two values of `private` (ModeTabs); DraftForm is what the
composer autosaves (drafts.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from wtforms import (
    BooleanField,
    HiddenField,
    MultipleFileField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import ValidationError
from wtforms.widgets import DateTimeLocalInput

from blueprints.form_fields import attribute
from services import inbox_aliases, participants, reply_drafts
from services.bulk_actions import ACTIONS as BULK_ACTIONS
from services.labels import LabelError, clean_names, split_names
from services.replies import ReplyError, reply_all_recipients
from services.reply_form import uploaded_attachments

ACTION_STATUSES = ("open", "pending", "resolved")
SNOOZE_PRESETS = {
    "1h": timedelta(hours=1),
    "4h": timedelta(hours=4),
    "1d": timedelta(days=1),
    "1w": timedelta(weeks=1),
}
# `private` values that are not a note: the Reply tab (""), and the Forward tab ("forward",
# _composer.html), whose own form is posted elsewhere (forwarding.py).
NOT_A_NOTE = (False, "false", "", "forward")
SNOOZE_LABELS = {"1h": "1 hour", "4h": "4 hours", "1d": "1 day", "1w": "1 week"}


# --- widgets: the attributes in the order the page has always had them --------------------
# WTForms sorts attributes and opens a textarea with a newline; these keep the markup the
# workspace's tests and stylesheets know (`name="private" value="1" checked`, `>text</textarea>`).


def _attributes(first: dict, rest: dict) -> str:
    """`first` in its own order, then the caller's keywords (id, aria-*, class, ...), as
    WTForms writes each (form_fields.attribute)."""
    merged = {**first, **{k: v for k, v in rest.items() if k not in first}}
    return " ".join(p for p in (attribute(k, v) for k, v in merged.items()) if p)


class PlainTextArea:
    def __call__(self, field, **kwargs):
        kwargs.setdefault("id", field.id)
        attrs = _attributes({"id": kwargs.pop("id"), "name": field.name}, kwargs)
        return Markup(f"<textarea {attrs}>{escape(field._value())}</textarea>")


class OrderedCheckbox:
    def __call__(self, field, **kwargs):
        first = {
            "type": "checkbox",
            "id": kwargs.pop("id", field.id),
            "name": field.name,
            "value": kwargs.pop("value", "1"),
            "checked": bool(field.data),
        }
        return Markup(f"<input {_attributes(first, kwargs)}>")


class ModeTabs:
    """The composer's Reply / Note tabs: two radios named `private` ("" a reply, "1" a note),
    drawn as `name="private" value="1" checked` like the old checkbox. Each radio is followed
    by its label; the template lays them out as tabs."""

    LABELS = (("", "Reply", "reply"), ("1", "Internal note", "note"))

    def __call__(self, field, **kwargs):
        base = kwargs.pop("id", field.id)
        out = []
        for value, label, kind in self.LABELS:
            first = {
                "type": "radio",
                "id": f"{base}-{kind}",
                "name": field.name,
                "value": value,
                "checked": bool(field.data) == bool(value),
            }
            attrs = _attributes(first, {"data-composer-mode": kind, **kwargs})
            out.append(
                f'<input {attrs}><label for="{first["id"]}" class="composer-tab '
                f'composer-tab-{kind}">{label}</label>'
            )
        return Markup("".join(out))


class OrderedFileInput:
    def __call__(self, field, **kwargs):
        first = {"type": "file", "name": field.name, "multiple": True}
        kwargs.setdefault("id", field.id)
        return Markup(f"<input {_attributes(first, kwargs)}>")


class OrderedHidden:
    def __call__(self, field, **kwargs):
        first = {"type": "hidden", "id": kwargs.pop("id", field.id), "name": field.name}
        first["value"] = kwargs.pop("value", field._value())
        return Markup(f"<input {_attributes(first, kwargs)}>")


class OrderedSelect:
    """`<option value="3" selected>`: value first, as the page always had it."""

    def __call__(self, field, **kwargs):
        kwargs.setdefault("id", field.id)
        options = "".join(
            f"<option {_attributes({'value': value, 'selected': selected}, {})}>"
            f"{escape(label)}</option>"
            for value, label, selected, _ in field.iter_choices()
        )
        attrs = _attributes({"id": kwargs.pop("id"), "name": field.name}, kwargs)
        return Markup(f"<select {attrs}>{options}</select>")


# --- the forms ------------------------------------------------------------------------------


class ThreadForm(FlaskForm):
    """A thread form: its CSRF token drawn as the page always had it (type, name, value),
    which scripts that read the composer's hidden fields rely on."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "csrf_token" in self:
            self.csrf_token.widget = OrderedHidden()


class ActionForm(ThreadForm):
    """Only the CSRF token: the button is the whole request."""


class ComposerForm(ThreadForm):
    """A reply or a private note. `to` is who the reply goes to (comma-separated, prefilled
    reply-all); a form without a `to` field at all (an old tab) means the contact (`recipients`).
    `seen` is the newest message the composer was drawn with (collision safety), `confirm` the
    "Send anyway" button."""

    text = TextAreaField("Reply", widget=PlainTextArea(), render_kw={"rows": 6})
    to = StringField("To")
    cc = StringField("CC", render_kw={"placeholder": "a@example.com, b@example.com"})
    bcc = StringField("BCC")
    private = BooleanField(
        "Private note (never emailed)", widget=ModeTabs(), false_values=NOT_A_NOTE
    )
    attachments = MultipleFileField("Attachments", widget=OrderedFileInput())
    seen = HiddenField(widget=OrderedHidden())
    confirm = HiddenField()
    resolve = HiddenField()  # posted by the "Send and resolve" button, never drawn as a field
    # "Send later": its Schedule button posts `later=1` with `send_at`, a date and time in the
    # agent's own zone (services/send_later.scheduled_moment reads and checks it).
    send_at = StringField("Send at", widget=DateTimeLocalInput())
    later = HiddenField()
    # "From": the inbox's primary address or one of its aliases (drawn only when it has
    # aliases; `offer_from` fills it); create_reply refuses any other address.
    from_address = SelectField(
        "From",
        name="from",
        coerce=lambda value: "" if value is None else str(value),
        validate_choice=False,
        widget=OrderedSelect(),
    )

    uploads: list = []
    draft = None  # the agent's saved draft the composer was drawn from (composer_form)
    addressee = None  # how "Reply to …" names the person To is prefilled with (composer_form)

    def validate_attachments(self, field):
        """Each upload within ATTACHMENT_MAX_BYTES (the error names the file)."""
        try:
            self.uploads = uploaded_attachments(field.data or [])
        except ReplyError as exc:
            raise ValidationError(str(exc)) from None

    @property
    def recipients(self) -> str | None:
        """The posted To, or None when the form had no To field (create_reply: the contact)."""
        if not self.to.raw_data:  # [] when not posted, None when drawn without formdata
            return None
        return self.to.data or ""

    @property
    def confirmed(self) -> bool:
        """The collision's "Send anyway" (`confirm=1`) or "Send anyway and resolve" (`resolve`)."""
        return self.confirm.data in ("1", "resolve")

    @property
    def and_resolve(self) -> bool:
        return self.resolve.data == "1" or self.confirm.data == "resolve"

    @property
    def send_later(self) -> bool:
        return self.later.data == "1"

    def offer_from(self, inbox) -> None:
        """The addresses the reply may go out from: the primary, then each alias."""
        self.from_address.choices = [(a, a) for a in inbox_aliases.addresses_of(inbox)]

    @property
    def sender(self) -> str | None:
        """The posted From, or None when the form had none (create_reply: the alias the
        customer wrote to, else the primary)."""
        if not self.from_address.raw_data:
            return None
        return self.from_address.data or ""


class DraftForm(ThreadForm):
    """What the composer autosaves as the agent types: the tab (`private`), text, To, CC, BCC.
    Addresses are kept as typed; they are checked when the reply is sent."""

    text = TextAreaField()
    to = StringField()
    cc = StringField()
    bcc = StringField()
    private = BooleanField(false_values=NOT_A_NOTE)

    @property
    def kind(self) -> str:
        return "note" if self.private.data else "reply"


def _choice(value) -> str:
    return "" if value is None else str(value)


class AssignForm(ThreadForm):
    """`assignee_id`: a member's id, or empty for nobody. Whether that person may take the
    conversation is the service's question."""

    assignee_id = SelectField(
        "Assignee", coerce=_choice, validate_choice=False, widget=OrderedSelect()
    )

    def validate_assignee_id(self, field):
        if field.data.strip() and not field.data.strip().isdigit():
            raise ValidationError("Choose a person from the list.")

    @property
    def assignee(self) -> int | None:
        raw = self.assignee_id.data.strip()
        return int(raw) if raw else None


class StatusForm(ThreadForm):
    """`status`: the button pressed (open, pending, resolved). `next=1` (the header's form
    and the `e` key send it): after resolving, open the next conversation of the list."""

    status = HiddenField()
    next = HiddenField()

    @property
    def and_next(self) -> bool:
        return self.status.data == "resolved" and self.next.data == "1"

    def validate_status(self, field):
        if field.data not in ACTION_STATUSES:
            raise ValidationError(f"Status must be one of {', '.join(ACTION_STATUSES)}.")


class LabelsForm(ThreadForm):
    """`labels`: comma-separated names; the whole set replaces the thread's labels."""

    labels = StringField("Labels", render_kw={"placeholder": "billing, urgent", "maxlength": 500})
    names: list[str] = []

    def validate_labels(self, field):
        try:
            self.names = clean_names(split_names(field.data))
        except LabelError as exc:
            raise ValidationError(str(exc)) from None


class SnoozeForm(ThreadForm):
    """A preset (`for`: 1h, 4h, 1d, 1w, one button each) or `until`, a date and time in the
    agent's own time zone (`zone`: their profile's, UTC until they set one)."""

    snooze_for = HiddenField(name="for")
    until = StringField("or until", widget=DateTimeLocalInput())
    moment: datetime | None = None

    def __init__(self, *args, zone: tzinfo = UTC, **kwargs):
        super().__init__(*args, **kwargs)
        self.zone = zone

    def validate_until(self, field):
        raw = (field.data or "").strip()
        if self.snooze_for.data in SNOOZE_PRESETS:
            self.moment = datetime.now(UTC) + SNOOZE_PRESETS[self.snooze_for.data]
            return
        if not raw:
            raise ValidationError("Choose how long to snooze, or a date and time.")
        try:
            until = datetime.fromisoformat(raw)
        except ValueError:
            zone = getattr(self.zone, "key", str(self.zone))
            raise ValidationError(f"Give the date and time as YYYY-MM-DD HH:MM ({zone}).") from None
        until = until.replace(tzinfo=self.zone) if until.tzinfo is None else until
        self.moment = until.astimezone(UTC)


class MoveForm(ThreadForm):
    """`target`: the conversation to move the email into, as "#42" or "42" (the service
    finds it, among the agent's inboxes)."""

    target = StringField(
        "Move this email to conversation",
        render_kw={"placeholder": "#42", "size": 8, "required": True},
    )


def composer_form(conversation, agent_id: int, drafts=None, shown=()) -> ComposerForm:
    """The composer as the agent left it (their draft), else a new reply to everyone on the
    customer's latest email (reply-all: services/replies.reply_all_recipients). A draft saved
    without a To (one from before To could be edited) gets reply-all's To. `drafts`: the
    conversation's drafts when already read (reply_drafts.on_conversation); `shown`: the
    messages the thread shows, where the latest email usually is."""
    if drafts is None:
        drafts = reply_drafts.on_conversation(conversation.id)
    draft = drafts.of(agent_id)
    to, cc = "", []
    if draft is None or not draft.to:
        latest = next((m for m in reversed(shown) if m.direction == "incoming"), None)
        to, cc = reply_all_recipients(conversation, latest)
    if draft is not None:
        form = ComposerForm(
            formdata=None,
            text=draft.text,
            to=draft.to or to,
            cc=draft.cc,
            bcc=draft.bcc,
            private=draft.kind == "note",
        )
    else:
        form = ComposerForm(formdata=None, to=to, cc=", ".join(cc))
    form.draft = draft
    form.addressee = participants.name_for(conversation, (form.to.data or "").split(",")[0])
    form.offer_from(conversation.inbox)
    latest = next((m for m in reversed(shown) if m.direction == "incoming"), None)
    form.from_address.data = inbox_aliases.reply_from(conversation, latest) or (
        conversation.inbox.support_address.lower()
    )
    return form


class LazyForms(dict):
    """Forms by name, each built the first time it is asked for: a thread drawn from kept
    parts (blueprints/fragment_cache.py) asks for few of them. `posted`: the forms that
    failed, drawn instead of blank ones (their names in `.posted`)."""

    def __init__(self, factories: dict, posted: dict | None = None):
        super().__init__(posted or {})
        self.factories = factories
        self.posted = frozenset(posted or ())

    def __missing__(self, name):
        if name not in self.factories:
            raise KeyError(name)
        form = self[name] = self.factories[name]()
        return form

    def __contains__(self, name) -> bool:
        return dict.__contains__(self, name) or name in self.factories

    def get(self, name, default=None):
        return self[name] if name in self else default

    def failed(self, name):
        """The form if it was posted and failed, else None: what a page shows the errors of
        (a blank form has none, so it is not built just to show none)."""
        return dict.get(self, name) if name in self.posted else None


def thread_forms(
    conversation, members: list, labels: list, agent_id: int, drafts=None, shown=()
) -> LazyForms:
    """The thread's forms as the page draws them: empty (the composer: the agent's draft, or
    reply-all), or showing what the conversation is now (its assignee among `members`, its
    `labels`). Split and the delivery buttons are the same blank form (a CSRF token alone):
    built once; a refused one is a posted form of its own (thread_actions)."""

    def assign() -> AssignForm:
        form = AssignForm(formdata=None, assignee_id=conversation.assignee_id)
        form.assignee_id.choices = [("", "Unassigned")] + [
            (str(member.id), member.name + (" (me)" if member.id == agent_id else ""))
            for member in members
        ]
        return form

    forms = LazyForms(
        {
            "composer": lambda: composer_form(conversation, agent_id, drafts, shown),
            "assign": assign,
            "status": lambda: StatusForm(formdata=None),
            "labels": lambda: LabelsForm(
                formdata=None, labels=", ".join(label.display_name for label in labels)
            ),
            "snooze": lambda: SnoozeForm(formdata=None),
            "move": lambda: MoveForm(formdata=None),
            "split": lambda: forms["delivery"],
            "delivery": lambda: ActionForm(formdata=None),
        }
    )
    return forms


class BulkForm(ThreadForm):
    """The list's bulk bar: `ids` are the ticked rows, `action` the button pressed (assign,
    label, open, pending, resolved), with `assignee_id` (empty: unassign) or `labels` (to
    add, comma-separated). services/bulk_actions.py checks each conversation."""

    ids = SelectMultipleField("Conversations", coerce=int, validate_choice=False)
    action = HiddenField()
    assignee_id = SelectField(
        "Assign to", coerce=_choice, validate_choice=False, widget=OrderedSelect()
    )
    labels = StringField("Add label", render_kw={"placeholder": "billing", "maxlength": 500})
    names: list[str] = []

    def validate_action(self, field):
        if field.data not in BULK_ACTIONS:
            raise ValidationError("Choose what to do with the selected conversations.")

    def validate_assignee_id(self, field):
        if (field.data or "").strip() and not field.data.strip().isdigit():
            raise ValidationError("Choose a person from the list.")

    def validate_labels(self, field):
        if self.action.data != "label":
            return
        try:
            self.names = clean_names(split_names(field.data))
        except LabelError as exc:
            raise ValidationError(str(exc)) from None
        if not self.names:
            raise ValidationError("Type the label to add.")

    @property
    def assignee(self) -> int | None:
        raw = (self.assignee_id.data or "").strip()
        return int(raw) if raw else None

    @property
    def problems(self) -> list[str]:
        """Every error of the form, one line each, for the bar's message."""
        return [message for messages in self.errors.values() for message in messages]
