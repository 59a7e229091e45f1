"""Saving checked inbox values (the forms in blueprints/inboxes/forms/ check them) to the
inbox and its IMAP, SMTP and member rows: the wizard creates an inbox at once, the settings
page saves one section. A blank password keeps the stored one. An inbox signed in with
Microsoft 365 or Google (services/oauth.py) keeps its tokens in its OAuthConnection; its
servers and user names are the provider's (`use_oauth_servers`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from extensions import db
from models import ImapSettings, Inbox, InboxMember, OAuthConnection, SmtpSettings
from services import oauth, signatures
from services.inbox_setup import values_from_inbox
from services.oauth_status import server_values


def _apply_basics(inbox: Inbox, values: dict) -> None:
    inbox.name = values["name"]
    inbox.support_address = values["support_address"]


def _apply_identity(inbox: Inbox, values: dict) -> None:
    inbox.sender_name_style = values["sender_name_style"]
    inbox.signature = signatures.sanitise(values["signature"])  # the wizard's too
    inbox.reply_to_style = values["reply_to_style"]
    inbox.subject_threading = bool(values["subject_threading"])
    inbox.auto_assign = bool(values["auto_assign"])


def _apply_agents(inbox: Inbox, values: dict) -> None:
    wanted = {int(i) for i in values["member_ids"]}
    inbox.members = [m for m in inbox.members if m.user_id in wanted]
    have = {m.user_id for m in inbox.members}
    inbox.members.extend(InboxMember(user_id=uid) for uid in sorted(wanted - have))


def _apply_connection(
    inbox: Inbox, values: dict, imap_password: str | None, smtp_password: str | None
) -> None:
    """Mode, IMAP and SMTP rows. A blank password keeps the stored one."""
    inbox.mode = values["mode"]
    if values["mode"] == "imap":
        # Set through inbox.imap, not ImapSettings(inbox=inbox): only that side cascades the
        # new row into the session of an inbox that is already stored.
        if inbox.imap is None:
            inbox.imap = ImapSettings()
        imap = inbox.imap
        imap.host = values["imap_host"]
        imap.port = int(values["imap_port"])
        imap.security = values["imap_security"]
        imap.username = values["imap_username"]
        if imap_password:
            imap.password = imap_password
        elif imap.password is None:  # signed in with a provider: the token replaces it
            imap.password = ""
        imap.folders = "\n".join(values["imap_folders"])
        imap.poll_interval_seconds = int(values["imap_poll_interval"])
        imap.use_idle = bool(values["imap_use_idle"])
        imap.after_import = values["imap_after_import"]
        imap.move_to_folder = values["imap_move_to_folder"] or None
        since = values["imap_import_since"]
        imap.import_since = (
            datetime.combine(date.fromisoformat(since), time(), UTC)
            if since
            else datetime.now(UTC) - timedelta(days=1)
        )
        imap.enabled = True
        # New settings deserve a fresh try: the poller skips inboxes that need attention.
        # Not a refused sign-in, though: no setting fixes that, only reconnecting does.
        if inbox.oauth is None or not inbox.oauth.last_error:
            inbox.needs_attention = None
        imap.consecutive_failures = 0
        imap.next_poll_at = None
    elif inbox.imap is not None:
        inbox.imap.enabled = False
    if values["smtp_host"]:
        if inbox.smtp is None:
            inbox.smtp = SmtpSettings()
        smtp = inbox.smtp
        smtp.host = values["smtp_host"]
        smtp.port = int(values["smtp_port"])
        smtp.security = values["smtp_security"]
        smtp.auth_method = values["smtp_auth_method"]
        if smtp.auth_method == "none":
            smtp.username, smtp.password = None, None
        else:
            smtp.username = values["smtp_username"]
            if smtp_password:
                smtp.password = smtp_password
        smtp.enabled = True
    elif inbox.smtp is not None:
        inbox.smtp = None  # back to the deployment's SMTP_* server


def create_inbox(
    values: dict, passwords: dict, forward_token: str, draft_id: str | None = None
) -> Inbox:
    """The wizard's inbox; the sign-in made in its draft (`draft_id`) becomes the inbox's."""
    inbox = Inbox(forward_token=forward_token)
    _apply_basics(inbox, values)
    _apply_identity(inbox, values)
    _apply_connection(inbox, values, passwords.get("imap"), passwords.get("smtp"))
    _apply_agents(inbox, values)
    db.session.add(inbox)
    if draft_id is not None:
        oauth.attach_draft(draft_id, inbox)
    db.session.commit()
    return inbox


def use_oauth_servers(inbox: Inbox, conn: OAuthConnection) -> None:
    """Just signed in: an IMAP/SMTP inbox reads and sends through the provider's servers as
    the mailbox signed in to, at once (commits). A forwarding inbox is left as it is: its
    Connection tab shows the provider's servers when IMAP/SMTP is chosen."""
    if inbox.mode != "imap":
        return
    values = {**values_from_inbox(inbox), **server_values(conn.provider, conn.mailbox)}
    _apply_connection(inbox, values, None, None)
    db.session.commit()


def save_section(inbox: Inbox, section: str, values: dict, passwords: dict) -> None:
    if section == "basics":
        _apply_basics(inbox, values)
    elif section == "connection":
        _apply_connection(inbox, values, passwords.get("imap"), passwords.get("smtp"))
    elif section == "identity":
        _apply_identity(inbox, values)
    elif section == "agents":
        _apply_agents(inbox, values)
    db.session.commit()
