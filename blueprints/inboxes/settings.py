"""Inbox pages after the wizard's form steps: step 7 (send a test email or inject a sample,
then wait live for the conversation) and the inbox settings, which edit the same fields with
the same validation (services/inbox_setup.py). Routes live on the inboxes blueprint."""

from __future__ import annotations

from flask import abort, render_template, request, url_for
from flask_login import current_user

from blueprints.admin import admin_required
from blueprints.htmx import is_htmx, respond
from blueprints.inboxes import (
    active_users,
    bp,
    run_test,
    test_fragment,
)
from extensions import db, get_settings
from ingress.receive import IngressUnavailable
from models import Inbox
from services import inbox_setup
from services.inbox_forwarding import forwarding_instructions
from services.inbox_test_mail import TestMailError, inject_sample, outbound_path, progress
from services.inbox_test_mail import send_test_email as send_test_mail

# --- step 7: the test email ---------------------------------------------------------------


def get_inbox(inbox_id: int) -> Inbox:
    inbox = db.session.get(Inbox, inbox_id)
    if inbox is None:
        abort(404, "There is no such inbox.")
    return inbox


def render_test_page(inbox: Inbox, status: int = 200, headers=None, **extra):
    context = {"inbox": inbox, "outbound": outbound_path(inbox), "step": "test", **extra}
    return respond("inboxes/test.html", "inboxes/_test.html", status, headers, **context)


@bp.route("/<int:inbox_id>/test")
@admin_required
def test_page(inbox_id: int):
    return render_test_page(get_inbox(inbox_id))


@bp.post("/<int:inbox_id>/test/<how>")
@admin_required
def start_test(inbox_id: int, how: str):
    inbox = get_inbox(inbox_id)
    try:
        if how == "send":
            token = send_test_mail(inbox, current_user.email)
        elif how == "inject":
            token = inject_sample(inbox, current_user.email)
        else:
            abort(404)
    except (TestMailError, IngressUnavailable) as exc:
        return render_test_page(inbox, 422, error=str(exc))
    return render_test_page(inbox, how=how, progress=progress(inbox, token), token=token)


@bp.route("/<int:inbox_id>/test/<token>")
@admin_required
def test_progress(inbox_id: int, token: str):
    inbox = get_inbox(inbox_id)
    return render_template(
        "inboxes/_test_progress.html", inbox=inbox, token=token, progress=progress(inbox, token)
    )


# --- settings -------------------------------------------------------------------------------

SETTINGS_SECTIONS = {
    "basics": ("basics",),
    "connection": ("mode", "imap", "smtp"),
    "identity": ("identity",),
    "agents": ("agents",),
}


def settings_errors(inbox: Inbox, section: str, values: dict, passwords: dict):
    if section == "basics":
        return inbox_setup.check_basics(values, inbox.id), {}
    if section == "identity":
        return inbox_setup.check_identity(values), {}
    if section == "agents":
        return inbox_setup.check_agents(values, inbox.auto_assign), {}
    errors = inbox_setup.check_mode(values)
    kept_imap = inbox.imap.password if inbox.imap else None
    kept_smtp = inbox.smtp.password if inbox.smtp else None
    imap_password = passwords["imap"] or kept_imap
    smtp_password = passwords["smtp"] or kept_smtp
    if values["mode"] == "imap":
        errors |= inbox_setup.check_imap(values, bool(imap_password))
    required = inbox_setup.smtp_required(values)
    errors |= inbox_setup.check_smtp(values, bool(smtp_password), required)
    if errors:
        return errors, {}
    return inbox_setup.check_connections(values, imap_password, smtp_password)


@bp.route("/<int:inbox_id>/settings", methods=["GET", "POST"])
@admin_required
def edit(inbox_id: int):
    inbox = get_inbox(inbox_id)
    values = inbox_setup.values_from_inbox(inbox)
    context = {"inbox": inbox, "errors": {}, "results": {}, "saved": None}
    status = 200
    section = request.form.get("section", "")
    if request.method == "POST":
        if section not in SETTINGS_SECTIONS:
            abort(400, "Unknown settings section.")
        for part in SETTINGS_SECTIONS[section]:
            values.update(inbox_setup.read_section(request.form, part))
        passwords = {k: request.form.get(f"{k}_password", "") for k in ("imap", "smtp")}
        go = request.form.get("go", "save")
        if go in ("test_imap", "test_smtp"):  # the test buttons without JavaScript
            which = go.removeprefix("test_")
            row = inbox.imap if which == "imap" else inbox.smtp
            kept = row.password if row else None
            context["results"] = {which: run_test(which, values, kept, passwords[which])}
        else:
            errors, results = settings_errors(inbox, section, values, passwords)
            if errors:
                status = 422
                context.update(errors=errors, results=results)
            else:
                inbox_setup.save_section(inbox, section, values, passwords)
                values = inbox_setup.values_from_inbox(inbox)
                context["saved"] = section
    context.update(
        values=values,
        section=section,
        users=active_users(),
        has_password={
            "imap": bool(inbox.imap and inbox.imap.password),
            "smtp": bool(inbox.smtp and inbox.smtp.password),
        },
        test_urls={
            k: url_for("inboxes.settings_test", inbox_id=inbox.id, which=k)
            for k in ("imap", "smtp")
        },
        smtp_required=inbox_setup.smtp_required(values),
        global_smtp=get_settings().smtp_address,
        forwarding=forwarding_instructions(get_settings(), inbox.forward_token),
    )
    if is_htmx() and section:
        body = render_template(f"inboxes/settings/_{section}.html", **context)
        return body, status, {"Vary": "HX-Request"}
    return render_template("inboxes/settings.html", **context), status, {"Vary": "HX-Request"}


@bp.post("/<int:inbox_id>/settings/test/<which>")
@admin_required
def settings_test(inbox_id: int, which: str):
    inbox = get_inbox(inbox_id)
    if which not in ("imap", "smtp"):
        abort(404)
    row = inbox.imap if which == "imap" else inbox.smtp
    values = inbox_setup.values_from_inbox(inbox)
    return test_fragment(which, values, row.password if row else None)
