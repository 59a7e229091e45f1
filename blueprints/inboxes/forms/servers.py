"""The IMAP and SMTP sections: a password that may be kept, the fields a connection test
needs first, and SMTP's "no host: the deployment's server"."""

from __future__ import annotations

from datetime import date

from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import DataRequired, ValidationError

from blueprints.form_fields import strip
from blueprints.inboxes.forms.fields import (
    SECURITY_CHOICES,
    SECURITY_MESSAGE,
    FolderListField,
    port_number,
    radio,
    select,
)
from blueprints.inboxes.forms.sections import SectionForm
from models.inboxes import AFTER_IMPORT, SECURITY, SMTP_AUTH

MIN_POLL, MAX_POLL = 30, 86400
# What a "test connection" button needs filled in first (the part after imap_/smtp_).
CONNECTION_FIELDS = ("host", "port", "security", "username", "password", "auth_method")


class ServerForm(SectionForm):
    """IMAP or SMTP: a password that may be kept, and a live test (`check_sections`).

    Signed in with Microsoft 365 or Google (`oauth`, the inbox's or the draft's
    OAuthConnection), the server takes the token instead of a password (XOAUTH2) and the
    user name is the mailbox signed in to, whatever was posted."""

    def __init__(self, *args, kept_password: str | None = None, oauth=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.kept_password = kept_password
        self.oauth = oauth
        if oauth is not None:
            self.sign_in_as(oauth.mailbox)

    def sign_in_as(self, mailbox: str) -> None:
        self[self.SECRETS[0].replace("password", "username")].data = mailbox

    @property
    def password_field(self) -> PasswordField:
        return self[self.SECRETS[0]]

    def password(self) -> str | None:
        """The typed password, or the stored one when the field was left blank."""
        return self.password_field.data or self.kept_password

    def missing_for_test(self) -> list[str]:
        """What must be filled in before the test button can sign in."""
        self.validate()
        names = [n for n in self._fields if n.split("_", 1)[1] in CONNECTION_FIELDS]
        return [message for n in names for message in self[n].errors]


class ImapForm(ServerForm):
    SECRETS = ("imap_password",)

    imap_host = StringField(
        "IMAP host",
        description="e.g. imap.gmail.com or outlook.office365.com",
        validators=[DataRequired("Enter the IMAP server's host name, e.g. imap.example.com.")],
        filters=[strip],
    )
    imap_port = StringField("Port", validators=[port_number], filters=[strip])
    imap_security = select("Security", SECURITY_CHOICES, SECURITY, SECURITY_MESSAGE)
    imap_username = StringField(
        "User name",
        description="Often the full email address.",
        validators=[DataRequired("Enter the mailbox's user name (often the full address).")],
        filters=[strip],
    )
    imap_password = PasswordField("Password or app password")
    imap_folders = FolderListField(
        "Folders to import, one per line",
        description="Test the connection to pick from the server's folders.",
    )
    imap_poll_interval = StringField("Check for new mail every (seconds)", filters=[strip])
    imap_use_idle = BooleanField(
        "New mail at once with IMAP IDLE, when the server offers it",
        description="Off: new mail waits for the next check.",
    )
    imap_after_import = radio(
        "After a message is imported",
        (
            ("leave", "Leave it untouched (recommended)"),
            ("mark", "Mark it as read"),
            ("move", "Move it to a folder"),
            ("delete", "Delete it from the server"),
        ),
        AFTER_IMPORT,
        "Choose what happens to imported messages.",
    )
    imap_move_to_folder = StringField(
        "Folder to move imported messages to",
        description="Only used with “Move it to a folder”.",
        filters=[strip],
    )
    imap_import_since = StringField(
        "First import: messages since",
        description="Empty: messages from the last day.",
        filters=[strip],
    )
    imap_override = BooleanField(
        "Save anyway: I know the IMAP test failed, and no mail will arrive until it works."
    )

    def validate_imap_password(self, field) -> None:
        if not self.password() and self.oauth is None:
            raise ValidationError("Enter the password or app password of the mailbox.")

    def validate_imap_folders(self, field) -> None:
        if not field.data:
            raise ValidationError("Choose at least one folder to import (usually INBOX).")

    def validate_imap_poll_interval(self, field) -> None:
        if not field.data.isdigit() or not MIN_POLL <= int(field.data) <= MAX_POLL:
            raise ValidationError(f"Poll every {MIN_POLL} to {MAX_POLL} seconds.")

    def validate_imap_move_to_folder(self, field) -> None:
        if self.imap_after_import.data == "move" and not field.data:
            raise ValidationError("Name the folder imported messages move to.")

    def validate_imap_import_since(self, field) -> None:
        if not field.data:
            return
        try:
            since = date.fromisoformat(field.data)
        except ValueError:
            raise ValidationError("Enter a date as YYYY-MM-DD, or leave it empty.") from None
        if since > date.today():
            raise ValidationError("The first import cannot start in the future.")


class SmtpForm(ServerForm):
    SECRETS = ("smtp_password",)

    smtp_host = StringField(
        "SMTP host", description="e.g. smtp.gmail.com or smtp.office365.com", filters=[strip]
    )
    smtp_port = StringField("Port", validators=[port_number], filters=[strip])
    smtp_security = select("Security", SECURITY_CHOICES, SECURITY, SECURITY_MESSAGE)
    smtp_auth_method = select(
        "Authentication",
        (("login", "LOGIN"), ("plain", "PLAIN"), ("none", "None (trusted relay)")),
        SMTP_AUTH,
        "Choose LOGIN, PLAIN or no authentication.",
    )
    smtp_username = StringField("User name", filters=[strip])
    smtp_password = PasswordField("Password or app password")
    smtp_override = BooleanField(
        "Save anyway: I know the SMTP test failed, and replies will fail until it works."
    )

    def __init__(self, *args, required: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.required = required  # IMAP inboxes must answer; see inbox_setup.smtp_required

    def validate(self, extra_validators=None) -> bool:
        """Without a host the inbox uses the deployment's SMTP server: nothing else to check."""
        if self.smtp_host.data:
            return super().validate(extra_validators)
        if self.required:
            self.smtp_host.errors = [
                "Replies need an SMTP server: enter the inbox's SMTP host "
                "(or set SMTP_ADDRESS for the whole deployment)."
            ]
        return not self.required

    def _signs_in(self) -> bool:
        return self.smtp_auth_method.data in SMTP_AUTH and self.smtp_auth_method.data != "none"

    def validate_smtp_username(self, field) -> None:
        if self._signs_in() and not field.data:
            raise ValidationError("Enter the SMTP user name, or choose no authentication.")

    def sign_in_as(self, mailbox: str) -> None:
        super().sign_in_as(mailbox)
        self.smtp_auth_method.data = "login"  # XOAUTH2 in fact; "none" would skip the token

    def validate_smtp_password(self, field) -> None:
        if self._signs_in() and not self.password() and self.oauth is None:
            raise ValidationError("Enter the SMTP password, or choose no authentication.")
