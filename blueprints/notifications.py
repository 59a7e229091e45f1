"""The bell and the notifications page: what happened that concerns me (a conversation
assigned to me, a customer's answer, an @mention…), newest first, with a Mentions view and
"Mark all read".

The bell (templates/notifications/_bell.html, in the top bar of every page) polls `bell`
every 15 s: one COUNT, and an empty 204 when the count is the one the page shows. Only when
it rose does the answer carry the newest notification, which static/notifications.js shows
as a desktop notification while the tab is hidden. Polling, like the thread's messages: no
held-open connection per agent. A GET never writes: notifications are marked read by POST,
"Mark all read" here and the thread on an agent's screen asking for its conversation's
(conversations/_messages.html)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import IntegerField
from wtforms.validators import NumberRange, Optional

from blueprints.htmx import is_htmx, respond
from models import Notification
from services.notifications import events

bp = Blueprint("notifications", __name__, url_prefix="/notifications")

VIEWS = {"all": "All", "mentions": "Mentions"}
POLL = "every 15s"


class ReadForm(FlaskForm):
    """Mark read: all of my notifications, or one conversation's (`conversation_id`)."""

    conversation_id = IntegerField(validators=[Optional(), NumberRange(min=1)])


@bp.app_context_processor
def bell_helpers():
    """base.html draws the bell on every page of a signed-in user (one COUNT); the thread
    (conversations/_messages.html) asks whether it has notifications to mark read."""
    return {"notification_bell": _bell_context, "notifications_unread_in": unread_in}


def _bell_context(newest: Notification | None = None) -> dict:
    return {"unread": events.unread_count(current_user), "newest": newest, "poll": POLL}


def unread_in(conversation_id: int) -> bool:
    """Whether I have unread notifications about this conversation: the thread on screen
    asks to mark them read only then."""
    return events.has_unread(current_user, conversation_id)


def _view() -> str:
    view = request.args.get("view", "all")
    return view if view in VIEWS else "all"


@bp.get("")
@login_required
def index():
    view = _view()
    return respond(
        "notifications/index.html",
        "notifications/_list.html",
        headers={"Cache-Control": "no-store"},
        view=view,
        views=VIEWS,
        items=events.recent(current_user, mentions_only=view == "mentions"),
        read_form=ReadForm(formdata=None),
        done=None,
    )


@bp.get("/bell")
@login_required
def bell():
    """The bell's poll (`count`: what the page shows). Unchanged: 204, htmx leaves it."""
    if not is_htmx():
        return redirect(url_for(".index"))
    headers = {"Vary": "HX-Request", "Cache-Control": "no-store"}
    unread = events.unread_count(current_user)
    shown = request.args.get("count", "")
    if shown == str(unread):
        return "", 204, headers
    newest = None
    if shown.isdigit() and unread > int(shown):  # something new: say what (desktop notice)
        found = events.recent(current_user, limit=1)
        newest = found[0] if found and found[0].read_at is None else None
    context = {"unread": unread, "newest": newest, "poll": POLL}
    return render_template("notifications/_bell.html", bell=context), 200, headers


@bp.post("/read")
@login_required
def read():
    """ "Mark all read", or the thread on screen reading its conversation's notifications.
    htmx gets the bell back (out of band) and, for "Mark all read", the list."""
    form = ReadForm()
    if not form.validate_on_submit():
        abort(400, "Which notifications to mark read was not understood; reload the page.")
    conversation_id = form.conversation_id.data
    marked = events.mark_read(current_user, conversation_id=conversation_id)
    view = _view()
    if not is_htmx():
        if conversation_id is None:
            flash(_done_words(marked))
        return redirect(url_for(".index", view=None if view == "all" else view), 303)
    bell = render_template("notifications/_bell.html", bell=_bell_context(), oob=True)
    if conversation_id is not None:
        return bell, 200, {"Vary": "HX-Request"}
    body = render_template(
        "notifications/_list.html",
        view=view,
        views=VIEWS,
        items=events.recent(current_user, mentions_only=view == "mentions"),
        done=_done_words(marked),
    )
    return body + bell, 200, {"Vary": "HX-Request"}


def _done_words(marked: int) -> str:
    if not marked:
        return "Nothing was unread."
    return f"{marked} notification{'s' if marked != 1 else ''} marked read."
