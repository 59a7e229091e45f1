"""The Addresses tab's forms: add an alias (its address), and the CSRF-only buttons each
listed alias has (Remove, Send test email). What makes an address unusable (another inbox's,
the inbound domain's) needs the database: services/inbox_aliases.clean_address refuses it
and the view puts the refusal beside the field."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField

from blueprints.form_fields import strip


class AliasForm(FlaskForm):
    address = StringField(
        "Another address of this inbox",
        description="An address customers also write to, e.g. sales@yourcompany.com. Mail to "
        "it must reach Threadline (forward it to the forwarding address, or deliver it to the "
        "connected mailbox).",
        filters=[strip],
        render_kw={"placeholder": "sales@example.com", "autocomplete": "off"},
    )


class AliasActionForm(FlaskForm):
    """Only the CSRF token: the button is the whole request."""
