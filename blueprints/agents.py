"""Admin pages for accounts: list, create, role, deactivate, password reset, inbox membership.

Every change is a POST (CSRF checked globally). htmx gets the swapped panel back; a plain
form post gets the whole page. A generated password is rendered once, never flashed (a
flash would sit in the session cookie) and never cached.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, url_for
from flask_login import current_user
from sqlalchemy import select

from blueprints.agent_forms import (
    ActiveForm,
    AgentForm,
    InboxesForm,
    PasswordResetForm,
    RoleForm,
)
from blueprints.guards import admin_required
from blueprints.htmx import is_htmx, respond
from extensions import db
from models import Inbox, User
from services import agents
from services.users import UserError

bp = Blueprint("agents", __name__, url_prefix="/admin/agents")


def _render(full: str, partial: str, status: int, **context):
    return respond(full, partial, status, {"Cache-Control": "no-store"}, **context)


def _list_page(status: int = 200, form: AgentForm | None = None, created=None):
    return _render(
        "agents/index.html",
        "agents/_agents.html",
        status,
        rows=agents.list_agents(),
        form=form or AgentForm(formdata=None),
        created=created,
    )


def _inboxes() -> list[Inbox]:
    return db.session.scalars(select(Inbox).order_by(Inbox.name)).all()


def _agent_page(user: User, status: int = 200, notice: str = "", new_password=None, **posted):
    """The agent's panel: each form filled from the user, or the posted one with its errors."""
    forms = {
        "role_form": RoleForm(formdata=None, obj=user),
        "active_form": ActiveForm(formdata=None, active="0" if user.active else "1"),
        "password_form": PasswordResetForm(user, formdata=None),
        "inboxes_form": InboxesForm(
            _inboxes(), formdata=None, inbox_ids=sorted(agents.member_inbox_ids(user))
        ),
        **posted,
    }
    return _render(
        "agents/show.html",
        "agents/_agent.html",
        status,
        agent=user,
        notice=notice,
        new_password=new_password,
        **forms,
    )


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
    form = AgentForm()
    if form.validate():
        try:
            user, generated = agents.create_agent(
                form.name.data, form.email.data, form.role.data, form.password.data
            )
        except UserError as exc:
            form.form_errors.append(f"Could not create the account: {exc}.")
        else:
            return _list_page(201, created={"user": user, "password": generated})
    else:
        form.form_errors.append("Could not create the account: fix what is marked below.")
    return _list_page(422, form)


@bp.get("/<int:user_id>")
@admin_required
def show(user_id: int):
    return _agent_page(_get_user(user_id))


@bp.post("/<int:user_id>/role")
@admin_required
def set_role(user_id: int):
    user = _get_user(user_id)
    form = RoleForm()
    if form.validate():
        try:
            agents.set_role(current_user, user, form.role.data)
        except UserError as exc:
            form.role.errors.append(f"Role not changed: {exc}.")
        else:
            role = "an admin" if user.is_admin else "an agent"
            return _after_change(user, f"{user.name} is now {role}.")
    return _agent_page(user, 422, role_form=form)


@bp.post("/<int:user_id>/active")
@admin_required
def set_active(user_id: int):
    user = _get_user(user_id)
    form = ActiveForm()
    if form.validate():
        try:
            agents.set_active(current_user, user, form.active.data == "1")
        except UserError as exc:
            form.active.errors.append(f"Not deactivated: {exc}.")
        else:
            if user.active:
                return _after_change(user, f"{user.name} can sign in again.")
            return _after_change(user, f"{user.name} is deactivated and can no longer sign in.")
    return _agent_page(user, 422, active_form=form)


@bp.post("/<int:user_id>/password")
@admin_required
def reset_password(user_id: int):
    user = _get_user(user_id)
    form = PasswordResetForm(user)
    if form.validate():
        try:
            generated = agents.reset_password(
                user, form.password.data, revoke_api_token=form.revoke_api_token.data
            )
        except UserError as exc:
            form.password.errors.append(f"Password not changed: {exc}.")
        else:
            if generated:  # rendered, not redirected: the only time anyone sees it
                return _agent_page(user, new_password=generated)
            return _after_change(user, f"{user.name}'s password is changed.")
    return _agent_page(user, 422, password_form=form)


@bp.post("/<int:user_id>/inboxes")
@admin_required
def set_inboxes(user_id: int):
    user = _get_user(user_id)
    form = InboxesForm(_inboxes())
    if form.validate():
        try:
            agents.set_memberships(user, set(form.inbox_ids.data or ()))
        except UserError as exc:
            form.inbox_ids.errors.append(f"Inboxes not changed: {exc}.")
        else:
            return _after_change(user, f"{user.name}'s inboxes are saved.")
    return _agent_page(user, 422, inboxes_form=form)
