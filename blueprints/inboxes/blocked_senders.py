"""The settings' Blocked senders tab: an inbox's block list (services/spam.py). Mail from a
blocked address or domain lands in the Spam view. Add and Remove are plain POST forms that
answer with this page again; a refused entry is redrawn with what to type instead (422).
Admins only, as every inbox setting; agents block a sender from the thread."""

from __future__ import annotations

from flask import abort, flash, redirect, url_for
from flask_login import current_user

from blueprints.guards import admin_required
from blueprints.inboxes.blueprint import bp
from blueprints.inboxes.forms.blocked import BlockActionForm, BlockForm
from blueprints.inboxes.shared import get_inbox
from models import Inbox
from services import spam


def tab_context(inbox: Inbox, tab: str, extra: dict) -> dict:
    """The list and the forms, for the tab."""
    if tab != "blocked":
        return {}
    return {
        "blocked": spam.blocked_senders(inbox),
        "block_form": extra.get("block_form") or BlockForm(formdata=None),
        "block_action": BlockActionForm(formdata=None),
    }


def _back(inbox: Inbox):
    return redirect(url_for("inboxes.edit", inbox_id=inbox.id, section="blocked"), 303)


@bp.post("/<int:inbox_id>/blocked-senders")
@admin_required
def add_blocked(inbox_id: int):
    inbox = get_inbox(inbox_id)
    form = BlockForm()
    if form.validate_on_submit():
        try:
            entry = spam.add_block(inbox, form.pattern.data, current_user)
        except spam.SpamError as exc:
            form.pattern.errors.append(str(exc))
        else:
            flash(f"{entry.pattern} blocked: its mail to this inbox goes to Spam.")
            return _back(inbox)
    from blueprints.inboxes.settings import render_settings  # it renders this tab too

    return render_settings(inbox, "blocked", status=422, block_form=form)


@bp.post("/<int:inbox_id>/blocked-senders/<int:entry_id>/remove")
@admin_required
def remove_blocked(inbox_id: int, entry_id: int):
    inbox = get_inbox(inbox_id)
    if not BlockActionForm().validate_on_submit():
        abort(400, "The form expired: reload the page and try again.")
    pattern = spam.remove_block(inbox, entry_id)
    if pattern is None:
        abort(404, "This inbox has no such blocked sender.")
    flash(f"{pattern} unblocked: its next email lands in the open queue.")
    return _back(inbox)
