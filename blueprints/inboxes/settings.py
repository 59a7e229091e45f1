"""An inbox's settings page: a card per section, each its own HTML form with the wizard's
forms and rules (forms.py); connection changes are tested before saving."""

from __future__ import annotations

from flask import abort, render_template, request, url_for

from blueprints.guards import admin_required
from blueprints.htmx import is_htmx
from blueprints.inboxes.blueprint import bp
from blueprints.inboxes.connection_tests import test_fragment
from blueprints.inboxes.forms import (
    check_sections,
    connection_test,
    make_forms,
    show_results,
    typed_passwords,
    values_of,
)
from blueprints.inboxes.shared import get_inbox
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
ALL_SECTIONS = ("basics", "mode", "imap", "smtp", "identity", "agents")


def stored_forms(inbox: Inbox, posted=()) -> dict:
    """Every section's form showing the stored values; the posted ones read the request."""
    values = inbox_setup.values_from_inbox(inbox)
    kept = inbox_setup.stored_passwords(inbox)
    return make_forms(ALL_SECTIONS, values, posted=posted, kept=kept, inbox_id=inbox.id)


@bp.route("/<int:inbox_id>/settings", methods=["GET", "POST"])
@admin_required
def edit(inbox_id: int):
    inbox = get_inbox(inbox_id)
    section = request.form.get("section", "")
    posted = ()
    if request.method == "POST":
        if section not in SETTINGS_SECTIONS:
            abort(400, "Unknown settings section.")
        posted = SETTINGS_SECTIONS[section]
    forms = stored_forms(inbox, posted)
    values = values_of(forms, {})
    context = {"inbox": inbox, "results": {}, "saved": None}
    status = 200
    go = request.form.get("go", "save")
    if go in ("test_imap", "test_smtp"):  # the test buttons without JavaScript
        which = go.removeprefix("test_")
        kept = inbox_setup.stored_passwords(inbox)[which]
        context["results"] = {which: connection_test(which, kept)}
        show_results(forms, context["results"])
    elif posted:
        section_forms = {name: forms[name] for name in posted}
        valid, context["results"] = check_sections(section_forms, values)
        if valid:
            values = values_of(section_forms, values)
            passwords = typed_passwords(section_forms)
            inbox_saving.save_section(inbox, section, values, passwords)
            forms = stored_forms(inbox)
            values = values_of(forms, {})
            context["saved"] = section
        else:
            status = 422
    context.update(
        forms=forms,
        values=values,
        section=section,
        error_count=sum(forms[name].error_count() for name in posted),
        has_password={k: bool(v) for k, v in inbox_setup.stored_passwords(inbox).items()},
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
    return test_fragment(which, inbox_setup.stored_passwords(inbox)[which])
