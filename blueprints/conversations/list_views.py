"""The agent workspace: conversation list, thread view and the actions on a thread (htmx).

Every region that htmx swaps is one `_partial.html` that the full page includes too; an
`HX-Request` gets the partial alone. Conversations outside the user's inboxes are 404
everywhere (page, fragments, actions), so nobody learns that they exist.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import case, func, select
from sqlalchemy.orm import selectinload

from blueprints.htmx import is_htmx
from extensions import db
from models import Contact, Conversation, Inbox, InboxMember, Message, User
from services import list_version, presence
from services.access import can_view_inbox, visible_inboxes_query
from services.conversations import ConversationError, list_conversations, update_conversation
from services.labels import (
    labels_for,
    labels_visible_to,
)
from services.replies import ReplyError, create_reply, mark_sent, retry_delivery
from services.reply_form import collisions, uploaded_attachments
from services.timezones import local
from services.unread import mark_read, unread_ids

bp = Blueprint("conversations", __name__)

LIST_STATUSES = ("open", "pending", "snoozed", "resolved")
ASSIGNEES = ("me", "unassigned", "all")
ACTION_STATUSES = ("open", "pending", "resolved")
THREADING_REASONS = {
    "new": "new conversation",
    "reply_token": "joined by reply address",
    "in_reply_to": "joined by In-Reply-To",
    "references": "joined by References",
    "subject": "joined by same subject",
    "manual": "moved here by an agent",
}
AUTO_FLAGS = {"bounce": "bounce", "auto_reply": "auto-reply"}
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")  # as attachments.py


@bp.context_processor
def helpers():
    return {
        "when": when,
        "local_time": lambda moment: local(moment, current_user),
        "threading_reasons": THREADING_REASONS,
        "auto_flags": AUTO_FLAGS,
    }


def when(moment: datetime | None) -> str:
    """ "5 min ago" for today's activity, a date for anything older."""
    if moment is None:
        return ""
    seconds = (datetime.now(UTC) - moment).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    return moment.strftime("%Y-%m-%d %H:%M")


# --- the list -------------------------------------------------------------------------------


def list_filters() -> dict:
    """The list's filters from the query string; unknown values fall back to the defaults."""
    status = request.args.get("status", "open")
    assignee = request.args.get("assignee", "all")
    inbox_id = request.args.get("inbox_id", "")
    return {
        "status": status if status in LIST_STATUSES else "open",
        "assignee": assignee if assignee in ASSIGNEES else "all",
        "inbox_id": int(inbox_id) if inbox_id.isdigit() else None,
        "q": request.args.get("q", "").strip()[:200],
        "label": " ".join(request.args.get("label", "").split())[:40],
    }


LIST_DEFAULTS = {"status": "open", "assignee": "all"}


def filter_args(filters: dict) -> dict:
    """The filters worth keeping in a URL: set and not the defaults."""
    return {k: v for k, v in filters.items() if v not in (None, "") and LIST_DEFAULTS.get(k) != v}


def last_snippets(conversation_ids: list[int]) -> dict[int, str]:
    """The text of each conversation's latest message or reply, in one query."""
    if not conversation_ids:
        return {}
    latest = (
        select(func.max(Message.id))
        .where(
            Message.conversation_id.in_(conversation_ids),
            Message.direction.in_(("incoming", "outgoing")),
        )
        .group_by(Message.conversation_id)
    )
    rows = db.session.execute(
        select(Message.conversation_id, Message.text_body).where(Message.id.in_(latest))
    ).all()
    return {cid: " ".join((text or "").split())[:140] for cid, text in rows}


def sidebar_counts(inboxes: list[Inbox]) -> dict:
    """Open conversations per inbox: all, mine and unassigned. One grouped query, cached in
    Redis until anything in the lists changes (a count over every open conversation is the
    costliest part of a list page on a big mailbox)."""
    ids = sorted(inbox.id for inbox in inboxes)
    key = f"sidebar:{current_user.id}:{','.join(map(str, ids))}"
    counts = list_version.cached(key, lambda: _count_open(ids))
    counts["per_inbox"] = {int(k): v for k, v in counts["per_inbox"].items()}
    return counts


def _count_open(ids: list[int]) -> dict:
    rows = db.session.execute(
        select(
            Conversation.inbox_id,
            func.count(Conversation.id),
            func.sum(case((Conversation.assignee_id == current_user.id, 1), else_=0)),
            func.sum(case((Conversation.assignee_id.is_(None), 1), else_=0)),
        )
        .where(Conversation.status == "open", Conversation.inbox_id.in_(ids))
        .group_by(Conversation.inbox_id)
    ).all()
    per_inbox = {inbox_id: count for inbox_id, count, _, _ in rows}
    return {
        "per_inbox": per_inbox,
        "all": sum(per_inbox.values()),
        "mine": sum(mine or 0 for _, _, mine, _ in rows),
        "unassigned": sum(free or 0 for _, _, _, free in rows),
    }


def list_context(filters: dict, cursor: str | None = None) -> dict:
    """One page of the list for these filters, with what its rows show."""
    try:
        page = list_conversations(
            current_user,
            inbox_id=filters["inbox_id"],
            status=filters["status"],
            assignee=None if filters["assignee"] == "all" else filters["assignee"],
            q=filters["q"] or None,
            cursor=cursor,
            label=filters["label"] or None,
        )
    except ConversationError as exc:
        abort(400, f"{exc} Go back to the first page of the list.")
    conversations = [row.conversation for row in page.rows]
    ids = [c.id for c in conversations]
    unread = unread_ids(current_user.id, conversations)
    return {
        "page": page,
        "filters": filters,
        "args": filter_args(filters),
        "snippets": last_snippets(ids),
        "row_labels": labels_for(ids),
        "unread": unread,
        "list_fp": list_fingerprint(page, unread),
        "current_id": _open_conversation_id(),
    }


def _open_conversation_id() -> int | None:
    """The thread open beside the list: its row stays highlighted (the poll sends `open`)."""
    if request.view_args and "conversation_id" in request.view_args:
        return request.view_args["conversation_id"]
    raw = request.args.get("open", "")
    return int(raw) if raw.isdigit() else None


def list_fingerprint(page, unread: set[int]) -> str:
    """What the first page shows, minus the clock: the poll re-renders only when it moved."""
    parts = [
        f"{r.conversation.id}:{r.conversation.last_activity_at.timestamp()}:"
        f"{r.conversation.status}:{r.conversation.assignee_id}:{int(r.conversation.id in unread)}"
        for r in page.rows
    ]
    parts.append(str(bool(page.next_cursor)))
    return hashlib.sha1("|".join(parts).encode(), usedforsecurity=False).hexdigest()[:16]


def sidebar_context() -> dict:
    inboxes = db.session.scalars(visible_inboxes_query(current_user)).all()
    # Labels are read fresh (one indexed query), never from the counts cache: what a user may
    # see changes with inbox membership, which does not move the list version.
    labels = labels_visible_to(current_user)
    return {"inboxes": inboxes, "counts": sidebar_counts(inboxes), "labels": labels}


def workspace_page(conversation: Conversation | None = None, status: int = 200, **extra):
    """The full page: sidebar, list (filters from the query string) and the open thread."""
    context = {
        **list_context(list_filters(), request.args.get("cursor") or None),
        **sidebar_context(),
        "list_version": list_version.current(),
        "conversation": None,
    }
    if conversation is not None:
        context.update(thread_context(conversation, **extra))
    return render_template("conversations/index.html", **context), status, {"Vary": "HX-Request"}


@bp.route("/conversations")
@login_required
def index():
    cursor = request.args.get("cursor") or None
    if is_htmx() and cursor:  # "load more": rows plus the next button, appended in place
        context = list_context(list_filters(), cursor)
        return render_template("conversations/_rows.html", **context), {"Vary": "HX-Request"}
    if is_htmx():  # the filter form: the list alone
        context = {**list_context(list_filters()), "list_version": list_version.current()}
        return render_template("conversations/_list.html", **context), {"Vary": "HX-Request"}
    return workspace_page()


@bp.route("/conversations/updates")
@login_required
def list_updates():
    """The list's poll (every 5 s, same filters as the form). Cheap when nothing happened:
    the Redis version counter is unchanged → an empty 204, no database query. Otherwise the
    first page is re-queried; unchanged rows only refresh the version, changed rows swap the
    list and the sidebar counts in (out of band). Same reasoning as the thread's poll:
    polling works with plain gunicorn workers and costs an idle agent one Redis GET."""
    if not is_htmx():  # opened by hand: the list itself, same filters
        return redirect(url_for(".index", **filter_args(list_filters())), 303)
    version = list_version.current()
    if request.args.get("v") == version:
        return "", 204, {"Vary": "HX-Request"}
    context = {**list_context(list_filters()), "list_version": version}
    if request.args.get("fp") == context["list_fp"]:
        return render_template("conversations/_list_state.html", oob=True, **context)
    return render_template(
        "conversations/_list_update.html", oob=True, **context, **sidebar_context()
    )


# --- one thread -----------------------------------------------------------------------------


def visible_conversation(conversation_id: int) -> Conversation:
    conversation = db.session.get(Conversation, conversation_id)
    if conversation is None or not can_view_inbox(current_user, conversation.inbox_id):
        abort(404, "No such conversation.")  # 404, not 403: do not confirm it exists
    return conversation


def fingerprint(conversation_id: int) -> str:
    """Changes when a message arrives or any message changes (delivery state); one
    aggregate over the (conversation_id, id) index."""
    count, last_id, changed = db.session.execute(
        select(func.count(Message.id), func.max(Message.id), func.max(Message.updated_at)).where(
            Message.conversation_id == conversation_id
        )
    ).one()
    stamp = changed.timestamp() if changed is not None else 0
    return f"{count}-{last_id or 0}-{stamp:.6f}"


def thread_context(conversation: Conversation, **extra) -> dict:
    # Attachments in one query, not one per message (a 500-message thread made 479 queries).
    messages = db.session.scalars(
        select(Message)
        .where(Message.conversation_id == conversation.id)
        .order_by(Message.id)
        .options(selectinload(Message.attachments))
    ).all()
    user_ids = {m.sender_user_id for m in messages if m.sender_user_id}
    users = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(user_ids)))}
    contact = db.session.get(Contact, conversation.contact_id)
    members = db.session.scalars(
        select(User)
        .outerjoin(
            InboxMember,
            (InboxMember.user_id == User.id) & (InboxMember.inbox_id == conversation.inbox_id),
        )
        .where(User.active, (InboxMember.user_id.is_not(None)) | (User.role == "admin"))
        .order_by(User.name)
    ).all()
    images = request.args.get("images") == "1"
    return {
        "conversation": conversation,
        "inbox": db.session.get(Inbox, conversation.inbox_id),
        "contact": contact,
        "messages": messages,
        "users": users,
        "members": members,
        "assignee": users.get(conversation.assignee_id)
        or (db.session.get(User, conversation.assignee_id) if conversation.assignee_id else None),
        "images": images,
        "image_types": IMAGE_TYPES,
        "fingerprint": fingerprint(conversation.id),
        "statuses": ACTION_STATUSES,
        "form": {},
        "move_message_id": None,
        "moved": None,
        "errors": {},
        **extra,
    }


@bp.route("/conversations/<int:conversation_id>")
@login_required
def show(conversation_id: int):
    conversation = visible_conversation(conversation_id)
    presence.touch(conversation.id, current_user)
    mark_read(conversation, current_user.id)
    if not is_htmx():
        return workspace_page(conversation)
    return thread_response(conversation, "conversations/_thread.html")


def thread_response(conversation: Conversation, partial: str, status: int = 200, **extra):
    """The thread fragment for htmx; without htmx the whole workspace with the thread open."""
    if not is_htmx():
        return workspace_page(conversation, status, **extra)
    body = render_template(partial, **thread_context(conversation, **extra))
    return body, status, {"Vary": "HX-Request"}


@bp.route("/conversations/<int:conversation_id>/messages")
@login_required
def messages(conversation_id: int):
    """The polled message list. Polling rather than SSE or websockets: no extra server
    processes, it works with gunicorn's sync workers (a held-open stream would pin a
    worker per agent), and an idle agent costs one tiny indexed query every 5 s; when
    nothing changed the answer is an empty 204, which htmx leaves alone."""
    conversation = visible_conversation(conversation_id)
    presence.touch(conversation.id, current_user)  # the poll is the presence heartbeat
    if is_htmx() and request.args.get("fp") == fingerprint(conversation.id):
        return "", 204, {"Vary": "HX-Request"}
    mark_read(conversation, current_user.id)  # the change is on the agent's screen now
    return thread_response(conversation, "conversations/_poll.html")


@bp.route("/conversations/<int:conversation_id>/viewers")
@login_required
def viewers(conversation_id: int):
    """Who else has this thread open; polled every 10 s by `_viewers.html`."""
    conversation = visible_conversation(conversation_id)
    return thread_response(conversation, "conversations/_viewers.html")


@bp.context_processor
def presence_helpers():
    return {"viewers_of": lambda cid: presence.viewers(cid, excluding=current_user)}


# --- actions: POST only, CSRF via base.html's hx-headers or the form's hidden field --------


def after_action(conversation: Conversation, status: int = 200, **extra):
    if not is_htmx() and status < 400:
        return redirect(url_for(".show", conversation_id=conversation.id), 303)
    mark_read(conversation, current_user.id)
    return thread_response(conversation, "conversations/_thread.html", status, **extra)


@bp.post("/conversations/<int:conversation_id>/reply")
@login_required
def reply(conversation_id: int):
    conversation = visible_conversation(conversation_id)
    form = {
        "text": request.form.get("text", ""),
        "cc": request.form.get("cc", ""),
        "bcc": request.form.get("bcc", ""),
        "private": request.form.get("private") == "1",
    }
    try:
        attachments = uploaded_attachments(request.files.getlist("attachments"))
        newer = collisions(conversation.id, request.form.get("seen", ""))
        if newer and request.form.get("confirm") != "1":  # ask before sending over news
            return after_action(
                conversation, 409, form=form, collision=newer, dropped_files=len(attachments)
            )
        create_reply(
            conversation,
            current_user,
            form["text"],
            private=form["private"],
            cc=form["cc"],
            bcc=form["bcc"],
            attachments=attachments,
        )
    except ReplyError as exc:
        return after_action(conversation, 422, form=form, errors={"reply": str(exc)})
    return after_action(conversation)


@bp.post("/conversations/<int:conversation_id>/assign")
@login_required
def assign(conversation_id: int):
    conversation = visible_conversation(conversation_id)
    raw = request.form.get("assignee_id", "").strip()
    if raw and not raw.isdigit():
        return after_action(conversation, 422, errors={"assign": "Choose a person from the list."})
    try:
        update_conversation(conversation, current_user, assignee_id=int(raw) if raw else None)
    except ConversationError as exc:
        db.session.rollback()
        return after_action(conversation, 422, errors={"assign": str(exc)})
    return after_action(conversation)


@bp.post("/conversations/<int:conversation_id>/status")
@login_required
def set_status(conversation_id: int):
    conversation = visible_conversation(conversation_id)
    status = request.form.get("status", "")
    if status not in ACTION_STATUSES:
        message = f"Status must be one of {', '.join(ACTION_STATUSES)}."
        return after_action(conversation, 422, errors={"status": message})
    update_conversation(conversation, current_user, status=status)
    return after_action(conversation)


@bp.post("/conversations/<int:conversation_id>/messages/<int:message_id>/retry")
@login_required
def retry(conversation_id: int, message_id: int):
    """Send a failed reply, or one of unknown fate, again."""
    return _decide(conversation_id, message_id, retry_delivery)


@bp.post("/conversations/<int:conversation_id>/messages/<int:message_id>/mark-sent")
@login_required
def mark_as_sent(conversation_id: int, message_id: int):
    """A reply of unknown fate reached the customer: never send it again."""
    return _decide(conversation_id, message_id, lambda message: mark_sent(message, current_user))


def _decide(conversation_id: int, message_id: int, decision):
    conversation = visible_conversation(conversation_id)
    message = db.session.get(Message, message_id)
    if message is None or message.conversation_id != conversation.id:
        abort(404, "No such message.")
    try:
        decision(message)
    except ReplyError as exc:
        return after_action(conversation, 422, errors={"retry": str(exc)})
    return after_action(conversation)


# Labels, snooze and moving messages live in blueprints/thread_actions.py, on this blueprint;
# the document inside a message's HTML frame in blueprints/mail_frame.py.
from blueprints import mail_frame, thread_actions  # noqa: E402, F401
