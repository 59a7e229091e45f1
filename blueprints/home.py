"""The signed-in landing page: the inboxes this user works."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user, login_required

from extensions import db
from services.access import visible_inboxes_query
from services.workspace import count_open

bp = Blueprint("home", __name__)


@bp.route("/")
@login_required
def index():
    inboxes = db.session.scalars(visible_inboxes_query(current_user)).all()
    open_counts = count_open(current_user, [i.id for i in inboxes])["per_inbox"]
    return render_template("home/index.html", inboxes=inboxes, open_counts=open_counts)
