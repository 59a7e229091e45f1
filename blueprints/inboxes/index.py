"""The admin list of inboxes: each one's mode, health, agent count and links (archived ones
last, marked)."""

from __future__ import annotations

from flask import render_template
from sqlalchemy import func, select

from blueprints.guards import admin_required
from blueprints.inboxes.blueprint import bp
from extensions import db
from models import Inbox, InboxMember
from services.inbox_health import health_states


@bp.route("")
@admin_required
def index():
    inboxes = db.session.scalars(
        select(Inbox).order_by(Inbox.archived_at.is_not(None), Inbox.name)
    ).all()
    members = dict(
        db.session.execute(
            select(InboxMember.inbox_id, func.count()).group_by(InboxMember.inbox_id)
        ).all()
    )
    return render_template(
        "inboxes/index.html", inboxes=inboxes, members=members, states=health_states(inboxes)
    )
