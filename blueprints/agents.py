"""Admin pages for accounts: list, create, role, deactivate, password reset, inbox membership.

Every change is a POST (CSRF checked globally). htmx gets the swapped panel back; a plain
form post gets the whole page. A generated password is rendered once, never flashed (a
flash would sit in the session cookie) and never cached.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import select

from blueprints.guards import admin_required
from blueprints.htmx import is_htmx, respond
from extensions import db
from models import Inbox, User
from models.users import ROLES
from services import agents
from services.users import UserError

bp = Blueprint("agents", __name__, url_prefix="/admin/agents")


def _render(full: str, partial: str, status: int, **context):
    return respond(full, partial, status, {"Cache-Control": "no-store"}, **context)


def _list_page(status: int = 200, form: dict | None = None, error: str = "", created=None):
    return _render(
        "agents/index.html",
        "agents/_agents.html",
        status,
        rows=agents.list_agents(),
        roles=ROLES,
        form=form or {"role": "agent"},
        error=error,
        created=created,
    )


def _agent_page(user: User, status: int = 200, **extra):
    context = {
        "agent": user,
        "roles": ROLES,
        "inboxes": db.session.scalars(select(Inbox).order_by(Inbox.name)).all(),
        "member_of": agents.member_inbox_ids(user),
        "errors": {},
        "notice": "",
        "new_password": None,
        **extra,
    }
    return _render("agents/show.html", "agents/_agent.html", status, **context)


def _after_change(user: User, notice: str):
    """htmx: the panel with the notice; plain form: back to the page (303), notice flashed."""
    if is_htmx():
        return _agent_page(user, notice=notice)
    flash(notice)
    return redirect(url_for(".show", user_id=user.id), 303)


def _get_user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404, "No such agent. It may have been removed; go back to the agents list.")
    return user


@bp.get("")
@admin_required
def index():
    return _list_page()


@bp.post("")
@admin_required
def create():
    form = {key: request.form.get(key, "") for key in ("name", "email", "role")}
    try:
        user, generated = agents.create_agent(
            form["name"], form["email"], form["role"], request.form.get("password", "")
        )
    except UserError as exc:
        return _list_page(422, form=form, error=f"Could not create the account: {exc}.")
    return _list_page(201, created={"user": user, "password": generated})


@bp.get("/<int:user_id>")
@admin_required
def show(user_id: int):
    return _agent_page(_get_user(user_id))


@bp.post("/<int:user_id>/role")
@admin_required
def set_role(user_id: int):
    user = _get_user(user_id)
    role = request.form.get("role", "")
    try:
        agents.set_role(current_user, user, role)
    except UserError as exc:
        return _agent_page(user, 422, errors={"role": f"Role not changed: {exc}."})
    return _after_change(user, f"{user.name} is now {'an admin' if user.is_admin else 'an agent'}.")


@bp.post("/<int:user_id>/active")
@admin_required
def set_active(user_id: int):
    user = _get_user(user_id)
    wanted = request.form.get("active", "")
    if wanted not in ("0", "1"):
        return _agent_page(user, 422, errors={"active": "Use the Deactivate or Reactivate button."})
    try:
        agents.set_active(current_user, user, wanted == "1")
    except UserError as exc:
        return _agent_page(user, 422, errors={"active": f"Not deactivated: {exc}."})
    if user.active:
        return _after_change(user, f"{user.name} can sign in again.")
    return _after_change(user, f"{user.name} is deactivated and can no longer sign in.")


@bp.post("/<int:user_id>/password")
@admin_required
def reset_password(user_id: int):
    user = _get_user(user_id)
    try:
        generated = agents.reset_password(
            user,
            request.form.get("password", ""),
            revoke_api_token=request.form.get("revoke_api_token") == "1",
        )
    except UserError as exc:
        return _agent_page(user, 422, errors={"password": f"Password not changed: {exc}."})
    if generated:  # rendered, not redirected: the only time anyone sees it
        return _agent_page(user, new_password=generated)
    return _after_change(user, f"{user.name}'s password is changed.")


@bp.post("/<int:user_id>/inboxes")
@admin_required
def set_inboxes(user_id: int):
    user = _get_user(user_id)
    values = request.form.getlist("inbox_ids")
    if not all(value.isdigit() for value in values):
        return _agent_page(user, 422, errors={"inboxes": "Tick inboxes from the list."})
    try:
        agents.set_memberships(user, {int(value) for value in values})
    except UserError as exc:
        return _agent_page(user, 422, errors={"inboxes": f"Inboxes not changed: {exc}."})
    return _after_change(user, f"{user.name}'s inboxes are saved.")
