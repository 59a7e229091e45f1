"""The inbox setup wizard: one step per screen (htmx), then the test email (test_mail.py).

Opening the wizard writes nothing; its first POST starts a draft in Redis
(services/inbox_drafts.py), and the inbox is created only after the last form step, so
nothing is saved half-broken. Each step shows the forms of its sections (forms.py). A
Microsoft 365 or Google sign-in made on the IMAP/SMTP step (oauth.py) belongs to the draft
until the inbox is created.
"""

from __future__ import annotations

from flask import abort, redirect, request, url_for
from flask_login import current_user

from blueprints.guards import admin_required
from blueprints.htmx import is_htmx, respond
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
from blueprints.inboxes.forms.oauth import allow_sign_in_redirects, sign_in_panel
from blueprints.inboxes.steps import STEP_SECTIONS, STEP_TITLES, steps_for
from blueprints.inboxes.test_mail import render_test_page
from extensions import get_settings
from services import inbox_drafts, inbox_saving, inbox_setup, oauth
from services.inbox_forwarding import forwarding_instructions


def load_draft(draft_id: str) -> inbox_drafts.Draft:
    draft = inbox_drafts.load(draft_id, current_user.id)
    if draft is None:
        abort(404, "This inbox draft expired or is not yours. Start again with New inbox.")
    return draft


def signed_in(draft: inbox_drafts.Draft | None):
    """The draft's Microsoft 365 / Google sign-in, if one was made."""
    return oauth.connection_for_draft(draft.id) if draft else None


def step_context(
    draft: inbox_drafts.Draft | None, step: str, forms: dict, connect=None, **extra
) -> dict:
    values = draft.values if draft else inbox_setup.DEFAULTS
    steps = steps_for(values["mode"])
    secrets = draft.secrets if draft else {}
    context = {
        "step": step,
        "number": steps.index(step) + 1 if step in steps else 3,
        "values": values,
        "forms": forms,
        "error_count": sum(form.error_count() for form in forms.values()),
        "results": {},
        "step_url": url_for("inboxes.wizard_step", draft_id=draft.id, step=step)
        if draft
        else url_for("inboxes.new"),
        "has_password": {k: bool(secrets.get(k)) for k in ("imap", "smtp")},
        "test_urls": {
            k: url_for("inboxes.wizard_test", draft_id=draft.id, which=k) if draft else ""
            for k in ("imap", "smtp")
        },
        "smtp_required": inbox_setup.smtp_required(values),
        "global_smtp": get_settings().smtp_address,
    }
    if step == "forwarding":
        context["forwarding"] = forwarding_instructions(get_settings(), draft.forward_token)
    if step == "connection" and draft:
        context["sign_in"] = sign_in_panel(
            signed_in(draft),
            values["support_address"],
            lambda provider: url_for(
                "inboxes.wizard_connect", draft_id=draft.id, provider=provider
            ),
            url_for("inboxes.wizard_disconnect", draft_id=draft.id),
            connect,
        )
    context.update(extra)
    return context


def render_step(draft, step: str, forms: dict | None = None, status=200, headers=None, **extra):
    if forms is None:  # what the draft holds
        kept = draft.passwords() if draft else {}
        values = draft.values if draft else inbox_setup.DEFAULTS
        connection = signed_in(draft) if step == "connection" else None
        forms = make_forms(STEP_SECTIONS[step], values, kept=kept, oauth_connection=connection)
    context = step_context(draft, step, forms, **extra)
    allow_sign_in_redirects()
    return respond("inboxes/wizard.html", "inboxes/_wizard.html", status, headers, **context)


def go_to(draft: inbox_drafts.Draft, step: str):
    """htmx swaps the next screen in and updates the address bar; plain forms redirect."""
    url = url_for("inboxes.wizard_step", draft_id=draft.id, step=step)
    if is_htmx():
        return render_step(draft, step, headers={"HX-Push-Url": url})
    return redirect(url, 303)


@bp.route("/new")
@admin_required
def new():
    return render_step(None, "name")


@bp.post("/new")
@admin_required
def start():
    """Step 1 posted: the draft starts once the name and address are right."""
    forms = make_forms(STEP_SECTIONS["name"], inbox_setup.DEFAULTS, posted=("basics",))
    valid, _ = check_sections(forms, inbox_setup.DEFAULTS)
    if not valid:
        return render_step(None, "name", forms, 422)
    draft = inbox_drafts.new_draft(current_user.id, values_of(forms, {}))
    return go_to(draft, steps_for(draft.values["mode"])[1])


@bp.route("/new/<draft_id>/<step>")
@admin_required
def wizard_step(draft_id: str, step: str):
    draft = load_draft(draft_id)
    if step not in STEP_TITLES:
        abort(404, "There is no such step in the inbox wizard.")
    return render_step(draft, step)


def read_step(draft: inbox_drafts.Draft, step: str) -> dict:
    """This step's forms from the request; the draft keeps what was typed, valid or not."""
    sections = STEP_SECTIONS[step]
    forms = make_forms(
        sections,
        draft.values,
        posted=sections,
        kept=draft.passwords(),
        oauth_connection=signed_in(draft) if step == "connection" else None,
    )
    draft.update(values_of(forms, {}))
    if step == "connection":
        for which, typed in typed_passwords(forms).items():
            draft.set_password(which, typed)
        draft.connection_checked = False
    return forms


@bp.post("/new/<draft_id>/<step>")
@admin_required
def wizard_submit(draft_id: str, step: str):
    draft = load_draft(draft_id)
    if step not in STEP_TITLES:
        abort(404, "There is no such step in the inbox wizard.")
    forms = read_step(draft, step)
    steps = steps_for(draft.values["mode"])
    position = steps.index(step) if step in steps else 2
    go = request.form.get("go", "next")
    if go == "back":
        inbox_drafts.save(draft)
        return go_to(draft, steps[max(position - 1, 0)])
    if go in ("test_imap", "test_smtp"):  # the test buttons without JavaScript
        inbox_drafts.save(draft)
        which = go.removeprefix("test_")
        results = {which: connection_test(which, draft.password(which), signed_in(draft))}
        show_results(forms, results)
        return render_step(draft, step, forms, results=results)
    valid, results = check_sections(forms, draft.values)
    draft.update(values_of(forms, {}))  # as checked: the address normalised
    if step == "connection":
        draft.connection_checked = valid
    inbox_drafts.save(draft)
    if not valid:
        return render_step(draft, step, forms, 422, results=results)
    if step != steps[-1]:
        return go_to(draft, steps[position + 1])
    return create_from_draft(draft, steps)


def create_from_draft(draft: inbox_drafts.Draft, steps: list[str]):
    """Every step is checked again: the draft may have been edited in another tab."""
    connection = signed_in(draft)
    for step in steps:
        forms = make_forms(
            STEP_SECTIONS[step], draft.values, kept=draft.passwords(), oauth_connection=connection
        )
        valid = all([form.validate() for form in forms.values()])
        if step == "connection" and valid and not draft.connection_checked:
            forms["imap"].form_errors.append(
                "Test the connections again before creating the inbox."
            )
            valid = False
        if not valid:
            return render_step(draft, step, forms, 422)
    inbox = inbox_saving.create_inbox(
        draft.values, draft.passwords(), draft.forward_token, draft_id=draft.id
    )
    inbox_drafts.discard(draft)
    url = url_for("inboxes.test_page", inbox_id=inbox.id)
    if is_htmx():
        return render_test_page(inbox, headers={"HX-Push-Url": url})
    return redirect(url, 303)


@bp.post("/new/<draft_id>/test/<which>")
@admin_required
def wizard_test(draft_id: str, which: str):
    draft = load_draft(draft_id)
    if which not in ("imap", "smtp"):
        abort(404)
    return test_fragment(which, draft.password(which), signed_in(draft))
