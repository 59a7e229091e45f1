"""Sign in, sign out, and a forgotten password.

Every refusal is the same for an unknown address and a wrong password, so nothing here
tells which accounts exist; every 429 says how long to wait (Retry-After).
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_url, logout_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField
from wtforms.validators import DataRequired, Email, EqualTo, Length

from blueprints.form_fields import strip
from blueprints.htmx import navigate
from blueprints.sign_in import finish_sign_in, is_known_device, safe_next
from blueprints.two_factor import begin_second_factor
from extensions import login_manager
from services import password_reset
from services.passwords import MAX_LENGTH
from services.sessions import end_current_session, load_session_user
from services.throttle import hit, record_failure, seconds_to_wait
from services.users import UserError, find_user_by_email

bp = Blueprint("auth", __name__)

login_manager.login_view = "auth.login"
login_manager.login_message = "Please sign in to continue."
login_manager.session_protection = "basic"
login_manager.user_loader(load_session_user)

SESSION_ENDED = (
    "Your session has ended: you signed out, your password or role changed, or someone "
    "signed this account out everywhere. Sign in again to continue."
)


@login_manager.unauthorized_handler
def sign_in_first():
    """To the sign-in page, saying why when a session the server ended was replayed; an
    htmx request navigates the whole page (HX-Redirect) instead of swapping the form in."""
    if session.pop("_user_id", None) is not None:
        flash(SESSION_ENDED)
    else:
        flash(login_manager.login_message)
    target = login_url(login_manager.login_view, next_url=request.url)
    return navigate(target, status=302, htmx_status=200)


RESET_REQUESTS_PER_HOUR = 5  # per address typed and per client address


class LoginForm(FlaskForm):
    email = EmailField(
        "Email", validators=[DataRequired(), Email(), Length(max=320)], filters=[strip]
    )
    password = PasswordField("Password", validators=[DataRequired(), Length(max=MAX_LENGTH)])
    remember = BooleanField("Keep me signed in on this device")


class ForgotForm(FlaskForm):
    email = EmailField(
        "Email", validators=[DataRequired(), Email(), Length(max=320)], filters=[strip]
    )


class NewPasswordForm(FlaskForm):
    password = PasswordField("New password", validators=[DataRequired(), Length(max=MAX_LENGTH)])
    confirm = PasswordField(
        "New password again",
        validators=[DataRequired(), EqualTo("password", message="The two passwords differ.")],
    )
    revoke_api_token = BooleanField("Also revoke my API token", default=True)


def too_many(template: str, message: str, wait: int, **context):
    """A 429 page that says when to try again, in words and in Retry-After."""
    minutes, seconds = divmod(wait, 60)
    when = f"{minutes} minute(s)" if minutes else f"{seconds} second(s)"
    response = render_template(template, throttled=f"{message} Try again in {when}.", **context)
    return response, 429, {"Retry-After": str(wait)}


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        email, address = form.email.data, request.remote_addr
        user = find_user_by_email(email)
        wait = seconds_to_wait(email, address, known_device=is_known_device(user))
        if wait:
            # Even the right password waits: a guesser cannot tell when it found it.
            return too_many("auth/login.html", "Too many failed sign-ins.", wait, form=form)
        if user and user.active and user.check_password(form.password.data):
            if user.has_two_factor:
                return begin_second_factor(user, form.remember.data, request.args.get("next"))
            return finish_sign_in(user, form.remember.data, request.args.get("next"))
        record_failure(email, address)
        # One message for unknown email and wrong password: no account enumeration.
        form.password.errors.append("The email or password is wrong.")
        status = 401
    elif form.is_submitted():
        status = 422
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    end_current_session(current_user._get_current_object())
    flash("You are signed out.")
    return redirect(url_for("auth.login"))


@bp.route("/forgot-password", methods=["GET", "POST"])
def forgot_password():
    form = ForgotForm()
    available = password_reset.reset_is_available()
    if not available or not form.validate_on_submit():
        status = 422 if form.is_submitted() and available else 200
        return render_template("auth/forgot.html", form=form, available=available), status
    email = form.email.data.lower()
    wait = max(
        hit("reset-email", email, RESET_REQUESTS_PER_HOUR, 3600),
        hit("reset-address", request.remote_addr, RESET_REQUESTS_PER_HOUR * 4, 3600),
    )
    if wait:
        return too_many(
            "auth/forgot.html", "Too many reset requests.", wait, form=form, available=True
        )
    password_reset.request_reset(email)
    return render_template("auth/forgot_sent.html", email=email)


@bp.route("/reset-password/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    try:
        user = password_reset.user_for_token(token)
    except password_reset.ResetLinkError as exc:
        return render_template("auth/reset_invalid.html", message=str(exc)), 410
    form = NewPasswordForm()
    status = 200
    if form.validate_on_submit():
        try:
            password_reset.complete_reset(
                user, form.password.data, revoke_api_token=form.revoke_api_token.data
            )
        except UserError as exc:
            form.password.errors.append(f"Choose another password: {exc}.")
            status = 422
        else:
            if current_user.is_authenticated and current_user.id == user.id:
                logout_user()  # its session row is gone already; clear the cookies too
            flash("Your password is changed and every session is signed out. Sign in now.")
            return redirect(url_for("auth.login"))
    elif form.is_submitted():
        status = 422
    return render_template("auth/reset.html", form=form, user=user), status
