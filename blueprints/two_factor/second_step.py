"""The second step of signing in: after the right password, a code from the app.

The password step leaves a *pending* sign-in in the (signed) Flask session: the user's id,
"keep me signed in", where to go next and when it started. Nobody is signed in until a
code is accepted here; the pending state ends after PENDING_SECONDS, at the first good
code, and when too many wrong codes lock the account's second step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from flask import Response, flash, redirect, render_template, request, session, url_for
from flask_login import current_user

from blueprints.sign_in import finish_sign_in, safe_next
from blueprints.two_factor.blueprint import bp
from blueprints.two_factor.forms import SignInCodeForm
from extensions import db
from models import User
from services import two_factor
from services.two_factor import CodeCheck

PENDING_KEY = "two_factor_pending"
PENDING_SECONDS = 5 * 60

WRONG_CODE = (
    "That code is not right. Codes change every 30 seconds; check the time on your phone, "
    "or use a recovery code."
)
REUSED_CODE = (
    "That code was already used. Wait for the next one in your app (codes change every "
    "30 seconds), or use a recovery code."
)
EXPIRED = (
    "Your sign-in waited more than 5 minutes for the code from your authenticator app, so "
    "it was stopped. Sign in again with your email and password."
)
MISSING = (
    "No sign-in is waiting for a code on this browser (it finished, or it was started in "
    "another browser). Sign in with your email and password."
)


@dataclass
class PendingSignIn:
    user_id: int
    remember: bool
    next_url: str | None
    started_at: float

    @property
    def expired(self) -> bool:
        return not 0 <= time.time() - self.started_at <= PENDING_SECONDS

    @classmethod
    def load(cls) -> PendingSignIn | None:
        data = session.get(PENDING_KEY)
        if not isinstance(data, dict):
            return None
        try:
            return cls(
                int(data["user_id"]),
                bool(data["remember"]),
                data.get("next"),
                float(data["started_at"]),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def save(self) -> None:
        session[PENDING_KEY] = {
            "user_id": self.user_id,
            "remember": self.remember,
            "next": self.next_url,
            "started_at": self.started_at,
        }

    @staticmethod
    def clear() -> None:
        session.pop(PENDING_KEY, None)


def begin_second_factor(user: User, remember: bool, next_url: str | None) -> Response:
    """Called by the sign-in form once the password is right: ask for the code next."""
    # Only a same-site path is kept (safe_next), which also bounds the cookie's size.
    PendingSignIn(user.id, bool(remember), safe_next(next_url), time.time()).save()
    return redirect(url_for("two_factor.second_step"))


def _sign_in_again(message: str):
    PendingSignIn.clear()
    return render_template("two_factor/sign_in_again.html", message=message), 401


def _locked(wait: int):
    """Too many wrong codes: the pending sign-in ends; the password step comes first again."""
    PendingSignIn.clear()
    minutes, seconds = divmod(wait, 60)
    when = f"{minutes + (1 if seconds else 0)} minute(s)" if minutes else f"{seconds} second(s)"
    message = (
        f"Too many wrong codes for this account. Sign in again in {when}; if your phone is "
        "lost, use a recovery code then."
    )
    response = render_template("two_factor/second_step.html", form=None, throttled=message)
    return response, 429, {"Retry-After": str(wait)}


@bp.route("/login/two-factor", methods=["GET", "POST"])
def second_step():
    if current_user.is_authenticated:
        return redirect(safe_next(None))
    pending = PendingSignIn.load()
    if pending is None:
        return _sign_in_again(MISSING)
    if pending.expired:
        return _sign_in_again(EXPIRED)
    user = db.session.get(User, pending.user_id)
    if user is None or not user.active or not user.has_two_factor:
        return _sign_in_again(MISSING)
    wait = two_factor.wrong_code_wait(user.id)
    if wait:
        return _locked(wait)

    form = SignInCodeForm()
    status = 200
    if form.validate_on_submit():
        code = two_factor.normalize(form.code.data)
        left = None
        if two_factor.is_app_code(code):
            outcome = two_factor.check_app_code(user, code)
        else:
            left = two_factor.use_recovery_code(user, code)
            outcome = CodeCheck.WRONG if left is None else CodeCheck.ACCEPTED
        if outcome is CodeCheck.ACCEPTED:
            PendingSignIn.clear()
            two_factor.clear_wrong_codes(user.id)
            response = finish_sign_in(user, pending.remember, pending.next_url)
            if left is not None:
                flash(_recovery_code_notice(left))
            return response
        wait = two_factor.record_wrong_code(user.id)
        if wait:
            return _locked(wait)
        form.code.errors.append(REUSED_CODE if outcome is CodeCheck.REUSED else WRONG_CODE)
        status = 401
    elif request.method == "POST":
        status = 422
    return render_template("two_factor/second_step.html", form=form), status


def _recovery_code_notice(left: int) -> str:
    if left == 0:
        return (
            "You signed in with your last recovery code. Make new ones now on your profile "
            "page (Two-factor sign-in → New recovery codes)."
        )
    advice = " Make new ones on your profile page soon." if left <= 3 else ""
    return f"You signed in with a recovery code; {left} left, each works once.{advice}"
