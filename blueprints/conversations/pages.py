"""What every workspace response is made of: the list's filters from the query string, the
list and thread contexts, and the full page around them. Shared by the list, the
thread and the actions, which each answer with one region, one thread component or the
whole workspace."""

from __future__ import annotations

from flask import abort, render_template, request
from flask_login import current_user

from blueprints.conversations.forms import ACTION_STATUSES, SNOOZE_LABELS, thread_forms
from blueprints.htmx import is_htmx
from models import Conversation
from services import list_version, workspace
from services.access import visible_conversation as find_visible
from services.conversations import ConversationError
from services.labels import conversation_labels

LIST_STATUSES = ("open", "pending", "snoozed", "resolved")
ASSIGNEES = ("me", "unassigned", "all")
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")  # as attachments.py
LIST_DEFAULTS = {"status": "open", "assignee": "all"}


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


def filter_args(filters: dict) -> dict:
    """The filters worth keeping in a URL: set and not the defaults."""
    return {k: v for k, v in filters.items() if v not in (None, "") and LIST_DEFAULTS.get(k) != v}


def list_context(filters: dict, cursor: str | None = None) -> dict:
    """One page of the list for these filters; a cursor that does not fit them is a 400."""
    try:
        rows = workspace.list_page(current_user, filters, cursor)
    except ConversationError as exc:
        abort(400, f"{exc} Go back to the first page of the list.")
    return {
        **rows,
        "filters": filters,
        "args": filter_args(filters),
        "current_id": _open_conversation_id(),
    }


def _open_conversation_id() -> int | None:
    """The thread open beside the list: its row stays highlighted (the poll sends `open`)."""
    if request.view_args and "conversation_id" in request.view_args:
        return request.view_args["conversation_id"]
    raw = request.args.get("open", "")
    return int(raw) if raw.isdigit() else None


def visible_conversation(conversation_id: int) -> Conversation:
    conversation = find_visible(current_user, conversation_id)
    if conversation is None:
        abort(404, "No such conversation.")  # 404, not 403: do not confirm it exists
    return conversation


def thread_context(conversation: Conversation, forms: dict | None = None, **extra) -> dict:
    """What the thread's templates draw; `forms` are the posted forms that failed (by name, as
    in forms.thread_forms), drawn with what the agent typed and what to fix."""
    thread = workspace.thread(conversation)
    labels = conversation_labels(conversation.id)
    blank = thread_forms(conversation, thread["members"], labels, current_user.id)
    forms = {**blank, **(forms or {})}
    forms["assign"].assignee_id.choices = blank["assign"].assignee_id.choices
    return {
        **thread,
        "thread_labels": labels,
        # The posted forms that failed are drawn instead of the blank ones; the blank ones
        # stay at hand for the forms drawn once per email (move, split).
        "forms": forms,
        "blank_forms": blank,
        # Remote images, once the agent loaded them: a page's ?images=1, or a thread form's
        # images=1 (_messages_poll.html), so an action's answer does not block them again.
        "images": "1" in (request.args.get("images"), request.form.get("images")),
        "image_types": IMAGE_TYPES,
        "statuses": ACTION_STATUSES,
        "snooze_presets": SNOOZE_LABELS,
        "move_message_pk": None,
        "moved": None,
        **extra,
    }


def workspace_page(conversation: Conversation | None = None, status: int = 200, **extra):
    """The full page: sidebar, list (filters from the query string) and the open thread."""
    context = {
        **list_context(list_filters(), request.args.get("cursor") or None),
        **workspace.sidebar(current_user),
        "list_version": list_version.current(),
        "conversation": None,
    }
    if conversation is not None:
        context.update(thread_context(conversation, **extra))
    return render_template("conversations/index.html", **context), status, {"Vary": "HX-Request"}


def thread_response(conversation: Conversation, partial: str, status: int = 200, **extra):
    """The thread fragment for htmx; without htmx the whole workspace with the thread open."""
    if not is_htmx():
        return workspace_page(conversation, status, **extra)
    body = render_template(partial, **thread_context(conversation, **extra))
    return body, status, {"Vary": "HX-Request"}


def component_response(
    conversation: Conversation, partial: str, also: tuple[str, ...], status: int = 200, **extra
):
    """One thread component answering its own form (htmx): `partial` swaps itself; after a
    change, the partials in `also` that show it too and the messages the page lacks (the
    change's activity line) follow out of band. The rest of the thread, above all each HTML
    message's frame, stays as it is. A refusal (4xx) is the component alone, with its error."""
    context = thread_context(conversation, **extra)
    if status >= 400:
        also = ()
    elif found := workspace.thread_news(context["messages"], request.form.get("fp", "")):
        context["news"], context["fingerprint"] = found
    else:
        context["news"] = None  # the page missed a change: the whole list, out of band
    body = render_template("conversations/_component.html", component=partial, also=also, **context)
    return body, status, {"Vary": "HX-Request"}
