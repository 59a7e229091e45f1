"""Password reset by email: a signed, single-use link valid for 30 minutes.

The link is an itsdangerous token over the user id and a fingerprint of the current
password hash. Setting a new password changes the hash (werkzeug salts every hash), so a
used link, and every other link sent before it, stops working without a table of tokens.
The email is sent by a job that looks the address up itself, so the web answer is the
same, and as fast, whether or not the address belongs to an account.
"""

from __future__ import annotations

import hashlib
import logging

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from extensions import db, get_settings
from models import User
from services.background import enqueue_reset_email
from services.passwords import password_problem
from services.sessions import end_sessions
from services.system_mail import send_to_user
from services.users import UserError, find_user_by_email

log = logging.getLogger(__name__)

LINK_MINUTES = 30


class ResetLinkError(ValueError):
    """The link cannot be used; the message says what happened and what to do."""


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="password-reset")


def _fingerprint(user: User) -> str:
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:20]


def reset_token(user: User) -> str:
    return _serializer().dumps({"u": user.id, "p": _fingerprint(user)})


def user_for_token(token: str) -> User:
    """The account a link resets, or ResetLinkError saying why it cannot be used."""
    try:
        data = _serializer().loads(token, max_age=LINK_MINUTES * 60)
    except SignatureExpired as exc:
        raise ResetLinkError(
            f"This link has expired: links work for {LINK_MINUTES} minutes. "
            "Ask for a new one below."
        ) from exc
    except BadSignature as exc:
        raise ResetLinkError(
            "This link is not valid. Copy the whole link from the email, or ask for a new one."
        ) from exc
    user = db.session.get(User, data.get("u")) if isinstance(data, dict) else None
    if user is None or not user.active or data.get("p") != _fingerprint(user):
        raise ResetLinkError(
            "This link was already used, or the password was changed since it was sent. "
            "Ask for a new one if you still need it."
        )
    return user


def reset_is_available() -> bool:
    """Reset emails need the global SMTP server; without it the page says so."""
    return bool(get_settings().smtp_address)


def request_reset(email: str) -> None:
    """Queue the email. Called for every address typed, known or not."""
    enqueue_reset_email(email.strip().lower())


def send_reset_email(email: str) -> bool:
    """RQ job: send the link when `email` belongs to an active account; True when sent."""
    user = find_user_by_email(email)
    if user is None or not user.active:
        return False
    settings = get_settings()
    link = f"{settings.app_url}/reset-password/{reset_token(user)}"
    send_to_user(
        user,
        "Reset your Threadline password",
        f"Hello {user.name},\n\n"
        "Someone (hopefully you) asked to reset the password of your Threadline account.\n"
        f"Open this link within {LINK_MINUTES} minutes to choose a new password:\n\n"
        f"{link}\n\n"
        "The link works once. Using it signs you out of every other browser.\n"
        "If you did not ask for this, ignore this email: your password stays as it is.\n",
    )
    log.info("password reset email sent to user %s", user.id)
    return True


def complete_reset(user: User, password: str, revoke_api_token: bool) -> None:
    """Set the new password; every session of the account ends (other browsers included)."""
    if weak := password_problem(password, user.email, user.name):
        raise UserError(weak)
    user.set_password(password)
    end_sessions(user)
    if revoke_api_token:
        user.api_token_hash = None
    db.session.commit()
