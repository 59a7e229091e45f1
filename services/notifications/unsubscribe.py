"""The unsubscribe link of a notification email (List-Unsubscribe, RFC 8058 one-click).

The link is an itsdangerous token over the user id and the event types of that email, signed
with SECRET_KEY under a salt of its own: it is the only credential (a mail provider posts it
without a session or CSRF token), so it is unguessable and names exactly what it turns off.
It does not expire: an old notification's link keeps working, as mail clients expect.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

from extensions import db, get_settings
from models import User

SALT = "notification-unsubscribe"


class UnsubscribeLinkError(ValueError):
    """The link cannot be used; the message says so."""


@dataclass(frozen=True)
class Unsubscribe:
    user: User
    events: list[str]  # known event keys, in EVENTS order
    labels: list[str]  # what each is called on the profile page


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def unsubscribe_token(user_id: int, events: list[str]) -> str:
    return _serializer().dumps({"u": user_id, "e": sorted(set(events))})


def unsubscribe_url(user_id: int, events: list[str]) -> str:
    return (
        f"{get_settings().app_url}/notifications/unsubscribe/{unsubscribe_token(user_id, events)}"
    )


def read_token(token: str) -> Unsubscribe:
    """What a link turns off, or UnsubscribeLinkError (tampered, cut short, or for an account
    or events that no longer exist)."""
    from services.notifications.events import EVENTS

    invalid = UnsubscribeLinkError(
        "This unsubscribe link is not valid. Copy the whole link from the email, or turn "
        "notification emails off on your profile page."
    )
    try:
        data = _serializer().loads(token)
    except BadSignature as exc:
        raise invalid from exc
    if not isinstance(data, dict) or not isinstance(data.get("e"), list):
        raise invalid
    user = db.session.get(User, data.get("u")) if isinstance(data.get("u"), int) else None
    events = [event for event in EVENTS if event in data["e"]]
    if user is None or not events:
        raise invalid
    return Unsubscribe(user, events, [EVENTS[event][0] for event in events])


def turn_off(found: Unsubscribe) -> None:
    """Email off for the link's events (in-app notifications stay as they were)."""
    from services.notifications.events import set_email_preference

    for event in found.events:
        set_email_preference(found.user.id, event, False)
