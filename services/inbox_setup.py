"""An inbox's fields as plain values, and what checking them needs beyond the fields
themselves: the setup wizard and the settings page validate them with the forms in
blueprints/inboxes/forms.py, and services/inbox_saving.py writes them to the inbox's rows.

Values travel as a flat dict of form strings (lists for folders and members, bools for
check boxes), so a draft can sit in Redis between wizard steps. Passwords never travel in
that dict: they are passed apart, and a blank password field means "keep the stored one".
"""

from __future__ import annotations

from sqlalchemy import func, select

from extensions import db, get_settings
from models import Inbox, User
from services.inbox_connections import ConnectionResult, test_imap, test_smtp

DEFAULTS: dict = {
    "name": "",
    "support_address": "",
    "mode": "forwarding",
    "imap_host": "",
    "imap_port": "993",
    "imap_security": "ssl",
    "imap_username": "",
    "imap_folders": ["INBOX"],
    "imap_poll_interval": "60",
    "imap_use_idle": True,
    "imap_after_import": "leave",
    "imap_move_to_folder": "",
    "imap_import_since": "",
    "imap_override": False,
    "smtp_host": "",
    "smtp_port": "587",
    "smtp_security": "starttls",
    "smtp_auth_method": "login",
    "smtp_username": "",
    "smtp_override": False,
    "sender_name_style": "agent_from_inbox",
    "signature": "",
    "reply_to_style": "continuity",
    "subject_threading": True,
    "auto_assign": False,
    "member_ids": [],
}


def values_from_inbox(inbox: Inbox) -> dict:
    values = dict(DEFAULTS)
    values.update(
        name=inbox.name,
        support_address=inbox.support_address,
        mode=inbox.mode,
        sender_name_style=inbox.sender_name_style,
        signature=inbox.signature,
        reply_to_style=inbox.reply_to_style,
        subject_threading=inbox.subject_threading,
        auto_assign=inbox.auto_assign,
        member_ids=[str(m.user_id) for m in inbox.members],
    )
    if inbox.imap is not None:
        imap = inbox.imap
        since = imap.import_since.date().isoformat() if imap.import_since else ""
        values.update(
            imap_host=imap.host,
            imap_port=str(imap.port),
            imap_security=imap.security,
            imap_username=imap.username,
            imap_folders=imap.folder_list,
            imap_poll_interval=str(imap.poll_interval_seconds),
            imap_use_idle=imap.use_idle,
            imap_after_import=imap.after_import,
            imap_move_to_folder=imap.move_to_folder or "",
            imap_import_since=since,
        )
    if inbox.smtp is not None and inbox.smtp.enabled:
        smtp = inbox.smtp
        values.update(
            smtp_host=smtp.host,
            smtp_port=str(smtp.port),
            smtp_security=smtp.security,
            smtp_auth_method=smtp.auth_method,
            smtp_username=smtp.username or "",
        )
    return values


def stored_passwords(inbox: Inbox) -> dict[str, str | None]:
    """What a blank password field keeps."""
    return {
        "imap": inbox.imap.password if inbox.imap else None,
        "smtp": inbox.smtp.password if inbox.smtp else None,
    }


# --- what the forms' rules look up (blueprints/inboxes/forms.py) ------------------------------


def inbox_with_address(address: str, except_id: int | None = None) -> Inbox | None:
    """The inbox (other than `except_id`) whose support address this is, in any case."""
    return db.session.scalar(
        select(Inbox).where(func.lower(Inbox.support_address) == address, Inbox.id != except_id)
    )


def active_users() -> list[User]:
    return db.session.scalars(select(User).where(User.active).order_by(User.name)).all()


def active_user_ids(ids: list[int]) -> set[int]:
    return set(db.session.scalars(select(User.id).where(User.id.in_(ids), User.active)))


def check_connections(
    values: dict, imap_password: str | None, smtp_password: str | None, oauth_token: str = ""
) -> tuple[dict[str, str], dict[str, ConnectionResult]]:
    """Live tests before saving: a failing one is an error unless its override is ticked.
    `oauth_token`: the inbox signs in with Microsoft 365 or Google (XOAUTH2)."""
    errors: dict[str, str] = {}
    results: dict[str, ConnectionResult] = {}
    if values["mode"] == "imap" and not values["imap_override"]:
        result = results["imap"] = test_imap(values, imap_password or "", oauth_token=oauth_token)
        if not result.ok:
            errors["imap_test"] = result.message
        else:
            missing = [f for f in values["imap_folders"] if f not in result.folders]
            if missing:
                errors["imap_folders"] = (
                    f"The server has no folder {', '.join(missing)}; "
                    f"it has {', '.join(result.folders)}."
                )
    if values["smtp_host"] and not values["smtp_override"]:
        result = results["smtp"] = test_smtp(values, smtp_password or "", oauth_token=oauth_token)
        if not result.ok:
            errors["smtp_test"] = result.message
    return errors, results


def smtp_required(values: dict) -> bool:
    """IMAP inboxes must be able to answer; forwarding ones may use the global SMTP."""
    return values["mode"] == "imap" and not get_settings().smtp_address
