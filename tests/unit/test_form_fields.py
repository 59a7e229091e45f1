"""The attribute writer WTForms' widgets use (blueprints/form_fields.py) writes exactly what
WTForms' own html_params writes."""

from __future__ import annotations

import pytest
from markupsafe import Markup
from wtforms import Form, SelectField, StringField, TextAreaField, widgets
from wtforms.widgets import core

from blueprints.form_fields import html_params, use_fast_html_params

CASES = [
    {},
    {"name": "q", "id": "search", "value": 'a "quoted" <b>&amp;</b>'},
    {"checked": True, "disabled": False, "class_": "wide", "for_": "x"},
    {"data_row_id": 7, "aria_describedby": "x-error", "aria_invalid": "true"},
    {"value": Markup("<em>kept</em>"), "placeholder": "#42", "size": 8, "required": True},
    {"title": "Ünïcode ✓", "value": None, "max": 0},
    {"weird<key": "v"},
]


def reference(**kwargs) -> str:
    """WTForms 3's html_params, as shipped (the source the fast one must match)."""
    params = []
    for k, v in sorted(kwargs.items()):
        k = core.clean_key(k)
        if v is True:
            params.append(k)
        elif v is False:
            pass
        else:
            v = core.escape(v).replace(Markup('"'), Markup("&quot;"))
            params.append(Markup('{k}="{v}"').format(k=k, v=v))
    return Markup(" ").join(params)


@pytest.mark.parametrize("kwargs", CASES)
def test_same_output_as_wtforms(kwargs):
    fast = html_params(**kwargs)
    assert isinstance(fast, Markup)
    assert str(fast) == str(reference(**kwargs))


def test_widgets_draw_the_same_once_installed(monkeypatch):
    class F(Form):
        name = StringField("Name", render_kw={"placeholder": 'say "hi"'})
        body = TextAreaField("Body")
        pick = SelectField("Pick", choices=["a <1>", "b"])

    def draw(writer):
        for module in (core, widgets):
            monkeypatch.setattr(module, "html_params", writer)
        for widget in (core.Input, core.Button):
            monkeypatch.setattr(widget, "html_params", staticmethod(writer))

    draw(reference)  # as WTForms ships
    before = [str(F(data={"name": 'x"y', "pick": "a <1>"})[f]()) for f in ("name", "body", "pick")]
    label_before = str(F().name.label(class_="inline"))
    use_fast_html_params()
    assert core.html_params is html_params
    after = [str(F(data={"name": 'x"y', "pick": "a <1>"})[f]()) for f in ("name", "body", "pick")]
    assert after == before
    assert str(F().name.label(class_="inline")) == label_before
