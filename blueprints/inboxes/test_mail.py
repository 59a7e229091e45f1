"""The wizard's step 7, also linked from the settings: send a test email or inject a sample,
then wait live for the conversation it creates."""

from __future__ import annotations

from flask import abort, render_template
from flask_login import current_user

from blueprints.guards import admin_required
from blueprints.htmx import respond
from blueprints.inboxes.blueprint import bp
from blueprints.inboxes.shared import get_inbox
from ingress.receive import IngressUnavailable
from models import Inbox
from services.inbox_test_mail import TestMailError, inject_sample, outbound_path, progress
from services.inbox_test_mail import send_test_email as send_test_mail


def render_test_page(inbox: Inbox, status: int = 200, headers=None, **extra):
    context = {"inbox": inbox, "outbound": outbound_path(inbox), "step": "test", **extra}
    return respond("inboxes/test.html", "inboxes/_test.html", status, headers, **context)


@bp.route("/<int:inbox_id>/test")
@admin_required
def test_page(inbox_id: int):
    return render_test_page(get_inbox(inbox_id))


@bp.post("/<int:inbox_id>/test/<how>")
@admin_required
def start_test(inbox_id: int, how: str):
    inbox = get_inbox(inbox_id)
    try:
        if how == "send":
            token = send_test_mail(inbox, current_user.email)
        elif how == "inject":
            token = inject_sample(inbox, current_user.email)
        else:
            abort(404)
    except (TestMailError, IngressUnavailable) as exc:
        return render_test_page(inbox, 422, error=str(exc))
    return render_test_page(inbox, how=how, progress=progress(inbox, token), token=token)


@bp.route("/<int:inbox_id>/test/<token>")
@admin_required
def test_progress(inbox_id: int, token: str):
    inbox = get_inbox(inbox_id)
    return render_template(
        "inboxes/_test_progress.html", inbox=inbox, token=token, progress=progress(inbox, token)
    )
