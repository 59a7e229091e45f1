"""What signed-in users change about their own account on the profile page: the API token,
the time zone, the password and signing out everywhere. Each change commits here, so the
profile's views only parse the form and render; a refusal (AccountError) changes nothing."""

from __future__ import annotations

from extensions import db
from models import User
from services.passwords import password_problem
from services.sessions import end_sessions
from services.timezones import is_zone


class AccountError(ValueError):
    """A change refused before anything changed; `field` is the form field to show it on."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def issue_api_token(user: User) -> str:
    """A new token, returned once to show; it replaces the old one, which stops working."""
    token = user.issue_api_token()
    db.session.commit()
    return token


def revoke_api_token(user: User) -> None:
    user.api_token_hash = None
    db.session.commit()


def set_time_zone(user: User, name: str) -> None:
    """The zone snooze times are typed and shown in; only names this server knows."""
    if not is_zone(name):
        raise AccountError(
            "timezone",
            f"“{name[:64]}” is not a time zone this server knows; pick one from the list.",
        )
    user.timezone = name
    db.session.commit()


def change_password(user: User, current: str, password: str) -> int:
    """A new password ends every other session (a thief's copy of a cookie too); the browser
    making the request stays signed in. Returns how many other sessions ended."""
    if not user.check_password(current):
        raise AccountError("current", "This is not your current password.")
    if weak := password_problem(password, user.email, user.name):
        raise AccountError("password", f"Choose another password: {weak}.")
    user.set_password(password)
    ended = end_sessions(user, keep_current=True)
    db.session.commit()
    return ended


def sign_out_everywhere(user: User) -> None:
    """Every browser and remember-me cookie of `user`, the current one included."""
    end_sessions(user)
    db.session.commit()
