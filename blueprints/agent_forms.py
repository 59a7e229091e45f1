"""The Agents pages' forms: one per panel (create, role, access, password, inboxes).

The rules a person can fix by typing live here as `validate_<field>` and say what to change
in the words the pages always used; services/agents.py and services/users.py check the same
rules again (and the ones that need the acting admin), so a direct caller is held to them too.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    HiddenField,
    PasswordField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
)
from wtforms.validators import AnyOf, DataRequired, Length, ValidationError

from blueprints.form_fields import MultiCheckboxField, strip
from mail.addresses import is_email_address
from models import Inbox, User
from models.users import ROLES
from services.passwords import MAX_LENGTH, password_problem
from services.users import find_user_by_email

ROLE_CHOICES = [SelectChoice(role, role.capitalize()) for role in ROLES]


class AgentForm(FlaskForm):
    """A new account. An empty password means "generate one", shown once after saving."""

    name = StringField(
        "Name",
        validators=[DataRequired("the name is empty"), Length(max=120)],
        filters=[strip],
    )
    email = EmailField("Email (they sign in with it)", filters=[strip])
    role = SelectField(
        "Role",
        choices=ROLE_CHOICES,
        default="agent",
        validate_choice=False,  # AnyOf says it in the page's words
        validators=[AnyOf(ROLES, message=f"role must be one of {', '.join(ROLES)}")],
        description="Agents work the inboxes they are members of; admins see every inbox "
        "and these settings.",
    )
    password = PasswordField(
        "Password",
        validators=[Length(max=MAX_LENGTH)],
        description="At least 12 characters. Leave it empty to generate one, shown once "
        "after saving.",
    )

    def validate_email(self, field):
        address = field.data or ""
        if not is_email_address(address):
            raise ValidationError(f"{address or '(empty)'!r} is not an email address")
        if find_user_by_email(address):
            raise ValidationError(f"a user with email {address.lower()} already exists")

    def validate_password(self, field):
        email, name = self.email.data or "", self.name.data or ""
        if field.data and (weak := password_problem(field.data, email, name)):
            raise ValidationError(weak)


class RoleForm(FlaskForm):
    """Filled from the user (`obj=`): the current role is the checked one."""

    role = RadioField("Works as", choices=ROLE_CHOICES, validate_choice=False)

    def validate_role(self, field):
        if field.data not in ROLES:
            raise ValidationError(f"Role not changed: choose a role: {' or '.join(ROLES)}.")


class ActiveForm(FlaskForm):
    """Only the button's hidden value: 0 deactivates, 1 reactivates."""

    active = HiddenField(
        validators=[AnyOf(("0", "1"), message="Use the Deactivate or Reactivate button.")]
    )


class PasswordResetForm(FlaskForm):
    """An admin's reset: a chosen password, or none to generate one."""

    password = PasswordField(
        "New password",
        validators=[Length(max=MAX_LENGTH)],
        description="At least 12 characters, or leave it empty to generate one.",
    )
    revoke_api_token = BooleanField("Also revoke the API token", default=True)

    def __init__(self, agent: User, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.agent = agent
        self.revoke_api_token.label.text = f"Also revoke {agent.name}'s API token"
        self.revoke_api_token.description = (
            f"Resetting signs {agent.name} out of every browser and device."
        )

    def validate_password(self, field):
        if field.data and (weak := password_problem(field.data, self.agent.email, self.agent.name)):
            raise ValidationError(
                f"Password not changed: {weak}, or leave the field empty to generate one."
            )


class InboxesForm(FlaskForm):
    """The inboxes an agent is a member of; the choices are every inbox, by name."""

    inbox_ids = MultiCheckboxField(
        "Member of",
        coerce=int,
        validate_choice=False,  # validate_inbox_ids says which one went missing
        invalid_value_message="Tick inboxes from the list.",
    )

    def __init__(self, inboxes: list[Inbox], *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.inbox_ids.choices = [SelectChoice(inbox.id, inbox.name) for inbox in inboxes]
        self.addresses = {inbox.id: inbox.support_address for inbox in inboxes}

    def validate_inbox_ids(self, field):
        if field.process_errors:  # not numbers: the message is said already
            return
        known = {choice.value for choice in field.choices}
        if unknown := set(field.data or ()) - known:
            listed = ", ".join(map(str, sorted(unknown)))
            raise ValidationError(
                f"Inboxes not changed: inbox {listed} no longer exists; reload the page."
            )
