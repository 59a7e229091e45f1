"""A thread's spam actions (services/spam.py): "Mark as spam" and "Block sender" on a
conversation that is not spam, "Not spam" on the banner of one that is (_spam.html).

POST only, CSRF like every thread form (the buttons' forms carry only the token). Each answers
as the composer does (thread_actions.after_action): htmx gets the whole thread back, since the
status, the banner, the menus and an activity line all change; a plain form is redirected to
the thread. Conversations outside the agent's inboxes are 404, as everywhere.
"""

from __future__ import annotations

from flask import abort
from flask_login import current_user, login_required

from blueprints.conversations.blueprint import bp
from blueprints.conversations.forms import ActionForm
from blueprints.conversations.pages import visible_conversation
from blueprints.conversations.thread_actions import after_action
from services import spam


@bp.context_processor
def spam_helpers():
    return {"spam_form": lambda: ActionForm(formdata=None), "spam_reason": spam.reason_shown}


def _posted(conversation_id: int):
    """The conversation, once its form's CSRF token checks out."""
    conversation = visible_conversation(conversation_id)
    if not ActionForm().validate_on_submit():
        abort(400, "The form expired: reload the page and try again.")
    return conversation


@bp.post("/conversations/<int:conversation_id>/spam")
@login_required
def mark_spam(conversation_id: int):
    conversation = _posted(conversation_id)
    spam.mark_spam(conversation, current_user)
    return after_action(conversation)


@bp.post("/conversations/<int:conversation_id>/block-sender")
@login_required
def block_sender(conversation_id: int):
    """Block the contact's address in this inbox and mark the conversation as spam."""
    conversation = _posted(conversation_id)
    spam.block_sender(conversation, current_user)
    return after_action(conversation)


@bp.post("/conversations/<int:conversation_id>/not-spam")
@login_required
def not_spam(conversation_id: int):
    """Back to open; the contact's address and domain come off the inbox's block list."""
    conversation = _posted(conversation_id)
    spam.not_spam(conversation, current_user)
    return after_action(conversation)
