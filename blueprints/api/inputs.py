"""What a request sends, checked before any view acts on it: the JSON body, the query
arguments and the ids it names, each refused with an ApiError naming what to fix."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from flask import request

from blueprints.api.blueprint import ApiError, api_user
from extensions import db
from models import Conversation, Inbox
from services.access import visible_conversation, visible_inboxes_query
from services.conversations import MAX_ID


def json_body(allowed: tuple[str, ...]) -> dict:
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise ApiError(400, "the request body is empty: send a JSON object")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ApiError(
            422, f"unknown field {', '.join(unknown)}; allowed fields: {', '.join(allowed)}"
        )
    if _unstorable(data):
        raise ApiError(
            422,
            "text must not contain NUL characters (\\u0000) or unpaired surrogates "
            "(\\ud800-\\udfff): no database can store them",
        )
    return data


def _unstorable(value) -> bool:
    """Strings the database refuses: NUL (PostgreSQL) or a lone surrogate (not UTF-8)."""
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return True
        return "\x00" in value
    if isinstance(value, dict):
        return any(_unstorable(key) or _unstorable(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_unstorable(item) for item in value)
    return False


def address_list(data: dict, field: str, *, absent_is_none: bool = False) -> list[str] | None:
    """A list of addresses (checked by the service); absent or null is [] (none), or None
    with `absent_is_none` (a reply's `to`: the service's default, the contact)."""
    value = data.get(field)
    if value is None:
        return None if absent_is_none else []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ApiError(422, f"{field} must be a list of email addresses")
    return value


def int_arg(name: str) -> int | None:
    """An empty value counts as absent; anything else must be digits, nothing around them
    (str.strip() would also drop exotic spaces such as U+0085 and make them "absent")."""
    value = request.args.get(name, "")
    if not value:
        return None
    if not (value.isascii() and value.isdigit()):  # "²" passes isdigit() but not int()
        raise ApiError(400, f"{name} must be a positive integer")
    return int(value)


def datetime_field(value, name: str) -> datetime:
    """An ISO 8601 date and time with a time zone ("2026-11-23T09:00:00Z")."""
    try:
        if not isinstance(value, str):
            raise ValueError
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ApiError(422, f"{name} must be an ISO 8601 date and time") from None
    if moment.tzinfo is None:
        raise ApiError(422, f"{name} needs a time zone, e.g. 2026-11-23T09:00:00Z")
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:00:00-05:00 is past the year 9999 in UTC
        raise ApiError(
            422, f"{name} is out of range: it must fall within the years 1-9999 in UTC"
        ) from None


def find(model, pk: int):
    """The row with this id, or None; an id past MAX_ID cannot exist and is not looked up."""
    return db.session.get(model, pk) if 0 < pk <= MAX_ID else None


def inbox_visible(inbox_id: int) -> bool:
    if not 0 < inbox_id <= MAX_ID:
        return False
    query = visible_inboxes_query(api_user()).where(Inbox.id == inbox_id)
    return db.session.scalar(query) is not None


def find_conversation(conversation_id: int) -> Conversation:
    """The caller's conversation, or a 404 just like one that does not exist."""
    in_range = 0 < conversation_id <= MAX_ID  # past MAX_ID it cannot exist: not looked up
    conv = visible_conversation(api_user(), conversation_id) if in_range else None
    if conv is None:
        raise ApiError(404, f"conversation {conversation_id}: no such conversation")
    return conv
