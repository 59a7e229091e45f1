"""One thread: the page, its message poll, a long thread's earlier messages and who else is
viewing it. None of them writes: the thread drawn on the agent's screen marks itself read with
a POST (thread_actions.read), and its conversation's notifications with another
(notifications.read, asked for by _messages.html only when there are unread ones)."""

from __future__ import annotations

from flask import g, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from blueprints.conversations.blueprint import bp
from blueprints.conversations.forms import ActionForm, MoveForm
from blueprints.conversations.pages import (
    IMAGE_TYPES,
    mentionable,
    thread_response,
    visible_conversation,
    workspace_page,
)
from blueprints.htmx import is_htmx
from extensions import db
from models import Contact, Conversation
from services import earlier_messages, presence, workspace
from services.notifications import mentions
from services.timezones import local


@bp.context_processor
def thread_helpers():
    return {
        "local_time": lambda moment: local(moment, current_user),
        # `seen`: who is viewing, when the request read it already (presence.touch)
        "viewers_of": lambda cid, seen=None: presence.viewers(
            cid, excluding=current_user, seen=seen
        ),
        "mention_choices": mention_choices,
        "message_url": message_url,
        "earlier_page": earlier_messages.PAGE,
        "highlight_mentions": lambda text, conversation: mentions.highlight(
            text, mentionable(conversation)
        ),
    }


# An id no message or attachment has: message_url builds each URL with it once per page.
_PLACEHOLDER = str(2**62)


def message_url(endpoint: str, pk: int, name: str = "message_pk", **values) -> str:
    """url_for(endpoint, **{name: pk}, **values) for each message (or attachment) of a thread,
    with werkzeug's URL building paid once per kind of link and page: the URL is built with a
    placeholder id, kept for the request, and each message's id swapped in (building them one
    by one cost as much as the rest of a message's markup)."""
    built = g.setdefault("message_urls", {})
    key = (endpoint, name, *sorted(values.items()))
    if key not in built:
        built[key] = url_for(endpoint, **{name: _PLACEHOLDER}, **values)
    return built[key].replace(_PLACEHOLDER, str(pk))


def mention_choices(conversation: Conversation) -> list[dict]:
    """The composer's @mention list (static/mentions.js): everyone but me, by name."""
    return [
        {"name": person.name, "email": person.email}
        for person in mentionable(conversation)
        if person.id != current_user.id and person.name
    ]


@bp.route("/conversations/<int:conversation_id>")
@login_required
def show(conversation_id: int):
    conversation = visible_conversation(conversation_id)
    # Redis, not the database: a GET never writes. Who is viewing it comes back in the same
    # round trip, for _viewers.html.
    seen = presence.touch(conversation.id, current_user)
    if not is_htmx():
        return workspace_page(conversation, seen_viewers=seen)
    return thread_response(conversation, "conversations/_thread.html", seen_viewers=seen)


@bp.route("/conversations/<int:conversation_id>/messages")
@login_required
def messages(conversation_id: int):
    """The polled message list. Polling rather than SSE or websockets: no extra server
    processes, it works with gunicorn's sync workers (a held-open stream would pin a
    worker per agent), and an idle agent costs one tiny indexed query every 5 s; when
    nothing changed the answer is an empty 204, which htmx leaves alone."""
    conversation = visible_conversation(conversation_id)
    presence.touch(conversation.id, current_user)  # the poll is the presence heartbeat
    if is_htmx() and request.args.get("fp") == workspace.thread_fingerprint(conversation.id):
        return "", 204, {"Vary": "HX-Request"}
    # The change is on the agent's screen now: _messages.html asks to mark it read (a POST).
    return thread_response(conversation, "conversations/_poll.html")


@bp.route("/conversations/<int:conversation_id>/messages/earlier")
@login_required
def earlier(conversation_id: int):
    """A long thread's earlier messages, which the page folds into "N earlier messages"
    (`before`: the first message it shows), a page at a time (services/earlier_messages.py).
    With htmx they replace that button, behind a button for the page before them while any
    are left, and the message poll, out of band, asks for the whole thread from now on
    (`all=1`), keeping the fingerprint the page sent (`fp`); without htmx, the page with the
    whole thread."""
    conversation = visible_conversation(conversation_id)
    if not is_htmx():
        return redirect(url_for(".show", conversation_id=conversation.id, all=1))
    raw = request.args.get("before", "")
    before = int(raw) if raw.isdigit() else workspace.earlier_start(conversation.id)
    found = earlier_messages.page(conversation.id, before) if before else None
    messages = found.messages if found else []
    # The button for the page before these, while any are left (_earlier_button.html).
    more = {"count": found.remaining, "before": found.before} if found and found.before else None
    action = ActionForm(formdata=None)  # split and the delivery buttons: a CSRF token alone
    forms = {"delivery": action, "split": action, "move": MoveForm(formdata=None)}
    body = render_template(
        "conversations/_earlier.html",
        conversation=conversation,
        contact=db.session.get(Contact, conversation.contact_id),
        messages=messages,
        earlier=more,
        users=workspace.senders(messages),
        forms=forms,
        blank_forms=forms,
        move_message_pk=None,
        images=request.args.get("images") == "1",
        image_types=IMAGE_TYPES,
        fingerprint=request.args.get("fp", ""),
        show_all=True,
    )
    return body, 200, {"Vary": "HX-Request"}


@bp.route("/conversations/<int:conversation_id>/viewers")
@login_required
def viewers(conversation_id: int):
    """Who else has this thread open; polled every 10 s by `_viewers.html` (its own few
    lines: every agent with a thread open asks, so it reads nothing else of the thread)."""
    conversation = visible_conversation(conversation_id)
    if not is_htmx():
        return thread_response(conversation, "conversations/_viewers.html")  # the whole page
    body = render_template("conversations/_viewers.html", conversation=conversation)
    return body, 200, {"Vary": "HX-Request"}
