"""One Flask-WTF form per screen of two-factor sign-in."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from blueprints.form_fields import strip
from services.passwords import MAX_LENGTH


class SignInCodeForm(FlaskForm):
    """The second step of signing in: a code from the app, or a recovery code."""

    code = StringField(
        "Code",
        validators=[
            DataRequired("Type the 6-digit code from your authenticator app, or a recovery code."),
            Length(max=40, message="That is too long for a code; type the 6 digits."),
        ],
        filters=[strip],
    )


class ConfirmCodeForm(FlaskForm):
    """Setting up: the first code from the app proves it has the secret."""

    code = StringField(
        "Code from the app",
        validators=[
            DataRequired("Type the 6-digit code your app shows for Threadline."),
            Length(max=40, message="That is too long for a code; type the 6 digits."),
        ],
        filters=[strip],
    )


class PasswordForm(FlaskForm):
    """Turning two-factor sign-in off, or new recovery codes: the password says it is you."""

    password = PasswordField(
        "Your password",
        validators=[
            DataRequired("Type the password you sign in with."),
            Length(max=MAX_LENGTH),
        ],
    )


class ActionForm(FlaskForm):
    """Only the CSRF token: the button is the whole request."""
