"""The signature editor both pages share: the inbox settings' Identity tab (and the wizard's
identity step) and the agent's profile. One form to check a signature's length, and the
preview: the sanitised HTML with its variables filled in (services/signatures.py), drawn on
the page at first and redrawn by htmx as one types (a POST, as it carries the CSRF token;
it writes nothing). Kept apart from both blueprints: neither imports the other's views."""

from __future__ import annotations

from flask import render_template
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import StringField, TextAreaField
from wtforms.validators import Length

from blueprints.form_fields import strip
from services import signatures

TOO_LONG = f"Keep the signature under {signatures.MAX_LENGTH:,} characters."


def signature_field(description: str) -> TextAreaField:
    return TextAreaField(
        "Signature",
        description=description,
        validators=[Length(max=signatures.MAX_LENGTH, message=TOO_LONG)],
        filters=[strip],
    )


class SignatureForm(FlaskForm):
    """The agent's own signature (profile)."""

    signature = signature_field(
        "Added to every reply you send, above the inbox's signature. HTML: links, bold, "
        "italics, lists; scripts and styles are removed. Variables: "
        + ", ".join(signatures.VARIABLES)
        + "."
    )


class PreviewForm(FlaskForm):
    """What the editor posts to see its preview: the signature as typed and, from the inbox
    settings or the wizard, the inbox's name and address as they stand on the page."""

    signature = signature_field("")
    inbox_name = StringField(filters=[strip])
    inbox_address = StringField(filters=[strip])


class _Inbox:
    """An inbox as far as the variables go: the one being set up may not exist yet."""

    def __init__(self, name: str, address: str) -> None:
        self.name, self.support_address, self.signature = name, address, ""


def preview(source: str, agent, inbox_name: str = "", inbox_address: str = "") -> Markup:
    """The signature as it will look, variables filled in: safe to draw, as `fill`
    sanitises the result."""
    values = signatures.variables(_Inbox(inbox_name, inbox_address), agent)
    return Markup(signatures.fill(source, values))


def signature_for(inbox, agent) -> Markup:
    """What a reply from `agent` in `inbox` is signed with (the composer shows it)."""
    return Markup(signatures.render(inbox, agent)[0])


def preview_response(form: PreviewForm, agent, inbox_name: str = "", inbox_address: str = ""):
    """The preview fragment; a signature that is too long says so instead (422)."""
    if not form.validate_on_submit():
        errors = form.signature.errors or ["The page is out of date: reload it."]
        return render_template("_signature_preview.html", error=" ".join(errors)), 422
    html = preview(form.signature.data, agent, inbox_name, inbox_address)
    return render_template("_signature_preview.html", html=html)
