"""The signed-in landing page: the agent's queue (what is assigned to them, with the counts of
the views beside it), or, on a fresh install with no inbox yet, the setup checklist."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user, login_required
from sqlalchemy import func, select

from extensions import db
from models import Inbox, User
from services import workspace
from services.access import visible_inboxes_query
from services.conversation_list import list_conversations
from services.labels import labels_for
from services.unread import unread_ids

bp = Blueprint("home", __name__)
QUEUE_ROWS = 10


@bp.route("/")
@login_required
def index():
    if not db.session.scalar(select(func.count(Inbox.id))):
        return render_template("home/setup.html", **_setup_steps())
    inboxes = db.session.scalars(visible_inboxes_query(current_user)).all()
    page = list_conversations(current_user, status="open", assignee="me", limit=QUEUE_ROWS)
    conversations = [row.conversation for row in page.rows]
    ids = [c.id for c in conversations]
    return render_template(
        "home/index.html",
        inboxes=inboxes,
        counts=workspace.sidebar_counts(current_user, inboxes),
        page=page,
        snippets=workspace.last_snippets(ids),
        row_labels=labels_for(ids),
        unread=unread_ids(current_user.id, conversations),
        args={"assignee": "me"},
        current_id=None,
    )


def _setup_steps() -> dict:
    """What a fresh install still needs; only an admin can do it, an agent is told whom to ask."""
    people = db.session.scalar(select(func.count(User.id)).where(User.active))
    return {"team_added": people > 1}
