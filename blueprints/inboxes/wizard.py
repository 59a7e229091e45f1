"""The inbox setup wizard: one step per screen (htmx), then the test email (test_mail.py).

The wizard keeps its draft in Redis (services/inbox_drafts.py) and creates the inbox only
after the last form step, so nothing is saved half-broken.
"""

from __future__ import annotations

from flask import abort, redirect, request, url_for
from flask_login import current_user

from blueprints.guards import admin_required
from blueprints.htmx import is_htmx, respond
from blueprints.inboxes.blueprint import bp
from blueprints.inboxes.connection_tests import run_test, test_fragment
from blueprints.inboxes.shared import active_users
from blueprints.inboxes.steps import STEP_SECTIONS, STEP_TITLES, steps_for
from blueprints.inboxes.test_mail import render_test_page
from extensions import get_settings
from services import inbox_drafts, inbox_saving, inbox_setup
from services.inbox_forwarding import forwarding_instructions


def load_draft(draft_id: str) -> inbox_drafts.Draft:
    draft = inbox_drafts.load(draft_id, current_user.id)
    if draft is None:
        abort(404, "This inbox draft expired or is not yours. Start again with New inbox.")
    return draft


def step_context(draft: inbox_drafts.Draft, step: str, **extra) -> dict:
    steps = steps_for(draft.values["mode"])
    context = {
        "draft": draft,
        "step": step,
        "number": steps.index(step) + 1 if step in steps else 3,
        "values": draft.values,
        "errors": {},
        "results": {},
        "step_url": url_for("inboxes.wizard_step", draft_id=draft.id, step=step),
        "has_password": {k: bool(draft.secrets.get(k)) for k in ("imap", "smtp")},
        "test_urls": {
            k: url_for("inboxes.wizard_test", draft_id=draft.id, which=k) for k in ("imap", "smtp")
        },
        "users": active_users() if step == "agents" else [],
        "smtp_required": inbox_setup.smtp_required(draft.values),
        "global_smtp": get_settings().smtp_address,
    }
    if step == "forwarding":
        context["forwarding"] = forwarding_instructions(get_settings(), draft.forward_token)
    context.update(extra)
    return context


def render_step(draft, step: str, status: int = 200, headers=None, **extra):
    context = step_context(draft, step, **extra)
    return respond("inboxes/wizard.html", "inboxes/_wizard.html", status, headers, **context)


def go_to(url: str, render):
    """htmx swaps the next screen in and updates the address bar; plain forms redirect."""
    if is_htmx():
        return render(headers={"HX-Push-Url": url})
    return redirect(url, 303)


@bp.route("/new")
@admin_required
def new():
    draft = inbox_drafts.new_draft(current_user.id)
    return redirect(url_for("inboxes.wizard_step", draft_id=draft.id, step="name"))


@bp.route("/new/<draft_id>/<step>")
@admin_required
def wizard_step(draft_id: str, step: str):
    draft = load_draft(draft_id)
    if step not in STEP_TITLES:
        abort(404, "There is no such step in the inbox wizard.")
    return render_step(draft, step)


def step_errors(draft: inbox_drafts.Draft, step: str) -> dict[str, str]:
    values = draft.values
    if step == "name":
        return inbox_setup.check_basics(values)
    if step == "mode":
        return inbox_setup.check_mode(values)
    if step == "connection":
        errors = inbox_setup.check_imap(values, bool(draft.secrets.get("imap")))
        required = inbox_setup.smtp_required(values)
        errors |= inbox_setup.check_smtp(values, bool(draft.secrets.get("smtp")), required)
        return errors
    if step == "identity":
        return inbox_setup.check_identity(values)
    if step == "agents":
        return inbox_setup.check_agents(values, values["auto_assign"])
    return {}


def read_step(draft: inbox_drafts.Draft, step: str) -> None:
    """Keep what was typed on this step, valid or not, so back and forth lose nothing."""
    previous_mode = draft.values["mode"]
    for section in STEP_SECTIONS[step]:
        draft.values.update(inbox_setup.read_section(request.form, section))
    if step == "mode" and draft.values["mode"] != previous_mode:
        # Forwarding inboxes answer from the continuity address; IMAP ones from their own.
        draft.values["reply_to_style"] = "inbox" if draft.values["mode"] == "imap" else "continuity"
    if step == "connection":
        draft.set_password("imap", request.form.get("imap_password", ""))
        draft.set_password("smtp", request.form.get("smtp_password", ""))
        draft.connection_checked = False


@bp.post("/new/<draft_id>/<step>")
@admin_required
def wizard_submit(draft_id: str, step: str):
    draft = load_draft(draft_id)
    if step not in STEP_TITLES:
        abort(404, "There is no such step in the inbox wizard.")
    read_step(draft, step)
    steps = steps_for(draft.values["mode"])
    position = steps.index(step) if step in steps else 2
    go = request.form.get("go", "next")
    if go == "back":
        inbox_drafts.save(draft)
        back = steps[max(position - 1, 0)]
        url = url_for("inboxes.wizard_step", draft_id=draft.id, step=back)
        return go_to(url, lambda **kw: render_step(draft, back, **kw))
    if go in ("test_imap", "test_smtp"):  # the test buttons without JavaScript
        inbox_drafts.save(draft)
        which = go.removeprefix("test_")
        result = run_test(which, draft.values, draft.password(which))
        return render_step(draft, step, results={which: result})
    errors = step_errors(draft, step)
    results = {}
    if step == "connection" and not errors:
        errors, results = inbox_setup.check_connections(draft.values, *draft_passwords(draft))
        draft.connection_checked = not errors
    inbox_drafts.save(draft)
    if errors:
        return render_step(draft, step, 422, errors=errors, results=results)
    if step != steps[-1]:
        following = steps[position + 1]
        url = url_for("inboxes.wizard_step", draft_id=draft.id, step=following)
        return go_to(url, lambda **kw: render_step(draft, following, **kw))
    return create_from_draft(draft, steps)


def draft_passwords(draft: inbox_drafts.Draft) -> tuple[str | None, str | None]:
    return draft.password("imap"), draft.password("smtp")


def create_from_draft(draft: inbox_drafts.Draft, steps: list[str]):
    """Every step is checked again: the draft may have been edited in another tab."""
    for step in steps:
        errors = step_errors(draft, step)
        if step == "connection" and not errors and not draft.connection_checked:
            errors = {"imap_test": "Test the connections again before creating the inbox."}
        if errors:
            return render_step(draft, step, 422, errors=errors)
    inbox = inbox_saving.create_inbox(draft.values, draft.passwords(), draft.forward_token)
    inbox_drafts.discard(draft)
    url = url_for("inboxes.test_page", inbox_id=inbox.id)
    return go_to(url, lambda **kw: render_test_page(inbox, **kw))


@bp.post("/new/<draft_id>/test/<which>")
@admin_required
def wizard_test(draft_id: str, which: str):
    draft = load_draft(draft_id)
    if which not in ("imap", "smtp"):
        abort(404)
    return test_fragment(which, draft.values, draft.password(which))
