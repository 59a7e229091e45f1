"""The conversation list: the page itself, the filter form, "load more" and the list's poll."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from flask_login import current_user, login_required

from blueprints.conversations.blueprint import bp
from blueprints.conversations.pages import filter_args, list_context, list_filters, workspace_page
from blueprints.htmx import is_htmx
from services import list_version, workspace


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
    # The version this poll compared stays the page's (the sidebar's is read later).
    context = {**workspace.sidebar(current_user), **context}
    return render_template("conversations/_list_update.html", oob=True, **context)
