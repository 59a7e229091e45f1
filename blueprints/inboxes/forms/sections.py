"""The inbox sections without a server: name and address, mode, identity, agents; and the
base every section form shares."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, ValidationError

from blueprints.form_fields import MultiCheckboxField, strip
from blueprints.inboxes.forms.fields import choices, radio
from extensions import get_settings
from models.inboxes import MODES, REPLY_TO_STYLES, SENDER_NAME_STYLES
from services import inbox_aliases, inbox_setup, signatures


class SectionForm(FlaskForm):
    """One section of an inbox's fields. Several sections share one HTML form (the wizard's
    IMAP and SMTP step, the settings' connection card), so a section carries no CSRF token of
    its own: CSRFProtect checks the page's one token on every POST."""

    class Meta:
        csrf = False

    SECRETS: tuple[str, ...] = ()

    def values(self) -> dict:
        return {name: f.data for name, f in self._fields.items() if name not in self.SECRETS}

    def error_count(self) -> int:
        return sum(1 for field in self if field.errors) + bool(self.form_errors)


class BasicsForm(SectionForm):
    name = StringField(
        "Inbox name",
        description="What agents see, e.g. Support or Billing.",
        validators=[
            DataRequired("Give the inbox a name agents will recognise, e.g. Support."),
            Length(max=120, message="Keep the name under 120 characters."),
        ],
        filters=[strip],
    )
    support_address = EmailField(
        "Support address",
        description="The address customers write to, e.g. support@yourcompany.com.",
        filters=[strip],
    )

    def __init__(self, *args, inbox_id: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.inbox_id = inbox_id

    def validate_support_address(self, field) -> None:
        try:
            address = validate_email(field.data, check_deliverability=False).normalized.lower()
        except EmailNotValidError as exc:
            raise ValidationError(f"Enter the address customers write to: {exc}") from None
        field.data = address
        taken = inbox_setup.inbox_with_address(address, except_id=self.inbox_id)
        if taken is not None:
            raise ValidationError(
                f"{address} is already the address of the inbox “{taken.name}”. "
                "Each address belongs to one inbox; choose another or edit that inbox."
            )
        alias = inbox_aliases.alias_of(address)
        if alias is not None:
            where = (
                "this inbox"
                if alias.inbox_id == self.inbox_id
                else f"the inbox “{alias.inbox.name}”"
            )
            raise ValidationError(
                f"{address} is already an alias of {where}. Each address belongs to one "
                "inbox once; remove that alias first or choose another address."
            )
        domain = get_settings().inbound_domain
        if domain and address.endswith("@" + domain) and address.startswith("reply+"):
            raise ValidationError(
                f"reply+…@{domain} addresses are Threadline's conversation addresses; "
                "use another address."
            )


class ModeForm(SectionForm):
    mode = radio(
        "How does mail reach this inbox?",
        (("forwarding", "Forwarding"), ("imap", "IMAP/SMTP")),
        MODES,
        "Choose Forwarding or IMAP/SMTP.",
    )


class IdentityForm(SectionForm):
    sender_name_style = radio(
        "Sender name on replies",
        (("agent_from_inbox", "Agent from inbox"), ("inbox", "Inbox only")),
        SENDER_NAME_STYLES,
        "Choose how replies are signed in the From name.",
    )
    signature = TextAreaField(
        "Signature",
        description="Added below every reply from this inbox, under the agent's own. HTML: "
        "links, bold, italics, lists; scripts and styles are removed. Variables: "
        + ", ".join(signatures.VARIABLES)
        + ".",
        validators=[
            Length(
                max=signatures.MAX_LENGTH,
                message=f"Keep the signature under {signatures.MAX_LENGTH:,} characters.",
            )
        ],
        filters=[strip],
    )
    reply_to_style = radio(
        "Where customers' answers go (Reply-To)",
        (("continuity", "Conversation address"), ("inbox", "The support address")),
        REPLY_TO_STYLES,
        "Choose where customers' answers go.",
    )
    subject_threading = BooleanField(
        "Join emails with the same subject from the same customer while the conversation is open"
    )
    auto_assign = BooleanField("Assign new conversations round robin to the agents who are online")


class AgentsForm(SectionForm):
    member_ids = MultiCheckboxField(
        "Agents who may work this inbox",
        description="Admins see every inbox; agents see only the inboxes they are members of. "
        "Auto-assignment picks among members.",
        validate_choice=False,  # a deactivated user gets the message below, not WTForms'
        filters=[lambda ids: list(dict.fromkeys(ids or []))],
    )

    def __init__(self, *args, auto_assign: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.auto_assign = auto_assign
        users = inbox_setup.active_users()
        self.member_ids.choices = choices(*((str(u.id), u.name) for u in users))
        self.notes = {str(u.id): u.email + (" · admin" if u.is_admin else "") for u in users}

    def validate_member_ids(self, field) -> None:
        ids = [int(i) for i in field.data if str(i).isdigit()]
        active = inbox_setup.active_user_ids(ids)
        if len(active) != len(field.data):
            raise ValidationError("Some of the chosen people no longer exist or are deactivated.")
        if self.auto_assign and not active:
            raise ValidationError(
                "Auto-assignment is on, so choose at least one agent "
                "(or turn auto-assignment off under identity)."
            )
