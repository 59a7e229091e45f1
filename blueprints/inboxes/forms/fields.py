"""The field kinds the inbox forms need beyond WTForms' own, and short builders for the
radio groups and selects whose only rule is "one of these" (with the pages' own message)."""

from __future__ import annotations

from wtforms import RadioField, SelectChoice, SelectField
from wtforms.validators import AnyOf, ValidationError
from wtforms.widgets import TextArea

from blueprints.form_fields import ChoiceInput, MultiCheckboxField


def choices(*pairs: tuple[str, str]) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in pairs]


class FolderListField(MultiCheckboxField):
    """IMAP folders: one per line in a text area until a connection test lists the server's
    folders (`offer`), then a check box each. Both post the same name, so either is read."""

    widget = TextArea()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, validate_choice=False, **kwargs)
        self.not_on_server: dict[str, str] = {}

    def process_formdata(self, valuelist):
        items = [line.strip() for value in valuelist for line in value.splitlines()]
        self.data = list(dict.fromkeys(item for item in items if item))

    def _value(self):
        return "\n".join(self.data or [])

    def offer(self, folders: list[str]) -> None:
        """Check boxes for the server's folders, plus the chosen ones it does not have."""
        chosen = self.data or []
        self.not_on_server = {f: "not on the server" for f in chosen if f not in folders}
        self.choices = choices(*((f, f) for f in [*folders, *self.not_on_server]))
        self.type = "MultiCheckboxField"
        self.label.text, self.description = "Folders to import", ""


def radio(label: str, pairs, allowed, message: str) -> RadioField:
    return RadioField(
        label,
        choices=choices(*pairs),
        validate_choice=False,
        validators=[AnyOf(allowed, message=message)],
        option_widget=ChoiceInput("radio"),
    )


def select(label: str, pairs, allowed, message: str) -> SelectField:
    return SelectField(
        label,
        choices=choices(*pairs),
        validate_choice=False,
        validators=[AnyOf(allowed, message=message)],
    )


def port_number(form, field) -> None:
    if not field.data.isdigit() or not 1 <= int(field.data) <= 65535:
        raise ValidationError("Enter a port number from 1 to 65535.")


SECURITY_CHOICES = (("ssl", "SSL/TLS"), ("starttls", "STARTTLS"), ("none", "None (unencrypted)"))
SECURITY_MESSAGE = "Choose SSL/TLS, STARTTLS or none."
