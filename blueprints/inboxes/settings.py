"""An inbox's settings page: one form per section, editing the fields the wizard set, with
the same validation (services/inbox_setup.py); connection changes are tested before saving."""

from __future__ import annotations

from flask import abort, render_template, request, url_for

from blueprints.guards import admin_required
from blueprints.htmx import is_htmx
from blueprints.inboxes.blueprint import bp
from blueprints.inboxes.connection_tests import run_test, test_fragment
from blueprints.inboxes.shared import active_users, get_inbox
from extensions import get_settings
from models import Inbox
from services import inbox_saving, inbox_setup
from services.inbox_forwarding import forwarding_instructions

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
                inbox_saving.save_section(inbox, section, values, passwords)
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
