"""What every inbox page uses: the template helpers and the inbox lookup."""

from __future__ import annotations

from flask import abort, url_for

from blueprints.inboxes.blueprint import bp
from blueprints.inboxes.steps import STEP_TITLES, TOTAL_STEPS
from extensions import db, get_settings
from models import Inbox


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


def get_inbox(inbox_id: int) -> Inbox:
    inbox = db.session.get(Inbox, inbox_id)
    if inbox is None:
        abort(404, "There is no such inbox.")
    return inbox
