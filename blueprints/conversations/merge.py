"""Merging conversations (services/merge.py): "Merge into…" in a thread's header
(_controls.html) merges the open conversation into the one whose number the agent types; the
list's bulk bar (_bulk_bar.html) merges the ticked ones into one of them.

After a merge the agent is shown the survivor: htmx gets its thread in the thread pane (the
address bar follows); a plain form is redirected there. A refusal redraws the merge form with
what to fix (422). POST only, CSRF like every thread form.
"""

from __future__ import annotations

from flask import flash, redirect, url_for
from flask_login import current_user, login_required
from wtforms import SelectMultipleField, StringField

from blueprints.conversations.blueprint import bp
from blueprints.conversations.bulk import _answer as bulk_answer
from blueprints.conversations.forms import ThreadForm
from blueprints.conversations.pages import (
    component_response,
    current_list_args,
    filter_args,
    list_filters,
    thread_response,
    visible_conversation,
    workspace_page,
)
from blueprints.htmx import is_htmx
from services import bulk_actions, merge
from services.access import can_view_inbox
from services.routing import surviving
from services.unread import mark_read


class MergeForm(ThreadForm):
    """`into`: the conversation to merge this one into, as "#42" or "42"."""

    into = StringField(
        "Merge this conversation into",
        render_kw={"placeholder": "#42", "size": 8, "required": True},
    )


class BulkMergeForm(ThreadForm):
    """The bulk bar's merge: the ticked rows (`ids`) and, optionally, the one to merge them
    into (`into`; blank: the ticked one highest in the list)."""

    ids = SelectMultipleField("Conversations", coerce=int, validate_choice=False)
    into = StringField("Merge into", render_kw={"placeholder": "#42", "size": 8})


@bp.context_processor
def merge_helpers():
    return {"merge_form": lambda: MergeForm(formdata=None), "merged_into": merged_into}


def merged_into(conversation):
    """The conversation a merged one's messages are in now, if the agent may see it."""
    if conversation.merged_into_id is None:
        return None
    survivor = surviving(conversation)
    return survivor if can_view_inbox(current_user, survivor.inbox_id) else None


@bp.post("/conversations/<int:conversation_id>/merge")
@login_required
def merge_into(conversation_id: int):
    source = visible_conversation(conversation_id)
    form = MergeForm()
    try:
        survivor = merge.find_survivor(current_user, form.into.data or "")
        merge.merge(source, survivor, current_user)
    except merge.MergeError as exc:
        form.into.errors = [*form.into.errors, str(exc)]
        if not is_htmx():
            return workspace_page(source, 422, forms={"merge": form})
        return component_response(
            source, "conversations/_controls.html", (), 422, forms={"merge": form}
        )
    done = f"Merged #{source.display_number} into #{survivor.display_number}."
    if not is_htmx():
        flash(done)
        return redirect(url_for(".show", conversation_id=survivor.id), 303)
    mark_read(survivor, current_user.id)
    notice = {
        "text": f"{done} Mail to #{source.display_number} arrives here.",
        "conversation": source,
    }
    body, status, headers = thread_response(survivor, "conversations/_thread.html", moved=notice)
    url = url_for(
        ".show", conversation_id=survivor.id, **filter_args(list_filters(current_list_args()))
    )
    headers.update(
        {"HX-Retarget": "#thread-pane", "HX-Reswap": "innerHTML show:top", "HX-Push-Url": url}
    )
    return body, status, headers


@bp.post("/conversations/bulk/merge")
@login_required
def bulk_merge():
    """The bulk bar's Merge: the ticked rows into one, in one transaction."""
    form = BulkMergeForm()
    filters = list_filters(current_list_args())
    if not form.validate_on_submit():
        return bulk_answer(filters, 422, refused=[m for ms in form.errors.values() for m in ms])
    try:
        result = bulk_actions.merge_selected(current_user, form.ids.data or [], form.into.data)
    except bulk_actions.BulkError as exc:
        return bulk_answer(filters, 422, refused=[str(exc)])
    survivor, *merged = result.conversations
    numbers = ", ".join(f"#{c.display_number}" for c in merged)
    return bulk_answer(filters, 200, done=f"Merged {numbers} into #{survivor.display_number}.")
