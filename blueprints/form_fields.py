"""Field pieces every feature's forms share (a non-feature module, like guards.py): the
strip filter, and check boxes / radio buttons written as the pages always had them.

Templates render any of these with the one `render_field` macro in templates/_form.html."""

from __future__ import annotations

from markupsafe import Markup
from wtforms import SelectMultipleField
from wtforms.widgets import ListWidget, html_params


def strip(value: str | None) -> str:
    """Text as typed without the spaces around it; a field missing from the post is empty."""
    return (value or "").strip()


class ChoiceInput:
    """A radio button or check box with `value="x" checked` last, as the pages always wrote
    them (WTForms' own widget sorts `checked` first; tests and CSS read the old order)."""

    def __init__(self, input_type: str):
        self.input_type = input_type

    def __call__(self, field, **kwargs):
        kwargs.setdefault("id", field.id)
        params = html_params(name=field.name, type=self.input_type, value=field._value(), **kwargs)
        return Markup(f"<input {params}{' checked' if field.checked else ''}>")


class MultiCheckboxField(SelectMultipleField):
    """A select-many as a group of check boxes (render_field draws it as a fieldset)."""

    widget = ListWidget(prefix_label=False)
    option_widget = ChoiceInput("checkbox")
