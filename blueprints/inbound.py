"""Admin views of received email: the Inbound log, raw downloads, reprocessing, and each
inbox's health page. Unroutable mail is found and fixed here, never lost."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_wtf import FlaskForm
from wtforms import HiddenField

from blueprints.downloads import content_disposition, safe_download_headers, stream_object
from blueprints.guards import admin_required
from blueprints.htmx import is_htmx, respond
from blueprints.redirects import local_path
from extensions import db, get_storage
from models import InboundEmail, Inbox
from models.inbound import INBOUND_STATUSES, STATUS_MEANINGS
from services import ingress_refusals
from services.imap_import import request_refetch
from services.inbound_reprocess import NotQueued, ReprocessError, reprocess
from services.inbox_health import (
    CursorError,
    inbound_page,
    inbox_health,
    inbox_names,
    status_counts,
    threading_results,
)
from services.inbox_log import MAX_QUERY, summaries
from storage import StorageError

bp = Blueprint("inbound", __name__, url_prefix="/admin")


@bp.context_processor
def helpers():
    return {
        "utc": lambda moment: moment.strftime("%Y-%m-%d %H:%M:%S") + " UTC" if moment else "",
    }


class ReprocessForm(FlaskForm):
    """The Reprocess button of a row: the page to come back to without htmx (a local admin
    path only, checked by redirects.local_path when it is used)."""

    return_to = HiddenField()


def _reprocess_form(return_to: str) -> ReprocessForm:
    return ReprocessForm(formdata=None, return_to=return_to)


def log_filters() -> dict:
    """Filters from the query string; unknown values fall back to "all". A GET link a person
    can bookmark and share, read leniently, so no form class: a wrong value shows everything
    instead of an error. `q` searches From, To, Subject (services/inbox_log.py)."""
    status = request.args.get("status", "")
    inbox = request.args.get("inbox_id", "")
    return {
        "status": status if status in INBOUND_STATUSES else "",
        "inbox_id": int(inbox) if inbox.isdigit() else ("none" if inbox == "none" else ""),
        "q": " ".join(request.args.get("q", "").split())[:MAX_QUERY],
    }


@bp.get("/inbound")
@admin_required
def log():
    filters = log_filters()
    cursor = request.args.get("cursor") or None
    try:
        page = inbound_page(
            filters["status"] or None,
            filters["inbox_id"] or None,
            cursor,
            search=filters["q"] or None,
        )
    except CursorError as exc:
        abort(400, f"{str(exc).capitalize()}; go back to the first page of the log.")
    context = {
        "page": page,
        "filters": filters,
        "args": {k: v for k, v in filters.items() if v != ""},
        "inboxes": inbox_names(),
        "reprocess_form": _reprocess_form(request.full_path),
        "meanings": STATUS_MEANINGS,
    }
    if is_htmx() and cursor:  # "load more": the next rows, appended in place
        return respond("inbound/log.html", "inbound/_rows.html", **context)
    context["counts"] = status_counts()
    context["refusals"] = ingress_refusals.since()
    return respond("inbound/log.html", "inbound/_log.html", **context)


@bp.get("/inbound/refused")
@admin_required
def refused():
    """Posts the ingresses refused, newest first (services/ingress_refusals.py)."""
    before = request.args.get("before", "")
    before_id = int(before) if before.isdigit() else None
    rows = ingress_refusals.recent(before_id, ingress_refusals.PAGE + 1)
    more = len(rows) > ingress_refusals.PAGE
    return render_template(
        "inbound/refused.html", rows=rows[: ingress_refusals.PAGE], more=more, before=before_id
    )


def _get_row(inbound_id: int) -> InboundEmail:
    row = db.session.get(InboundEmail, inbound_id)
    if row is None:
        abort(404, f"There is no inbound email #{inbound_id}.")
    return row


@bp.get("/inbound/<int:inbound_id>/raw")
@admin_required
def raw(inbound_id: int):
    """The exact bytes as received (with any X-Original-To lines the ingress prepended)."""
    row = _get_row(inbound_id)
    if row.storage_key is None:
        when = f" on {row.incinerated_at:%Y-%m-%d}" if row.incinerated_at else ""
        abort(
            404,
            f"The raw message of inbound email #{row.id} was deleted{when} after the retention "
            "period (INBOUND_EMAIL_RETENTION_DAYS). Its record and any conversation it "
            "created stay.",
        )
    try:
        present = get_storage().exists(row.storage_key)
    except StorageError as exc:
        abort(503, f"Object storage is unreachable ({exc}); try again in a moment.")
    if not present:
        abort(404, f"The raw message of inbound email #{row.id} is missing from storage.")
    response = Response(stream_object(row.storage_key), mimetype="message/rfc822")
    disposition = content_disposition("attachment", f"inbound-{row.id}.eml")
    return safe_download_headers(response, disposition, row.size)


@bp.post("/inbound/<int:inbound_id>/reprocess", endpoint="reprocess")
@admin_required
def reprocess_email(inbound_id: int):
    row = _get_row(inbound_id)
    form = ReprocessForm()
    status, notice, error = 200, "", ""
    try:
        if row.storage_key is None and row.imap_origin is not None:
            request_refetch(row)  # never fetched: ask the IMAP server for it again
            notice = f"Inbound email #{row.id} will be fetched again from the IMAP server."
        else:
            reprocess(row)
            notice = f"Inbound email #{row.id} is queued for processing."
    except NotQueued as exc:
        notice = f"{str(exc).capitalize()}."
    except ReprocessError as exc:
        status, error = 422, f"Not reprocessed: {exc}."
    if not is_htmx():
        flash(error or notice)
        # Back to the admin page the form was on, never anywhere else.
        back = local_path(form.return_to.data, "/admin/") or url_for(".log")
        return redirect(back, 303)
    db.session.refresh(row)
    return respond(
        "inbound/log.html",
        "inbound/_row.html",
        status,
        row=row,
        threading=threading_results([row.id]),
        summaries=summaries([row]),
        inboxes=inbox_names(),
        notice=notice,
        error=error,
        reprocess_form=_reprocess_form(form.return_to.data or ""),
    )


@bp.get("/inboxes/<int:inbox_id>/health")
@admin_required
def health(inbox_id: int):
    inbox = db.session.get(Inbox, inbox_id)
    if inbox is None:
        abort(404, "No such inbox. It may have been deleted; see the inbox list.")
    context = {
        "health": inbox_health(inbox),
        "inboxes": inbox_names(),
        "reprocess_form": _reprocess_form(request.full_path),
    }
    return respond("inbound/health.html", "inbound/_health.html", **context)
