"""The Blocked senders tab's forms: add an entry (an address or a domain), and the CSRF-only
Remove button each entry has. What makes an entry unusable is services/spam.clean_pattern's
to say; the view puts its refusal beside the field."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField

from blueprints.form_fields import strip


class BlockForm(FlaskForm):
    pattern = StringField(
        "Block an address or a domain",
        description="An address (offers@spam.example) or a whole domain (spam.example): their "
        "mail to this inbox goes to Spam, never assigned or notified.",
        filters=[strip],
        render_kw={"placeholder": "spam.example", "autocomplete": "off", "maxlength": 320},
    )


class BlockActionForm(FlaskForm):
    """Only the CSRF token: the button is the whole request."""
