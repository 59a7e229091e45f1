"""The inbox signature's live preview (Identity tab and the wizard's identity step; the
editor is templates/_signature_editor.html) and the template helpers that draw signatures:
the editor's first preview and the composer's "Signature, added when sent"."""

from __future__ import annotations

from flask_login import current_user

from blueprints.guards import admin_required
from blueprints.inboxes.blueprint import bp
from blueprints.signature_forms import PreviewForm, preview, preview_response, signature_for

bp.add_app_template_global(preview, "signature_preview")
bp.add_app_template_global(signature_for, "signature_for")


@bp.post("/signature-preview")
@admin_required
def signature_preview():
    """The posted signature as a reply by the current admin would carry it, with the inbox's
    name and address as typed on the page. Writes nothing."""
    form = PreviewForm()
    return preview_response(form, current_user, form.inbox_name.data, form.inbox_address.data)
