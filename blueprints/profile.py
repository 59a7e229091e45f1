"""The signed-in user's own page: who they are, password, sessions, time zone, notifications,
API token."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, logout_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, ValidationError

from blueprints.signature_forms import PreviewForm, SignatureForm, preview_response
from extensions import db
from services import account, signatures
from services.access import visible_inboxes_query
from services.notifications import events
from services.passwords import MAX_LENGTH
from services.sessions import active_sessions, end_session_by_id
from services.timezones import is_zone, zone_names

bp = Blueprint("profile", __name__, url_prefix="/profile")


class ActionForm(FlaskForm):
    """Only the CSRF token: the button itself is the whole request."""


class PasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[DataRequired(), Length(max=MAX_LENGTH)])
    password = PasswordField(
        "New password",
        validators=[DataRequired(), Length(max=MAX_LENGTH)],
        description="At least 12 characters. Changing it signs you out of every other browser.",
    )
    confirm = PasswordField(
        "New password again",
        validators=[DataRequired(), EqualTo("password", message="The two passwords differ.")],
    )


def _canonical_zone(value: str | None) -> str:
    """What was typed, trimmed; "europe/berlin" or "Europe/Berlin " is Europe/Berlin."""
    value = (value or "").strip()
    by_lower = {name.lower(): name for name in zone_names()}
    return by_lower.get(value.lower().replace(" ", "_"), value)


class TimezoneForm(FlaskForm):
    """Filled from the user (`obj=`). A text input searching the ~600 zone names (a datalist,
    `zones`); static/admin.js offers the browser's own zone."""

    timezone = StringField(
        "Snooze times are typed and shown in",
        description="Type a city or region, e.g. Berlin or America/New_York, and pick a zone.",
        filters=[_canonical_zone],
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.zones = zone_names()

    def validate_timezone(self, field):
        if not is_zone(field.data):
            raise ValidationError(
                f"“{field.data[:64]}” is not a time zone this server knows; pick one from the list."
            )


TICKED = ("y", "on", "true", "1")  # what a ticked box may send; an unticked one sends nothing


def _a_tick(form, field):
    if field.raw_data and field.raw_data[0] not in TICKED:
        raise ValidationError(
            f"“{field.raw_data[0][:32]}” is not a choice here: tick the box or leave it empty."
        )


class _NotificationsBase(FlaskForm):
    """Per event (events.EVENTS, in its order) two boxes, `<event>_email` and
    `<event>_in_app`; a field the page does not draw is refused, not ignored."""

    def rows(self):
        for event, (label, description) in events.EVENTS.items():
            yield event, label, description, self[f"{event}_email"], self[f"{event}_in_app"]

    def choices(self) -> dict[str, tuple[bool, bool]]:
        return {event: (email.data, in_app.data) for event, _, _, email, in_app in self.rows()}

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        unknown = sorted(set(request.form) - set(self._fields) - {"csrf_token"})
        if unknown:
            self.form_errors.append(
                f"“{unknown[0][:40]}” is not a notification setting. "
                "Reload the page and save again."
            )
            return False
        return valid


def _event_fields() -> dict:
    fields = {}
    for event, (label, _) in events.EVENTS.items():
        fields[f"{event}_email"] = BooleanField(f"Email: {label}", validators=[_a_tick])
        fields[f"{event}_in_app"] = BooleanField(f"In the app: {label}", validators=[_a_tick])
    return fields


NotificationsForm = type("NotificationsForm", (_NotificationsBase,), _event_fields())


def _notifications_form(user) -> FlaskForm:
    """The boxes as the person chose them (or the defaults)."""
    data = {}
    for event, (email, in_app) in events.preferences(user).items():
        data[f"{event}_email"], data[f"{event}_in_app"] = email, in_app
    return NotificationsForm(formdata=None, data=data)


def _page(
    new_token: str | None = None,
    status: int = 200,
    password_form: PasswordForm | None = None,
    timezone_form: TimezoneForm | None = None,
    notifications_form: FlaskForm | None = None,
    signature_form: SignatureForm | None = None,
):
    inboxes = db.session.scalars(visible_inboxes_query(current_user)).all()
    response = render_template(
        "profile/index.html",
        inboxes=inboxes,
        new_token=new_token,
        password_form=password_form or PasswordForm(formdata=None),
        timezone_form=timezone_form or TimezoneForm(formdata=None, obj=current_user),
        notifications_form=notifications_form or _notifications_form(current_user),
        signature_form=signature_form or SignatureForm(formdata=None, obj=current_user),
        action_form=ActionForm(formdata=None),
        sessions=active_sessions(current_user),
    )
    headers = {"Cache-Control": "no-store"}  # a token page must never be cached or restored
    return response, status, headers


@bp.get("")
@login_required
def index():
    return _page()


@bp.post("/api-token")
@login_required
def new_api_token():
    form = ActionForm()
    if not form.validate_on_submit():
        return _page(status=400)
    return _page(new_token=account.issue_api_token(current_user))


@bp.post("/api-token/revoke")
@login_required
def revoke_api_token():
    form = ActionForm()
    if form.validate_on_submit():
        account.revoke_api_token(current_user)
        flash("Your API token is revoked. Scripts using it are refused from now on.")
    return redirect(url_for("profile.index"))


@bp.post("/timezone")
@login_required
def set_timezone():
    """The zone snooze times are typed and shown in."""
    form = TimezoneForm()
    if form.validate_on_submit():
        try:
            account.set_time_zone(current_user, form.timezone.data)
        except account.AccountError as exc:
            form.timezone.errors.append(str(exc))
        else:
            flash(f"Times are now shown in {form.timezone.data}.")
            return redirect(url_for("profile.index"))
    return _page(status=422, timezone_form=form)


def _example_inbox():
    """The inbox the preview fills {{inbox.name}} from: the first one the agent works in."""
    return db.session.scalars(visible_inboxes_query(current_user)).first()


@bp.post("/signature")
@login_required
def set_signature():
    """The agent's own signature, added above the inbox's to every reply they send."""
    form = SignatureForm()
    if not form.validate_on_submit():
        return _page(status=422, signature_form=form)
    signatures.save_agent_signature(current_user._get_current_object(), form.signature.data)
    flash("Your signature is saved.")
    return redirect(url_for("profile.index", _anchor="signature"), 303)


@bp.post("/signature/preview")
@login_required
def preview_signature():
    """The signature as typed, filled in for the agent and their first inbox. Writes nothing."""
    inbox = _example_inbox()
    name, address = (inbox.name, inbox.support_address) if inbox else ("", "")
    return preview_response(PreviewForm(), current_user, name, address)


@bp.post("/notifications")
@login_required
def set_notifications():
    """Per event: by email, in the app (the bell), both or neither."""
    form = NotificationsForm()
    if form.validate_on_submit():
        try:
            events.set_preferences(current_user, form.choices())
        except ValueError as exc:
            form.form_errors.append(f"Not saved: {exc}.")
        else:
            flash("Your notification settings are saved.")
            return redirect(url_for("profile.index", _anchor="notifications"), 303)
    return _page(status=422, notifications_form=form)


@bp.post("/password")
@login_required
def change_password():
    """A new password ends every other session; this browser stays signed in."""
    form = PasswordForm()
    if not form.validate_on_submit():
        return _page(status=422, password_form=form)
    user = current_user._get_current_object()
    try:
        ended = account.change_password(user, form.current.data, form.password.data)
    except account.AccountError as exc:
        form[exc.field].errors.append(str(exc))
        return _page(status=422, password_form=form)
    others = f" {ended} other session(s) signed out." if ended else ""
    flash(f"Your password is changed.{others}")
    return redirect(url_for("profile.index"))


@bp.post("/sessions/<int:session_id>/end")
@login_required
def end_session(session_id: int):
    form = ActionForm()
    if not form.validate_on_submit():
        return _page(status=400)
    user = current_user._get_current_object()
    current = user.current_session is not None and user.current_session.id == session_id
    if not end_session_by_id(user, session_id):
        flash("That session had already ended.")
    elif current:
        logout_user()
        flash("You are signed out.")
        return redirect(url_for("auth.login"))
    else:
        flash("That session is signed out. The browser has to sign in again.")
    return redirect(url_for("profile.index", _anchor="sessions"))


@bp.post("/sessions/end-all")
@login_required
def end_all_sessions():
    """ "Sign out everywhere": every browser and remember-me cookie, this one included."""
    form = ActionForm()
    if not form.validate_on_submit():
        return _page(status=400)
    account.sign_out_everywhere(current_user._get_current_object())
    logout_user()
    flash("You are signed out everywhere, this browser included.")
    return redirect(url_for("auth.login"))
