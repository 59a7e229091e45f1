"""The rule form: name, all/any, a row per condition and per action (FieldList of FormField),
"stop", enabled, and the email to try the rule on. The rows become the dicts
services/automations/catalog.py validates; `rows()` drops the rows left on "choose…" and
remembers which form row each kept one came from, so a RuleError lands beside its row.

Every parameter of every action type is drawn (admin.js shows the chosen type's); only the
chosen type's parameters are read."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    FieldList,
    Form,
    FormField,
    SelectField,
    StringField,
    TextAreaField,
)

from blueprints.form_fields import MultiCheckboxField, strip
from blueprints.inboxes.forms.fields import choices, radio
from services.automations.catalog import ACTIONS, CONDITIONS, STATUSES, TEXT_OPS

BLANK = ("", "Choose…")


class ConditionRow(Form):
    field = SelectField(
        "Looks at",
        choices=choices(BLANK, *((k, spec.label) for k, spec in CONDITIONS.items())),
        validate_choice=False,
    )
    op = SelectField("Test", choices=choices(*TEXT_OPS.items()), validate_choice=False)
    value = StringField("Value", filters=[strip])

    def ops(self) -> dict[str, str]:
        spec = CONDITIONS.get(self.field.data or "")
        return spec.ops if spec else TEXT_OPS

    def as_dict(self) -> dict:
        return {"field": self.field.data, "op": self.op.data, "value": self.value.data}


class ActionRow(Form):
    type = SelectField(
        "Does",
        choices=choices(BLANK, *ACTIONS.items()),
        validate_choice=False,
    )
    user_id = SelectField("Assignee", validate_choice=False)
    user_ids = MultiCheckboxField("People", validate_choice=False)
    labels = StringField(
        "Labels", description="Separate labels with commas, e.g. vip, billing.", filters=[strip]
    )
    status = SelectField(
        "Status", choices=choices(*((s, s.capitalize()) for s in STATUSES)), validate_choice=False
    )
    hours = StringField("Hours", filters=[strip])
    text = TextAreaField("Note", filters=[strip])
    saved_reply_id = SelectField("Saved reply", validate_choice=False)

    # Which parameters each action type reads.
    PARAMETERS = {
        "assign": ("user_id",),
        "round_robin": ("user_ids",),
        "notify": ("user_ids",),
        "add_labels": ("labels",),
        "remove_labels": ("labels",),
        "set_status": ("status",),
        "snooze": ("hours",),
        "add_note": ("text",),
        "send_saved_reply": ("saved_reply_id",),
    }

    def as_dict(self) -> dict:
        kind = self.type.data or ""
        return {"type": kind, **{name: self[name].data for name in self.PARAMETERS.get(kind, ())}}


class RuleForm(FlaskForm):
    name = StringField("Name", description="e.g. VIP customers", filters=[strip])
    match = radio(
        "The rule applies when",
        (("all", "All conditions hold"), ("any", "Any condition holds")),
        ("all", "any"),
        "Choose whether all or any of the conditions must hold.",
    )
    conditions = FieldList(FormField(ConditionRow), min_entries=1, max_entries=20)
    actions = FieldList(FormField(ActionRow), min_entries=1, max_entries=20)
    stop_after = BooleanField("Stop processing further rules when this one matches")
    enabled = BooleanField("Enabled", default=True)
    sample = SelectField("Email to try it on", validate_choice=False)

    def __init__(self, *args, people=(), assignees=(), replies=(), samples=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.form_errors: list[str] = []
        self.conditions_error = self.actions_error = ""
        self.sample.choices = choices(*samples)
        self.options = {"people": people, "assignees": assignees, "replies": replies}
        self.fill_choices()
        if not self.match.data:
            self.match.data = "all"

    def fill_choices(self) -> None:
        """The action rows' people and saved replies (again after a row is added)."""
        for row in self.actions:
            row.user_id.choices = choices(BLANK, *self.options["assignees"])
            row.user_ids.choices = choices(*self.options["people"])
            row.saved_reply_id.choices = choices(BLANK, *self.options["replies"])

    def rows(self, name: str) -> tuple[list[dict], list]:
        """The filled-in rows of `conditions` or `actions` as dicts, and their form rows."""
        key = "field" if name == "conditions" else "type"
        kept = [entry for entry in self[name] if entry[key].data]
        return [entry.form.as_dict() for entry in kept], kept

    def show_error(self, where: str, message: str, rows: dict) -> None:
        """A RuleError beside its field or row (`rows`: the kept form rows per list)."""
        part, _, index = where.partition(".")
        if part in ("name", "match"):
            self[part].errors = [message]
        elif index and part in rows and int(index) < len(rows[part]):
            rows[part][int(index)].form.row_error = message
        elif part == "conditions":
            self.conditions_error = message
        elif part == "actions":
            self.actions_error = message
        else:
            self.form_errors.append(message)

    def error_count(self) -> int:
        rows = [*self.conditions, *self.actions]
        return (
            sum(bool(f.errors) for f in (self.name, self.match))
            + sum(bool(getattr(r.form, "row_error", "")) for r in rows)
            + bool(self.conditions_error)
            + bool(self.actions_error)
            + len(self.form_errors)
        )
