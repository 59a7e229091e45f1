"""The settings' Business hours tab: business hours and the auto-acknowledgement, one form
and one Save (the hours decide when "only outside business hours" applies)."""

from __future__ import annotations

from flask import flash, redirect, url_for

from blueprints.guards import admin_required
from blueprints.inboxes.blueprint import bp
from blueprints.inboxes.forms.hours import HoursForm
from blueprints.inboxes.shared import get_inbox
from models import Inbox
from services import automation_settings


def stored_hours_form(inbox: Inbox) -> HoursForm:
    """The form showing what is stored."""
    from services.business_hours import format_hours

    ack = automation_settings.acknowledgement_of(inbox)
    data = {
        "time_zone": inbox.time_zone or "UTC",
        "hours": format_hours(inbox.business_hours) if inbox.business_hours else "",
        "holidays": "\n".join(inbox.holidays or []),
        "ack_enabled": ack.enabled,
        "ack_outside_hours_only": ack.outside_hours_only,
        "ack_subject": ack.subject,
        "ack_body": ack.body,
        "ack_window": ack.window_minutes,
    }
    return HoursForm(formdata=None, data=data)


def hours_context(inbox: Inbox, form: HoursForm | None = None) -> dict:
    """The form (`form`: a posted one); the browser's zone is offered in place of UTC only
    while nothing has been set, never over what the admin just typed."""
    unset = not inbox.business_hours and (inbox.time_zone or "UTC") == "UTC"
    return {"hours_form": form or stored_hours_form(inbox), "preselect_zone": unset and not form}


@bp.post("/<int:inbox_id>/hours")
@admin_required
def save_hours(inbox_id: int):
    from blueprints.inboxes.settings import render_settings

    inbox = get_inbox(inbox_id)
    form = HoursForm()
    if not form.validate_on_submit():
        return render_settings(
            inbox, "hours", status=422, error_count=form.error_count(), **hours_context(inbox, form)
        )
    automation_settings.save_hours(
        inbox,
        time_zone=form.time_zone.data,
        hours=form.parsed_hours,
        holidays=form.parsed_holidays,
        acknowledgement=form.acknowledgement(),
    )
    flash("Business hours and auto-acknowledgement saved.")
    return redirect(url_for("inboxes.edit", inbox_id=inbox.id, section="hours"), 303)


def tab_context(inbox: Inbox, tab: str, extra: dict) -> dict:
    """What the Rules and Business hours tabs add to the settings page."""
    if tab == "rules":
        from blueprints.inboxes.rules import rules_context

        return rules_context(inbox)
    if tab == "hours" and "hours_form" not in extra:
        return hours_context(inbox)
    return {}
