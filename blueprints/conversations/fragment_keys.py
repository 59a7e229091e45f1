"""The keys a thread's parts are kept under (blueprints/fragment_cache.py, `{% cached %}`):
each holds everything its part is drawn from and the agent it is drawn for, so a change to
any of it draws the part anew and no agent gets another's. None draws the part every time:
for what reads more rows or the clock's seconds, and for a form that failed (it shows what
the agent typed and what to fix)."""

from __future__ import annotations

from flask import request
from flask_login import current_user
from jinja2 import pass_context

from blueprints.conversations.blueprint import bp
from blueprints.conversations.pages import mentionable
from blueprints.presentation import when
from blueprints.signature_forms import signature_for
from services import send_later

TOOLBAR_FORMS = ("status", "assign", "labels", "snooze")
# What a page draws the composer with after an action (a refused reply, a reply taken back,
# the Forward tab opened on a refusal): drawn every time.
COMPOSER_STATES = ("collision", "taken_back", "forwarding", "dropped_files")


@bp.context_processor
def fragment_keys():
    return {
        "message_key": message_key,
        "toolbar_key": toolbar_key,
        "composer_key": composer_key,
        "row_key": row_key,
        "bulk_bar_key": bulk_bar_key,
    }


def _agent() -> tuple:
    """Whom (and where) the parts are drawn for. A page asks for dozens of keys: one look
    through Flask-Login's proxy each, not one per attribute."""
    user = current_user._get_current_object()
    return (user.id, user.timezone, request.script_root)


def _posted(context) -> frozenset:
    """The names of the forms that failed (pages.thread_context's LazyForms)."""
    return getattr(context["forms"], "posted", None) or frozenset(context["forms"])


def message_key(message, author, contact, conversation, images, show_all, move_message_pk):
    """_message.html's. Any change to the row moves its updated_at (the thread's fingerprint
    counts on it too); its author's name, the contact's address and, for a note, who its
    @mentions may name come from other rows; "5 min ago" from the clock. Drawn every time: a
    reply that waits (its countdown, who wrote since), a third party's email, and the one
    email whose move failed."""
    if message.participant_id is not None or move_message_pk == message.id:
        return None
    if message.direction == "outgoing" and message.delivery_status in send_later.WAITING:
        return None
    people = ()
    if message.direction == "note":
        people = tuple((p.id, p.name) for p in mentionable(conversation))
    return (
        "message",
        *_agent(),
        conversation.id,
        message.id,
        message.updated_at,
        when(message.created_at),
        author.name if author else None,
        contact.email,
        people,
        bool(images),
        bool(show_all),
        tuple(
            (a.id, a.storage_key, a.filename, a.content_type, a.size, a.skipped_reason)
            for a in message.attachments
        ),
    )


@pass_context
def toolbar_key(context):
    """The header's menus (_controls, _labels, _snooze and _spam.html): the conversation's
    status, assignee and snooze, who it may be assigned to, its labels. Drawn every time: a
    merged conversation (where it went is read as it is drawn) and one in Spam (why)."""
    conversation, posted = context["conversation"], _posted(context)
    if posted.intersection(TOOLBAR_FORMS) or "merge" in posted:
        return None
    if conversation.merged_into_id or conversation.status == "spam":
        return None
    return (
        "toolbar",
        *_agent(),
        bool(context.get("oob")),
        conversation.id,
        conversation.status,
        conversation.assignee_id,
        conversation.snoozed_until,
        conversation.contact.email,
        tuple((member.id, member.name) for member in context["members"]),
        tuple((label.name, label.display_name, label.color) for label in context["thread_labels"]),
    )


@pass_context
def composer_key(context):
    """_composer.html and its Forward tab: what the composer is filled with (the agent's
    draft, else reply-all), where it may be sent from, the signature, who a note may
    @mention, the messages shown (the newest seen, the emails one may forward). Drawn every
    time after an action, and for a message's "Forward" link (?forward=)."""
    conversation, contact, posted = context["conversation"], context["contact"], _posted(context)
    if "composer" in posted or "forward" in posted:
        return None
    if any(context.get(name) for name in COMPOSER_STATES) or request.args.get("forward"):
        return None
    form = context["forms"]["composer"]
    return (
        "composer",
        *_agent(),
        conversation.id,
        contact.name,
        contact.email,
        form.text.data,
        form.to.data,
        form.cc.data,
        form.bcc.data,
        form.private.data,
        tuple(form.from_address.choices or ()),
        form.from_address.data,
        form.addressee,
        form.draft is not None,
        tuple((m.id, m.updated_at) for m in context["messages"]),
        tuple((p.id, p.name, p.email) for p in mentionable(conversation)),
        str(signature_for(conversation.inbox, current_user)),
    )


@pass_context
def row_key(context, row):
    """_row.html's, a row of the list: the conversation as the row shows it (its contact,
    assignee, snippet, labels, whether it is unread for this agent, "5 min ago"), whether it
    is the one open, and the list's filters its link keeps."""
    c, contact = row.conversation, row.contact
    labels = context.get("row_labels", {}).get(c.id) or ()
    return (
        "row",
        *_agent(),
        c.id,
        c.display_number,
        c.subject,
        c.status,
        c.last_activity_at,
        when(c.last_activity_at),
        contact.name,
        contact.email,
        row.assignee.name if row.assignee else None,
        str(context["snippets"].get(c.id, "")),
        tuple((label.display_name, label.color) for label in labels),
        c.id in context["unread"],
        context.get("current_id") == c.id,
        bool(context.get("plain_rows")),
        bool(context.get("row_oob")),
        tuple(sorted((context.get("args") or {}).items())),
    )


@pass_context
def bulk_bar_key(context):
    """_bulk_bar.html's: who it can assign to and the labels it offers. Drawn every time
    with a bulk action's answer (what it did, or why it was refused)."""
    if context.get("bulk_done") or context.get("bulk_refused"):
        return None
    return (
        "bulk-bar",
        *_agent(),
        tuple(context["bulk_assignees"]),
        tuple(label.display_name for label in context.get("labels") or ()),
    )
