"""Setting up two-factor sign-in on the profile, turning it off, new recovery codes.

/profile/two-factor shows one of three states: off (a "set up" button), setting up (QR
code, the secret as text and a field for the first code) and on (recovery codes left,
new codes, turn off). The secret is shown only while setting up; the recovery codes only
on the page right after they are made.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from blueprints.two_factor.blueprint import NO_STORE, bp
from blueprints.two_factor.forms import ActionForm, ConfirmCodeForm, PasswordForm
from extensions import get_settings
from models import User
from services import two_factor
from services.throttle import hit
from services.timezones import local
from services.two_factor import TwoFactorError

PASSWORD_TRIES = 10  # password confirmations per user per window (a stolen session guessing)
PASSWORD_WINDOW = 15 * 60


@dataclass
class TwoFactorStatus:
    on: bool
    since: str
    codes_left: int
    setting_up: bool
    required: bool


@bp.app_template_global()
def two_factor_status(user: User) -> TwoFactorStatus:
    """For the profile page's card (two_factor/_profile_card.html) and the pages here."""
    return TwoFactorStatus(
        on=user.has_two_factor,
        since=local(user.totp_enabled_at, user) if user.has_two_factor else "",
        codes_left=two_factor.recovery_codes_left(user),
        setting_up=bool(user.totp_secret) and not user.has_two_factor,
        required=user.is_admin and get_settings().require_2fa_for_admins,
    )


@bp.app_template_global()
def two_factor_setup_form() -> ActionForm:
    """The profile card's "set up" button: a form of only the CSRF token."""
    return ActionForm(formdata=None)


def _user() -> User:
    return current_user._get_current_object()


def _page(status: int = 200, **forms):
    """The page in the user's current state; `forms` carry a posted form with its errors."""
    user = _user()
    context = {
        "confirm_form": forms.get("confirm_form") or ConfirmCodeForm(formdata=None),
        "disable_form": forms.get("disable_form") or PasswordForm(prefix="disable", formdata=None),
        "codes_form": forms.get("codes_form") or PasswordForm(prefix="codes", formdata=None),
        "throttled": forms.get("throttled"),
        "action_form": ActionForm(formdata=None),
    }
    if two_factor_status(user).setting_up:
        context["secret"] = two_factor.enrolment_secret(user)
        context["qr"] = two_factor.qr_svg(two_factor.provisioning_uri(user))
    return render_template("two_factor/manage.html", **context), status, NO_STORE


def _codes_page(codes: list[str], fresh_setup: bool):
    page = render_template("two_factor/recovery_codes.html", codes=codes, fresh_setup=fresh_setup)
    return page, 200, NO_STORE


def _password_wait() -> int:
    return hit("second-factor-password", str(_user().id), PASSWORD_TRIES, PASSWORD_WINDOW)


def _too_many_passwords(wait: int, **forms):
    minutes = max(1, (wait + 59) // 60)
    message = f"Too many password attempts. Try again in {minutes} minute(s)."
    body, _, headers = _page(**forms, throttled=message)
    return body, 429, {**headers, "Retry-After": str(wait)}


@bp.get("/profile/two-factor")
@login_required
def manage():
    return _page()


@bp.post("/profile/two-factor/setup")
@login_required
def setup():
    if not ActionForm().validate_on_submit():
        return _page(status=400)
    try:
        two_factor.start_enrolment(_user())
    except TwoFactorError as exc:
        flash(str(exc))
    return redirect(url_for("two_factor.manage"), code=303)


@bp.post("/profile/two-factor/cancel")
@login_required
def cancel():
    if ActionForm().validate_on_submit():
        two_factor.cancel_enrolment(_user())
        flash("Setup cancelled. Two-factor sign-in stays off.")
    return redirect(url_for("two_factor.manage"), code=303)


@bp.post("/profile/two-factor/confirm")
@login_required
def confirm():
    form = ConfirmCodeForm()
    if form.validate_on_submit():
        try:
            codes = two_factor.confirm_enrolment(_user(), form.code.data)
        except TwoFactorError as exc:
            form.code.errors.append(str(exc))
        else:
            return _codes_page(codes, fresh_setup=True)
    return _page(status=422, confirm_form=form)


def _with_password(prefix: str, form_key: str, action, done):
    """The forms that need the current password: throttled per user, `action(user,
    password)` refuses with TwoFactorError, `done(result)` answers; any refusal re-renders
    the page with the form's errors."""
    form = PasswordForm(prefix=prefix)
    if form.validate_on_submit():
        if wait := _password_wait():
            return _too_many_passwords(wait, **{form_key: form})
        try:
            result = action(_user(), form.password.data)
        except TwoFactorError as exc:
            form.password.errors.append(str(exc))
        else:
            return done(result)
    return _page(status=422, **{form_key: form})


@bp.post("/profile/two-factor/recovery-codes")
@login_required
def new_recovery_codes():
    return _with_password(
        "codes",
        "codes_form",
        two_factor.regenerate_recovery_codes,
        lambda codes: _codes_page(codes, fresh_setup=False),
    )


@bp.post("/profile/two-factor/disable")
@login_required
def disable():
    def turned_off(_):
        flash(
            "Two-factor sign-in is off: signing in asks only for your password. "
            "Your other browsers were signed out."
        )
        return redirect(url_for("two_factor.manage"), code=303)

    return _with_password("disable", "disable_form", two_factor.disable, turned_off)
