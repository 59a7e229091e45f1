"""The signed-in user's own page: who they are, and their API token."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm

from extensions import db
from services.access import visible_inboxes_query
from services.timezones import is_zone, zone_names

bp = Blueprint("profile", __name__, url_prefix="/profile")


class TokenForm(FlaskForm):
    """Only the CSRF token: the button itself is the whole request."""


def _page(new_token: str | None = None, status: int = 200, errors: dict | None = None):
    inboxes = db.session.scalars(visible_inboxes_query(current_user)).all()
    response = render_template(
        "profile/index.html",
        inboxes=inboxes,
        new_token=new_token,
        zones=zone_names(),
        errors=errors or {},
    )
    headers = {"Cache-Control": "no-store"}  # a token page must never be cached or restored
    return response, status, headers


@bp.get("")
@login_required
def index():
    return _page()


@bp.post("/api-token")
@login_required
def new_api_token():
    form = TokenForm()
    if not form.validate_on_submit():
        return _page(status=400)
    token = current_user.issue_api_token()  # replaces the old hash: the old token stops working
    db.session.commit()
    return _page(new_token=token)


@bp.post("/api-token/revoke")
@login_required
def revoke_api_token():
    form = TokenForm()
    if form.validate_on_submit():
        current_user.api_token_hash = None
        db.session.commit()
        flash("Your API token is revoked. Scripts using it are refused from now on.")
    return redirect(url_for("profile.index"))


@bp.post("/timezone")
@login_required
def set_timezone():
    """The zone snooze times are typed and shown in."""
    form = TokenForm()
    if not form.validate_on_submit():
        return _page(status=400)
    name = request.form.get("timezone", "").strip()
    if not is_zone(name):
        message = f"“{name[:64]}” is not a time zone this server knows; pick one from the list."
        return _page(status=422, errors={"timezone": message})
    current_user.timezone = name
    db.session.commit()
    flash(f"Times are now shown in {name}.")
    return redirect(url_for("profile.index"))
