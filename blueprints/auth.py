"""Sign in and sign out."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField
from wtforms.validators import DataRequired, Email, Length

from extensions import db, login_manager
from models import User, utcnow
from services.throttle import clear_failures, record_failure, seconds_locked_out
from services.users import find_user_by_email

bp = Blueprint("auth", __name__)

login_manager.login_view = "auth.login"
login_manager.login_message = "Please sign in to continue."
login_manager.session_protection = "basic"


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """A deactivated user's open sessions end at their next request, not just new sign-ins."""
    user = db.session.get(User, int(user_id)) if user_id.isdigit() else None
    return user if user is not None and user.active else None


class LoginForm(FlaskForm):
    email = EmailField(
        "Email",
        validators=[DataRequired(), Email(), Length(max=320)],
        filters=[lambda value: value.strip() if value else value],
    )
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])
    remember = BooleanField("Keep me signed in on this device")


def _safe_next(target: str | None) -> str:
    """Only same-site paths: `next` must never send a user to another host."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and "\\" not in target:
            return target
    return url_for("home.index")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        email, addr = form.email.data, request.remote_addr
        wait = seconds_locked_out(email, addr)
        if wait:
            minutes = (wait + 59) // 60
            form.password.errors.append(
                f"Too many failed attempts. Try again in {minutes} minute(s)."
            )
            return render_template("auth/login.html", form=form), 429
        user = find_user_by_email(email)
        if user and user.active and user.check_password(form.password.data):
            clear_failures(email, addr)
            login_user(user, remember=form.remember.data)
            user.last_login_at = utcnow()
            db.session.commit()
            return redirect(_safe_next(request.args.get("next")))
        record_failure(email, addr)
        # One message for unknown email and wrong password: no account enumeration.
        form.password.errors.append("The email or password is wrong.")
        status = 401
    elif form.is_submitted():
        status = 422
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    logout_user()
    flash("You are signed out.")
    return redirect(url_for("auth.login"))
