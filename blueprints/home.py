"""The signed-in landing page: the inboxes this user works."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user, login_required
from sqlalchemy import func, select

from extensions import db
from models import Conversation
from services.access import visible_inboxes_query

bp = Blueprint("home", __name__)


@bp.route("/")
@login_required
def index():
    inboxes = db.session.scalars(visible_inboxes_query(current_user)).all()
    open_counts = dict(
        db.session.execute(
            select(Conversation.inbox_id, func.count(Conversation.id))
            .where(
                Conversation.status == "open", Conversation.inbox_id.in_([i.id for i in inboxes])
            )
            .group_by(Conversation.inbox_id)
        ).all()
    )
    return render_template("home/index.html", inboxes=inboxes, open_counts=open_counts)
