"""An inbox's settings page: a tab per section (`?section=`), each its own HTML form with the
wizard's forms and rules (forms/) and one Save; connection changes are tested before saving.
The connection tab shows the fields of the inbox's mode (IMAP only in IMAP/SMTP mode; the
optional SMTP server in both), and signing in with Microsoft 365 or Google instead of a
password (oauth.py). The last tab archives or deletes the inbox (archive.py)."""

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
from blueprints.inboxes.forms.archive import ArchiveForm, DeleteForm
from blueprints.inboxes.forms.oauth import allow_sign_in_redirects, sign_in_panel
from blueprints.inboxes.shared import get_inbox
from extensions import get_settings
from models import Inbox
from services import inbox_archive, inbox_saving, inbox_setup
from services.inbox_forwarding import forwarding_instructions
from services.oauth_status import server_values

SETTINGS_SECTIONS = {
    "basics": ("basics",),
    "connection": ("mode", "imap", "smtp"),
    "identity": ("identity",),
    "agents": ("agents",),
}
ALL_SECTIONS = ("basics", "mode", "imap", "smtp", "identity", "agents")
TABS = {
    "basics": "Name and address",
    "aliases": "Addresses",  # the aliases (aliases.py)
    "connection": "Connection",
    "identity": "Identity",
    "agents": "Agents",
    "rules": "Rules",
    "hours": "Business hours",
    "blocked": "Blocked senders",  # the block list (blocked_senders.py)
    "archive": "Archive or delete",
}


def stored_forms(inbox: Inbox, posted=()) -> dict:
    """Every section's form showing the stored values; the posted ones read the request.
    A forwarding inbox signed in with a provider shows its servers for IMAP/SMTP mode."""
    values = inbox_setup.values_from_inbox(inbox)
    if inbox.oauth is not None and inbox.imap is None:
        values.update(server_values(inbox.oauth.provider, inbox.oauth.mailbox))
    kept = inbox_setup.stored_passwords(inbox)
    return make_forms(
        ALL_SECTIONS,
        values,
        posted=posted,
        kept=kept,
        inbox_id=inbox.id,
        oauth_connection=inbox.oauth,
    )


@bp.route("/<int:inbox_id>/settings", methods=["GET", "POST"])
@admin_required
def edit(inbox_id: int):
    inbox = get_inbox(inbox_id)
    if request.method == "GET":
        tab = request.args.get("section", "")
        return render_settings(inbox, tab if tab in TABS else "basics")
    section = request.form.get("section", "")
    if section not in SETTINGS_SECTIONS:
        abort(400, "Unknown settings section.")
    posted = SETTINGS_SECTIONS[section]
    forms = stored_forms(inbox, posted)
    values = values_of(forms, {})
    context = {"results": {}, "saved": None}
    status = 200
    go = request.form.get("go", "save")
    if go in ("test_imap", "test_smtp"):  # the test buttons without JavaScript
        which = go.removeprefix("test_")
        kept = inbox_setup.stored_passwords(inbox)[which]
        context["results"] = {which: connection_test(which, kept, inbox.oauth)}
        show_results(forms, context["results"])
    else:
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
    error_count = sum(forms[name].error_count() for name in posted)
    return render_settings(
        inbox, section, forms, values, status, section=section, error_count=error_count, **context
    )


def render_settings(
    inbox: Inbox, tab: str, forms=None, values=None, status=200, connect=None, **extra
):
    """The page with one tab's section; to htmx, only the section (a form posted in place).
    `connect`: a Connect form that was refused (oauth.py)."""
    if forms is None:
        forms = stored_forms(inbox)
        values = values_of(forms, {})
    context = {
        "inbox": inbox,
        "tab": tab,
        "tabs": TABS,
        "forms": forms,
        "values": values,
        "results": {},
        "saved": None,
        "section": "",
        "error_count": 0,
        "has_password": {k: bool(v) for k, v in inbox_setup.stored_passwords(inbox).items()},
        "test_urls": {
            k: url_for("inboxes.settings_test", inbox_id=inbox.id, which=k)
            for k in ("imap", "smtp")
        },
        "smtp_required": inbox_setup.smtp_required(values),
        "global_smtp": get_settings().smtp_address,
        "sign_in": sign_in_panel(
            inbox.oauth,
            inbox.support_address,
            lambda provider: url_for("inboxes.connect", inbox_id=inbox.id, provider=provider),
            url_for("inboxes.disconnect", inbox_id=inbox.id),
            connect,
        ),
        "forwarding": forwarding_instructions(get_settings(), inbox.forward_token),
        "conversations": inbox_archive.conversation_count(inbox) if tab == "archive" else 0,
        "archive_form": ArchiveForm(formdata=None),
        "delete_form": DeleteForm(formdata=None),
        **_automation_tabs(inbox, tab, extra),
        **_aliases_tab(inbox, tab, extra),
        **_blocked_tab(inbox, tab, extra),
        **extra,
    }
    allow_sign_in_redirects()
    headers = {"Vary": "HX-Request"}
    if is_htmx() and context["section"]:
        return render_template(f"inboxes/settings/_{tab}.html", **context), status, headers
    return render_template("inboxes/settings.html", **context), status, headers


def _automation_tabs(inbox: Inbox, tab: str, extra: dict) -> dict:
    """The Rules and Business hours tabs' own context (hours.py; imported here, late, as
    hours.py renders this page)."""
    from blueprints.inboxes.hours import tab_context

    return tab_context(inbox, tab, extra)


def _aliases_tab(inbox: Inbox, tab: str, extra: dict) -> dict:
    """The Addresses tab's own context (aliases.py; imported late, as it renders this page)."""
    from blueprints.inboxes.aliases import tab_context

    return tab_context(inbox, tab, extra)


def _blocked_tab(inbox: Inbox, tab: str, extra: dict) -> dict:
    """The Blocked senders tab's own context (blocked_senders.py; imported late, as above)."""
    from blueprints.inboxes.blocked_senders import tab_context

    return tab_context(inbox, tab, extra)


@bp.post("/<int:inbox_id>/settings/test/<which>")
@admin_required
def settings_test(inbox_id: int, which: str):
    inbox = get_inbox(inbox_id)
    if which not in ("imap", "smtp"):
        abort(404)
    return test_fragment(which, inbox_setup.stored_passwords(inbox)[which], inbox.oauth)
