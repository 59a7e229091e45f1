"""Field pieces every feature's forms share (a non-feature module, like guards.py): the
strip filter, check boxes / radio buttons written as the pages always had them, and the
attribute writer every widget uses.

Templates render any of these with the one `render_field` macro in templates/_form.html."""

from __future__ import annotations

import wtforms.widgets
import wtforms.widgets.core
from markupsafe import Markup, escape
from wtforms import SelectMultipleField
from wtforms.widgets import ListWidget
from wtforms.widgets.core import clean_key


def attribute(key: str, value) -> str:
    """One HTML attribute as WTForms writes it: True the bare name, False nothing (""),
    `class_` / `data_x` spelt as HTML, the value escaped (quotes too)."""
    if value is False:
        return ""
    key = escape(clean_key(key))
    return key if value is True else f'{key}="{escape(value)}"'


def html_params(**kwargs) -> Markup:
    """WTForms' html_params, the same output character for character (attributes sorted by
    name), without its Markup.format per attribute: that formatting was most of the time a
    thread page spent drawing its dozen fields (about 65 µs a field, now about 10)."""
    return Markup(" ".join(p for p in (attribute(k, v) for k, v in sorted(kwargs.items())) if p))


def use_fast_html_params() -> None:
    """Have WTForms' widgets and labels write attributes with `html_params` above (create_app
    calls it; tests/unit/test_form_fields.py holds it equal to the original)."""
    for module in (wtforms.widgets.core, wtforms.widgets):
        module.html_params = html_params
    for widget in (wtforms.widgets.core.Input, wtforms.widgets.core.Button):
        widget.html_params = staticmethod(html_params)


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
