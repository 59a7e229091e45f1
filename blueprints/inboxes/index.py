"""The admin list of inboxes, with each one's agent count."""

from __future__ import annotations

from flask import render_template
from sqlalchemy import func, select

from blueprints.guards import admin_required
from blueprints.inboxes.blueprint import bp
from extensions import db
from models import Inbox, InboxMember


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
