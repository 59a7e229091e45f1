"""The last step of every sign-in (password alone, or password then a second factor):
start the server-side session, clear the throttle, remember the device.

The "known device" cookie only lets this browser skip the per-account slow-down that an
attack from many addresses causes (services/throttle.py); it signs nobody in by itself.
"""

from __future__ import annotations

from flask import Response, current_app, redirect, request, url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer

from blueprints.redirects import local_path
from extensions import get_settings
from models import User
from services.sessions import start_session
from services.throttle import clear_failures

DEVICE_COOKIE = "threadline_device"
DEVICE_DAYS = 90
MAX_DEVICE_USERS = 10


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="known-device")


def known_device_users() -> list[int]:
    """Ids of the accounts that signed in successfully on this browser before."""
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw:
        return []
    try:
        ids = _serializer().loads(raw, max_age=DEVICE_DAYS * 86400)
    except BadSignature:
        return []
    return [i for i in ids if isinstance(i, int)] if isinstance(ids, list) else []


def is_known_device(user: User | None) -> bool:
    return user is not None and user.id in known_device_users()


def safe_next(target: str | None) -> str:
    """Only same-site paths: `next` must never send a user to another host."""
    return local_path(target) or url_for("home.index")


def finish_sign_in(user: User, remember: bool, next_url: str | None) -> Response:
    """Sign `user` in on this browser and send them where they were going."""
    start_session(user, remember=remember)
    clear_failures(user.email, request.remote_addr)
    response = redirect(safe_next(next_url))
    ids = [user.id] + [i for i in known_device_users() if i != user.id]
    response.set_cookie(
        DEVICE_COOKIE,
        _serializer().dumps(ids[:MAX_DEVICE_USERS]),
        max_age=DEVICE_DAYS * 86400,
        httponly=True,
        samesite="Lax",
        secure=get_settings().session_cookie_secure,
    )
    return response
