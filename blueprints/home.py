"""The signed-in landing page: the inboxes this user works."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user, login_required
from sqlalchemy import func, select

from extensions import db
from models import Conversation, Inbox, InboxMember

bp = Blueprint("home", __name__)


def visible_inboxes_query():
    """Admins see every inbox; agents only the inboxes they are members of."""
    query = select(Inbox).order_by(Inbox.name)
    if not current_user.is_admin:
        query = query.join(InboxMember).where(InboxMember.user_id == current_user.id)
    return query


@bp.route("/")
@login_required
def index():
    inboxes = db.session.scalars(visible_inboxes_query()).all()
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
