"""The composer's draft, saved on the server as the agent types (services/reply_drafts.py).

_composer.html posts the composer's text, tab and addresses here a moment after each change
(htmx, `input delay:800ms`); the answer is the words of the composer's "Draft saved" line. The
thread draws the composer from the draft (forms.composer_form) and sending deletes it.
"""

from __future__ import annotations

from flask_login import current_user, login_required

from blueprints.conversations.blueprint import bp
from blueprints.conversations.forms import DraftForm
from blueprints.conversations.pages import visible_conversation
from services import reply_drafts


@bp.context_processor
def draft_helpers():
    """_viewers.html: colleagues with an unsent draft here ("Ana is drafting a reply…")."""
    return {"drafters_of": lambda cid: reply_drafts.drafters(cid, excluding=current_user)}


@bp.post("/conversations/<int:conversation_id>/draft")
@login_required
def save_draft(conversation_id: int):
    conversation = visible_conversation(conversation_id)
    form = DraftForm()
    if not form.validate_on_submit():
        return "Draft not saved: reload the page.", 400
    draft = reply_drafts.save(
        conversation.id,
        current_user.id,
        kind=form.kind,
        text=form.text.data or "",
        to=form.to.data or "",
        cc=form.cc.data or "",
        bcc=form.bcc.data or "",
    )
    # Plain text, swapped into the composer's status line (aria-live) by htmx.
    return ("Draft saved" if draft is not None else ""), 200, {"Content-Type": "text/plain"}
