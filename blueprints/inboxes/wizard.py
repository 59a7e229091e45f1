"""Admin inbox pages: the list, the setup wizard (one step per screen, htmx) and settings.

The wizard keeps its draft in Redis (services/inbox_drafts.py) and creates the inbox only
after the last form step, so nothing is saved half-broken; settings edit the same fields
with the same rules (services/inbox_setup.py).
"""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from blueprints.admin import admin_required
from blueprints.htmx import is_htmx, respond
from extensions import db, get_settings
from models import Inbox, InboxMember, User
from services import inbox_drafts, inbox_setup
from services.inbox_connections import ConnectionResult, test_imap, test_smtp
from services.inbox_forwarding import forwarding_instructions

bp = Blueprint("inboxes", __name__, url_prefix="/admin/inboxes")

STEP_TITLES = {
    "name": "Name and address",
    "mode": "Connection mode",
    "forwarding": "Forwarding",
    "connection": "IMAP and SMTP servers",
    "identity": "Identity",
    "agents": "Agents",
}
STEP_SECTIONS = {
    "name": ("basics",),
    "mode": ("mode",),
    "forwarding": (),
    "connection": ("imap", "smtp"),
    "identity": ("identity",),
    "agents": ("agents",),
}
TOTAL_STEPS = 6  # five form steps, then the test


def steps_for(mode: str) -> list[str]:
    third = "connection" if mode == "imap" else "forwarding"
    return ["name", "mode", third, "identity", "agents"]


def health_url(inbox: Inbox) -> str:
    return url_for("inbound.health", inbox_id=inbox.id)


@bp.context_processor
def helpers():
    return {
        "health_url": health_url,
        "step_titles": STEP_TITLES,
        "total_steps": TOTAL_STEPS,
        "forwarding_domain": get_settings().inbound_domain,
    }


def active_users() -> list[User]:
    return db.session.scalars(select(User).where(User.active).order_by(User.name)).all()


@bp.route("")
@admin_required
def index():
    inboxes = db.session.scalars(select(Inbox).order_by(Inbox.name)).all()
    members = dict(
        db.session.execute(
            select(InboxMember.inbox_id, func.count()).group_by(InboxMember.inbox_id)
        ).all()
    )
    return render_template("inboxes/index.html", inboxes=inboxes, members=members)


# --- the wizard ---------------------------------------------------------------------------


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
    inbox = inbox_setup.create_inbox(draft.values, draft.passwords(), draft.forward_token)
    inbox_drafts.discard(draft)
    from blueprints.inbox_settings import render_test_page  # defined after this module

    url = url_for("inboxes.test_page", inbox_id=inbox.id)
    return go_to(url, lambda **kw: render_test_page(inbox, **kw))


def run_test(which: str, values: dict, kept_password: str | None, typed: str = ""):
    """One connection test; a blank password field uses the kept one."""
    fields = inbox_setup.check_imap if which == "imap" else inbox_setup.check_smtp
    password = typed or kept_password or ""
    args = (values, bool(password)) if which == "imap" else (values, bool(password), True)
    missing = {k: v for k, v in fields(*args).items() if k.split("_", 1)[1] in CONNECTION_FIELDS}
    if missing:
        return ConnectionResult(False, "Fill in first: " + " ".join(missing.values()))
    tester = test_imap if which == "imap" else test_smtp
    return tester(values, password)


CONNECTION_FIELDS = ("host", "port", "security", "username", "password", "auth_method")


def test_fragment(which: str, values: dict, kept_password: str | None):
    typed = request.form.get(f"{which}_password", "")
    values = {**values, **inbox_setup.read_section(request.form, which)}
    result = run_test(which, values, kept_password, typed)
    return render_template(
        "inboxes/_test_result.html", which=which, result=result, values=values, oob=True
    )


@bp.post("/new/<draft_id>/test/<which>")
@admin_required
def wizard_test(draft_id: str, which: str):
    draft = load_draft(draft_id)
    if which not in ("imap", "smtp"):
        abort(404)
    return test_fragment(which, draft.values, draft.password(which))


# Step 7 (the test email) and the settings page live in blueprints/inbox_settings.py.
from blueprints import inbox_settings  # noqa: E402, F401
