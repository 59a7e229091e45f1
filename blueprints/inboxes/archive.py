"""Archive, unarchive and delete an inbox, from the settings' "Archive or delete" section
(services/inbox_archive.py says what archiving means)."""

from __future__ import annotations

from flask import abort, flash, redirect, url_for

from blueprints.guards import admin_required
from blueprints.inboxes.blueprint import bp
from blueprints.inboxes.forms.archive import ArchiveForm, DeleteForm
from blueprints.inboxes.settings import render_settings
from blueprints.inboxes.shared import get_inbox
from services import inbox_archive


def _archive_section(inbox_id: int):
    return redirect(url_for("inboxes.edit", inbox_id=inbox_id, section="archive"), 303)


@bp.post("/<int:inbox_id>/archive")
@admin_required
def archive(inbox_id: int):
    inbox = _checked_inbox(inbox_id)
    inbox_archive.archive(inbox)
    flash(f"“{inbox.name}” is archived: it receives no new mail. Its conversations stay.")
    return _archive_section(inbox.id)


@bp.post("/<int:inbox_id>/unarchive")
@admin_required
def unarchive(inbox_id: int):
    inbox = _checked_inbox(inbox_id)
    inbox_archive.unarchive(inbox)
    flash(f"“{inbox.name}” receives mail again.")
    return _archive_section(inbox.id)


def _checked_inbox(inbox_id: int):
    """The inbox an archive button names, once its form's CSRF token checks out."""
    inbox = get_inbox(inbox_id)
    if not ArchiveForm().validate_on_submit():
        abort(400, "The form expired; open the settings again.")
    return inbox


@bp.post("/<int:inbox_id>/delete")
@admin_required
def delete(inbox_id: int):
    inbox = get_inbox(inbox_id)
    form = DeleteForm()
    if form.validate_on_submit():
        try:
            name = inbox_archive.delete_inbox(inbox)
        except inbox_archive.InboxArchiveError as exc:
            form.form_errors.append(str(exc))
        else:
            flash(f"The inbox “{name}” is deleted.")
            return redirect(url_for("inboxes.index"), 303)
    return render_settings(inbox, "archive", status=422, delete_form=form)
