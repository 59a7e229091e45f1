"""The list's bulk bar: one action (assign, status, add a label) on the ticked rows, in one
request and one transaction (services/bulk_actions.py, which runs each conversation through
the single action's service and checks)."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from blueprints.conversations.blueprint import bp
from blueprints.conversations.forms import BulkForm
from blueprints.conversations.pages import (
    current_list_args,
    filter_args,
    list_context,
    list_filters,
)
from blueprints.htmx import is_htmx
from services import bulk_actions, workspace

DONE = {
    "assign": "Assigned",
    "label": "Labelled",
    "open": "Reopened",
    "pending": "Marked as pending",
    "resolved": "Resolved",
}


@bp.post("/conversations/bulk")
@login_required
def bulk():
    form = BulkForm()
    filters = list_filters(current_list_args())
    if not form.validate_on_submit():
        return _answer(filters, 422, refused=form.problems)
    try:
        result = bulk_actions.apply(
            current_user, form.ids.data or [], form.action.data, form.assignee, form.names
        )
    except bulk_actions.BulkError as exc:
        return _answer(filters, 422, refused=[str(exc)])
    count = len(result.conversations)
    noun = "conversation" if count == 1 else "conversations"
    done = f"{DONE[form.action.data]} {count} {noun}."
    if result.changed < count:
        done += f" {count - result.changed} already were."
    return _answer(filters, 200, done=done)


def _answer(filters: dict, status: int, done: str | None = None, refused=None):
    """htmx: the bar's message, plus (after a change) the list and the counts out of band.
    A plain form: back to the list with the message flashed (no resubmit on reload)."""
    if not is_htmx():
        for line in refused or [done]:
            flash(line)
        return redirect(url_for(".index", **filter_args(filters)), 303)
    body = render_template("conversations/_bulk_result.html", bulk_done=done, bulk_refused=refused)
    if status < 400:
        context = {
            **list_context(filters),
            **workspace.sidebar(current_user),
        }
        body += render_template("conversations/_list_update.html", oob=True, **context)
    return body, status, {"Vary": "HX-Request"}
