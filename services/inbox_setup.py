"""Inbox fields and their validation: one set of rules for the setup wizard and the inbox
settings page (services/inbox_saving.py writes the checked values to the inbox's rows).

Values travel as a flat dict of form strings (lists for folders and members, bools for
check boxes), so a draft can sit in Redis between wizard steps and a settings form can be
re-rendered exactly as typed. Passwords never travel in that dict: they are passed apart,
and a blank password field means "keep the stored one".
"""

from __future__ import annotations

from datetime import date

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select

from extensions import db, get_settings
from models import Inbox, User
from models.inboxes import (
    AFTER_IMPORT,
    MODES,
    REPLY_TO_STYLES,
    SECURITY,
    SENDER_NAME_STYLES,
    SMTP_AUTH,
)
from services.inbox_connections import ConnectionResult, test_imap, test_smtp

MIN_POLL, MAX_POLL = 30, 86400

SECTIONS: dict[str, tuple[str, ...]] = {
    "basics": ("name", "support_address"),
    "mode": ("mode",),
    "imap": (
        "imap_host",
        "imap_port",
        "imap_security",
        "imap_username",
        "imap_folders",
        "imap_poll_interval",
        "imap_use_idle",
        "imap_after_import",
        "imap_move_to_folder",
        "imap_import_since",
        "imap_override",
    ),
    "smtp": (
        "smtp_host",
        "smtp_port",
        "smtp_security",
        "smtp_auth_method",
        "smtp_username",
        "smtp_override",
    ),
    "identity": (
        "sender_name_style",
        "signature",
        "reply_to_style",
        "subject_threading",
        "auto_assign",
    ),
    "agents": ("member_ids",),
}
LISTS = ("imap_folders", "member_ids")
BOOLS = ("imap_use_idle", "imap_override", "smtp_override", "subject_threading", "auto_assign")

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
    "imap_use_idle": False,
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


def read_section(form, section: str) -> dict:
    """This section's raw values from a submitted form (a MultiDict)."""
    values: dict = {}
    for name in SECTIONS[section]:
        if name in LISTS:
            # Folders come as check boxes after a test, or one per line before one.
            items = [line.strip() for v in form.getlist(name) for line in v.splitlines()]
            values[name] = list(dict.fromkeys(i for i in items if i))
        elif name in BOOLS:
            values[name] = form.get(name) in ("1", "on", "true", "yes")
        else:
            values[name] = (form.get(name) or "").strip()
    return values


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


# --- validation: each returns {field: what to fix}, empty when the values are good ----------


def check_basics(values: dict, inbox_id: int | None = None) -> dict[str, str]:
    errors = {}
    if not values["name"]:
        errors["name"] = "Give the inbox a name agents will recognise, e.g. Support."
    elif len(values["name"]) > 120:
        errors["name"] = "Keep the name under 120 characters."
    address = values["support_address"]
    try:
        address = validate_email(address, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        errors["support_address"] = f"Enter the address customers write to: {exc}"
        return errors
    values["support_address"] = address
    domain = get_settings().inbound_domain
    if domain and address.endswith("@" + domain) and address.startswith("reply+"):
        errors["support_address"] = (
            f"reply+…@{domain} addresses are Threadline's conversation addresses; "
            "use another address."
        )
    taken = db.session.scalar(
        select(Inbox).where(func.lower(Inbox.support_address) == address, Inbox.id != inbox_id)
    )
    if taken is not None:
        errors["support_address"] = (
            f"{address} is already the address of the inbox “{taken.name}”. "
            "Each address belongs to one inbox; choose another or edit that inbox."
        )
    return errors


def check_mode(values: dict) -> dict[str, str]:
    if values["mode"] not in MODES:
        return {"mode": "Choose Forwarding or IMAP/SMTP."}
    return {}


def _port(values: dict, name: str, errors: dict) -> None:
    text = values[name]
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        errors[name] = "Enter a port number from 1 to 65535."


def check_imap(values: dict, has_password: bool) -> dict[str, str]:
    errors = {}
    if not values["imap_host"]:
        errors["imap_host"] = "Enter the IMAP server's host name, e.g. imap.example.com."
    _port(values, "imap_port", errors)
    if values["imap_security"] not in SECURITY:
        errors["imap_security"] = "Choose SSL/TLS, STARTTLS or none."
    if not values["imap_username"]:
        errors["imap_username"] = "Enter the mailbox's user name (often the full address)."
    if not has_password:
        errors["imap_password"] = "Enter the password or app password of the mailbox."
    if not values["imap_folders"]:
        errors["imap_folders"] = "Choose at least one folder to import (usually INBOX)."
    interval = values["imap_poll_interval"]
    if not interval.isdigit() or not MIN_POLL <= int(interval) <= MAX_POLL:
        errors["imap_poll_interval"] = f"Poll every {MIN_POLL} to {MAX_POLL} seconds."
    if values["imap_after_import"] not in AFTER_IMPORT:
        errors["imap_after_import"] = "Choose what happens to imported messages."
    elif values["imap_after_import"] == "move" and not values["imap_move_to_folder"]:
        errors["imap_move_to_folder"] = "Name the folder imported messages move to."
    since = values["imap_import_since"]
    if since:
        try:
            if date.fromisoformat(since) > date.today():
                errors["imap_import_since"] = "The first import cannot start in the future."
        except ValueError:
            errors["imap_import_since"] = "Enter a date as YYYY-MM-DD, or leave it empty."
    return errors


def check_smtp(values: dict, has_password: bool, required: bool) -> dict[str, str]:
    errors = {}
    if not values["smtp_host"]:
        if required:
            errors["smtp_host"] = (
                "Replies need an SMTP server: enter the inbox's SMTP host "
                "(or set SMTP_ADDRESS for the whole deployment)."
            )
        return errors
    _port(values, "smtp_port", errors)
    if values["smtp_security"] not in SECURITY:
        errors["smtp_security"] = "Choose SSL/TLS, STARTTLS or none."
    if values["smtp_auth_method"] not in SMTP_AUTH:
        errors["smtp_auth_method"] = "Choose LOGIN, PLAIN or no authentication."
    elif values["smtp_auth_method"] != "none":
        if not values["smtp_username"]:
            errors["smtp_username"] = "Enter the SMTP user name, or choose no authentication."
        if not has_password:
            errors["smtp_password"] = "Enter the SMTP password, or choose no authentication."
    return errors


def check_identity(values: dict) -> dict[str, str]:
    errors = {}
    if values["sender_name_style"] not in SENDER_NAME_STYLES:
        errors["sender_name_style"] = "Choose how replies are signed in the From name."
    if values["reply_to_style"] not in REPLY_TO_STYLES:
        errors["reply_to_style"] = "Choose where customers' answers go."
    if len(values["signature"]) > 2000:
        errors["signature"] = "Keep the signature under 2,000 characters."
    return errors


def check_agents(values: dict, auto_assign: bool) -> dict[str, str]:
    ids = [int(i) for i in values["member_ids"] if str(i).isdigit()]
    active = set(db.session.scalars(select(User.id).where(User.id.in_(ids), User.active)))
    if len(active) != len(values["member_ids"]):
        return {"member_ids": "Some of the chosen people no longer exist or are deactivated."}
    if auto_assign and not active:
        return {
            "member_ids": "Auto-assignment is on, so choose at least one agent "
            "(or turn auto-assignment off under identity)."
        }
    return {}


def check_connections(
    values: dict, imap_password: str | None, smtp_password: str | None
) -> tuple[dict[str, str], dict[str, ConnectionResult]]:
    """Live tests before saving: a failing one is an error unless its override is ticked."""
    errors: dict[str, str] = {}
    results: dict[str, ConnectionResult] = {}
    if values["mode"] == "imap" and not values["imap_override"]:
        result = results["imap"] = test_imap(values, imap_password or "")
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
        result = results["smtp"] = test_smtp(values, smtp_password or "")
        if not result.ok:
            errors["smtp_test"] = result.message
    return errors, results


def smtp_required(values: dict) -> bool:
    """IMAP inboxes must be able to answer; forwarding ones may use the global SMTP."""
    return values["mode"] == "imap" and not get_settings().smtp_address
