"""The settings' last section: archive or unarchive (the button is the whole request) and
delete an empty inbox (after ticking that it cannot be undone)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField
from wtforms.validators import DataRequired


class ArchiveForm(FlaskForm):
    """Only the CSRF token: Archive and Unarchive are buttons."""


class DeleteForm(FlaskForm):
    confirm = BooleanField(
        "I understand that deleting this inbox cannot be undone",
        validators=[DataRequired("Tick the box to confirm that the inbox is to be deleted.")],
    )
