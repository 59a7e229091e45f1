"""What every workspace response is made of: the list's filters from the query string, the
list and thread contexts, and the full page around them. Shared by the list, the
thread and the actions, which each answer with one region, one thread component or the
whole workspace."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from flask import abort, g, render_template, request, url_for
from flask_login import current_user
from werkzeug.datastructures import MultiDict

from blueprints.conversations.forms import (
    ACTION_STATUSES,
    SNOOZE_LABELS,
    BulkForm,
    LazyForms,
    thread_forms,
)
from blueprints.htmx import is_htmx
from models import Conversation, User
from services import workspace
from services.access import visible_conversation as find_visible
from services.conversation_list import assignable_users, next_in_list, rows_for
from services.conversations import ConversationError
from services.labels import conversation_labels, labels_for
from services.notifications import mentions
from services.unread import unread_ids

LIST_STATUSES = ("open", "pending", "snoozed", "resolved", "spam")
ASSIGNEES = ("me", "unassigned", "all")
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")  # as attachments.py
LIST_DEFAULTS = {"status": "open", "assignee": "all"}


def list_filters(args=None) -> dict:
    """The list's filters from the query string (or `args`, a MultiDict such as
    current_list_args()); unknown values fall back to the defaults."""
    args = request.args if args is None else args
    status = args.get("status", "open")
    assignee = args.get("assignee", "all")
    inbox_id = args.get("inbox_id", "")
    return {
        "status": status if status in LIST_STATUSES else "open",
        "assignee": assignee if assignee in ASSIGNEES else "all",
        "inbox_id": int(inbox_id) if inbox_id.isascii() and inbox_id.isdigit() else None,
        "q": args.get("q", "").strip()[:200],
        "label": " ".join(args.get("label", "").split())[:40],
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


def mentionable(conversation: Conversation) -> list[User]:
    """Who can be @mentioned here (who can see it: its inbox's active members and the admins,
    by name), read once per request: the composer's list and every note's highlighting use the
    same people. A thread drawn by thread_context has them already: they are the people it
    can be assigned to."""
    known = g.setdefault("mentionable", {})
    if conversation.id not in known:
        known[conversation.id] = mentions.mentionable(conversation)
    return known[conversation.id]


def thread_context(conversation: Conversation, forms: dict | None = None, **extra) -> dict:
    """What the thread's templates draw; `forms` are the posted forms that failed (by name, as
    in forms.thread_forms), drawn with what the agent typed and what to fix."""
    # ?all=1: the agent unfolded a long thread's earlier messages; what redraws the list (the
    # poll, "Load images") keeps them (_messages_poll.html).
    show_all = "1" in (request.args.get("all"), request.form.get("all"))
    thread = workspace.thread(conversation, show_all=show_all, agent_id=current_user.id)
    # The same people as mentions.mentionable (active, and a member of the inbox or an admin),
    # ordered by name by the database alike: not read a second time.
    g.setdefault("mentionable", {})[conversation.id] = thread["members"]
    labels = conversation_labels(conversation.id)
    blank = thread_forms(
        conversation,
        thread["members"],
        labels,
        current_user.id,
        drafts=thread["drafts"],
        shown=thread["messages"],
    )
    posted = forms or {}
    if "assign" in posted:  # who may be assigned, as the blank form offers them
        posted["assign"].assignee_id.choices = blank["assign"].assignee_id.choices
    forms = LazyForms({name: (lambda name=name: blank[name]) for name in blank.factories}, posted)
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
        "show_all": show_all,
        "move_message_pk": None,
        "moved": None,
        **extra,
    }


def workspace_page(conversation: Conversation | None = None, status: int = 200, **extra):
    """The full page: sidebar, list (filters from the query string) and the open thread."""
    context = {
        **list_context(list_filters(), request.args.get("cursor") or None),
        **workspace.sidebar(current_user),
        **bulk_bar_context(),
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
    return body + row_updates(conversation, status), status, {"Vary": "HX-Request"}


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
    elif found := workspace.thread_news(
        conversation.id, context["messages"], request.form.get("fp", ""), context["fingerprint"]
    ):
        context["news"], context["fingerprint"] = found
    else:
        context["news"] = None  # the page missed a change: the whole list, out of band
    body = render_template("conversations/_component.html", component=partial, also=also, **context)
    return body + row_updates(conversation, status), status, {"Vary": "HX-Request"}


# --- the list's rows after an action --------------------------------------------------------


def current_list_args() -> MultiDict:
    """The query string of the page the request came from (htmx sends its URL as
    HX-Current-URL), so an action on a thread knows the list beside it: its filters for the
    rows' links and for "the next conversation of this list". The request's own query
    string otherwise (a plain form, or a page without a list)."""
    current = request.headers.get("HX-Current-URL", "") if is_htmx() else ""
    parts = urlsplit(current)
    if parts.path.startswith(url_for("conversations.index")) and parts.query:
        return MultiDict(parse_qsl(parts.query))
    return request.args


def list_criteria(filters: dict) -> dict:
    """list_filters() as the keywords of services.conversation_list.list_conversations."""
    return {
        "inbox_id": filters["inbox_id"],
        "status": filters["status"],
        "assignee": None if filters["assignee"] == "all" else filters["assignee"],
        "q": filters["q"] or None,
        "label": filters["label"] or None,
    }


def rows_context(conversation_ids: list[int], filters: dict) -> dict:
    """What _row.html draws for these conversations (the visible ones), as a list page has it."""
    rows = rows_for(current_user, conversation_ids)
    ids = [row.conversation.id for row in rows]
    return {
        "rows": rows,
        "snippets": workspace.last_snippets(ids),
        "row_labels": labels_for(ids),
        "unread": unread_ids(current_user.id, [row.conversation for row in rows]),
        "filters": filters,
        "args": filter_args(filters),
        "current_id": _open_conversation_id(),
    }


def row_updates(conversation: Conversation, status: int = 200) -> str:
    """After an action on a thread (a POST that succeeded, htmx), its row in the list, out of
    band: the list shows the new assignee, status and labels at once, not at the next poll."""
    if request.method != "POST" or status >= 400 or not is_htmx():
        return ""
    context = rows_context([conversation.id], list_filters(current_list_args()))
    return render_template("conversations/_row_updates.html", **context)


def next_after_resolve(resolved: Conversation):
    """Resolve, then on to the next conversation of the list the agent works (same filters):
    its thread replaces the resolved one (or the empty state when the list is done), the list
    and the counts follow out of band, and the address bar follows the thread."""
    args = current_list_args()
    filters = list_filters(args)
    found = next_in_list(current_user, resolved, **list_criteria(filters))
    context = {
        **list_context(filters),
        **workspace.sidebar(current_user),
        "current_id": found.id if found else None,
    }
    if found is not None:
        thread = render_template("conversations/_thread.html", **thread_context(found))
        url = url_for("conversations.show", conversation_id=found.id, **filter_args(filters))
    else:
        thread = render_template("conversations/_no_thread.html", list_done=True)
        url = url_for("conversations.index", **filter_args(filters))
    lists = render_template("conversations/_list_update.html", oob=True, **context)
    headers = {
        "Vary": "HX-Request",
        "HX-Retarget": "#thread-pane",
        "HX-Reswap": "innerHTML show:top",
        "HX-Push-Url": url,
    }
    return thread + lists, 200, headers


def bulk_bar_context(**extra) -> dict:
    """The bulk bar above the list (_bulk_bar.html): its form and who it can assign to."""
    people = assignable_users(current_user)
    choices = [("", "Nobody (unassign)")] + [
        (str(user.id), user.name + (" (me)" if user.id == current_user.id else ""))
        for user in people
    ]
    # The form is built only when the bar is drawn (_bulk_bar.html): it is mostly kept.
    return {"new_bulk_form": lambda: BulkForm(formdata=None), "bulk_assignees": choices, **extra}
