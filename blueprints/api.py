"""JSON API v1 for integrations and scripts: per-user bearer tokens, never the session cookie.

Agents reach only the inboxes they belong to, admins all. Anything outside a user's
inboxes answers 404 exactly like something that does not exist. Errors are
`{"error": "..."}` naming the field to fix.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from flask import Blueprint, Response, g, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from werkzeug.exceptions import HTTPException

from blueprints.downloads import (
    INLINE_TYPES,
    content_disposition,
    safe_download_headers,
    stream_object,
)
from extensions import csrf, db, get_settings
from models import Attachment, Contact, Conversation, Inbox, Message, User
from models.conversations import STATUSES
from models.users import hash_api_token
from services.access import can_view_inbox, visible_conversation, visible_inboxes_query
from services.conversations import (
    MAX_ID,
    ConversationError,
    ConversationRow,
    contact_conversations,
    list_conversations,
    update_conversation,
)
from services.labels import (
    clean_names,
    conversation_labels,
    labels_for,
    labels_visible_to,
    set_labels,
)
from services.replies import ReplyError, create_reply, mark_sent, retry_delivery
from services.workspace import count_open

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)  # bearer tokens only: a browser's cookie never authenticates here

# The API described in OpenAPI 3.1; tests/integration/test_openapi.py holds the API to it.
OPENAPI_DOCUMENT = Path(__file__).with_name("api_openapi.json").read_bytes()
LIST_PARAMS = ("inbox_id", "status", "assignee", "q", "cursor", "limit", "label")
REPLY_FIELDS = ("content", "private", "cc", "bcc")
PATCH_FIELDS = ("status", "assignee_id", "snoozed_until", "labels")


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@bp.errorhandler(ApiError)
def api_error(error: ApiError):
    response = _error(error.status, error.message)
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="threadline"'
        if request.headers.get("Authorization"):
            response.headers["WWW-Authenticate"] += ', error="invalid_token"'
    return response


@bp.errorhandler(HTTPException)
def http_error(error: HTTPException):
    response = _error(error.code or 500, error.description or error.name)
    for name, value in error.get_headers():  # e.g. Allow on a 405
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _error(status: int, message: str) -> Response:
    return json_response({"error": message}, status)


def json_response(payload, status: int = 200) -> Response:
    response = Response(json.dumps(payload), status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.before_request
def authenticate() -> None:
    """`Authorization: Bearer <token>` of an active user; nothing else is accepted."""
    if request.endpoint == "api.openapi_document":
        return  # the description of the API is public; everything it describes needs a token
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "send your API token as 'Authorization: Bearer <token>'")
    user = db.session.scalar(select(User).where(User.api_token_hash == hash_api_token(token)))
    if user is None or not user.active:
        raise ApiError(401, "the API token is not valid: generate a new one on your profile page")
    g.api_user = user


def _user() -> User:
    return g.api_user


@bp.get("/openapi.json")
def openapi_document():
    response = Response(OPENAPI_DOCUMENT, mimetype="application/json")
    response.headers["Cache-Control"] = "no-cache"
    return response


# --- inboxes -----------------------------------------------------------------------------


@bp.get("/inboxes")
def inboxes():
    rows = db.session.scalars(visible_inboxes_query(_user())).all()
    open_counts = count_open(_user(), [i.id for i in rows])["per_inbox"]
    return json_response(
        {
            "inboxes": [
                {
                    "id": inbox.id,
                    "name": inbox.name,
                    "support_address": inbox.support_address,
                    "mode": inbox.mode,
                    "open_conversations": open_counts.get(inbox.id, 0),
                }
                for inbox in rows
            ]
        }
    )


# --- labels ------------------------------------------------------------------------------


@bp.get("/labels")
def labels():
    """Labels used in the caller's inboxes (every label for an admin), as the sidebar shows."""
    return json_response(
        {
            "labels": [
                {"name": label.name, "display_name": label.display_name, "color": label.color}
                for label in labels_visible_to(_user())
            ]
        }
    )


# --- conversations -----------------------------------------------------------------------


@bp.get("/conversations")
def conversations():
    unknown = sorted(set(request.args) - set(LIST_PARAMS))
    if unknown:
        raise ApiError(
            400, f"unknown parameter {', '.join(unknown)}; allowed: {', '.join(LIST_PARAMS)}"
        )
    if any("\x00" in value for _, values in request.args.lists() for value in values):
        raise ApiError(400, "query parameters must not contain NUL characters (%00)")
    inbox_id = _int_arg("inbox_id")
    if inbox_id is not None and not _inbox_visible(inbox_id):
        raise ApiError(404, f"inbox_id {inbox_id}: no such inbox")
    limit = _int_arg("limit")
    if limit is not None and not 1 <= limit <= 100:
        raise ApiError(400, "limit must be between 1 and 100")
    try:
        page = list_conversations(
            _user(),
            inbox_id=inbox_id,
            status=request.args.get("status") or None,
            assignee=request.args.get("assignee") or None,
            q=request.args.get("q"),
            cursor=request.args.get("cursor") or None,
            limit=limit or 25,
            label=request.args.get("label") or None,
        )
    except ConversationError as exc:
        raise ApiError(400, str(exc)) from None
    labels = labels_for([row.conversation.id for row in page.rows])
    return json_response(
        {
            "conversations": [conversation_json(row, labels) for row in page.rows],
            "next_cursor": page.next_cursor,
        }
    )


@bp.get("/conversations/<int:conversation_id>")
def conversation(conversation_id: int):
    return json_response(conversation_detail(_visible_conversation(conversation_id)))


@bp.post("/conversations/<int:conversation_id>/messages")
def reply(conversation_id: int):
    conv = _visible_conversation(conversation_id)
    data = _json_body(REPLY_FIELDS)
    content = data.get("content")
    if content is None:
        raise ApiError(422, "content is required")
    if not isinstance(content, str):
        raise ApiError(422, "content must be a string")
    private = data.get("private", False)
    if not isinstance(private, bool):
        raise ApiError(422, "private must be true or false")
    cc, bcc = _address_list(data, "cc"), _address_list(data, "bcc")
    try:
        message = create_reply(conv, _user(), content, private=private, cc=cc, bcc=bcc)
    except ReplyError as exc:
        raise ApiError(422, str(exc)) from None
    senders = _senders([message])
    response = json_response(message_json(message, senders), 201)
    response.headers["Location"] = url_for("api.conversation", conversation_id=conv.id)
    return response


@bp.post("/messages/<int:message_id>/retry")
def retry(message_id: int):
    """Send a failed reply, or one of unknown fate, again."""
    return _decide(message_id, retry_delivery)


@bp.post("/messages/<int:message_id>/mark-sent")
def mark_as_sent(message_id: int):
    """A reply of unknown fate reached the customer: never send it again."""
    return _decide(message_id, lambda message: mark_sent(message, _user()))


def _decide(message_id: int, decision):
    message = _find(Message, message_id)
    if message is None or not can_view_inbox(_user(), message.inbox_id):
        raise ApiError(404, f"message {message_id}: no such message")
    try:
        decision(message)
    except ReplyError as exc:
        raise ApiError(422, str(exc)) from None
    return json_response(message_json(message, _senders([message])))


@bp.patch("/conversations/<int:conversation_id>")
def update(conversation_id: int):
    conv = _visible_conversation(conversation_id)
    data = _json_body(PATCH_FIELDS)
    if not data:
        raise ApiError(422, "nothing to change: send status, assignee_id and/or labels")
    changes = {}
    if "status" in data:
        if not isinstance(data["status"], str):
            raise ApiError(422, f"status must be one of {', '.join(STATUSES)}")
        changes["status"] = data["status"]
    if "assignee_id" in data:
        value = data["assignee_id"]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ApiError(422, "assignee_id must be a user id (integer) or null")
        changes["assignee_id"] = value
    if data.get("snoozed_until") is not None:
        changes["snoozed_until"] = _datetime_field(data["snoozed_until"], "snoozed_until")
    try:
        names = clean_names(data["labels"]) if "labels" in data else None
        if changes:
            update_conversation(conv, _user(), **changes)
        if names is not None:
            set_labels(conv, _user(), names)
    except ConversationError as exc:
        db.session.rollback()
        raise ApiError(422, str(exc)) from None
    return json_response(conversation_detail(conv))


# --- contacts and attachments ------------------------------------------------------------


@bp.get("/contacts/<int:contact_id>")
def contact(contact_id: int):
    found = _find(Contact, contact_id)
    rows = contact_conversations(_user(), found) if found is not None else []
    if found is None or (not rows and not _user().is_admin):
        raise ApiError(404, f"contact {contact_id}: no such contact")
    return json_response(
        {
            **contact_json(found),
            "created_at": _iso(found.created_at),
            "conversations": [conversation_json(row) for row in rows],
        }
    )


@bp.get("/attachments/<int:attachment_id>")
def attachment(attachment_id: int):
    """The bytes of an attachment, with the same safe headers as the web download."""
    found = _find(Attachment, attachment_id)
    message = db.session.get(Message, found.message_id) if found is not None else None
    if message is None or not can_view_inbox(_user(), message.inbox_id):
        raise ApiError(404, f"attachment {attachment_id}: no such attachment")
    if found.storage_key is None:
        raise ApiError(410, found.skipped_reason or "this attachment was not stored")
    inline = found.content_type in INLINE_TYPES
    response = Response(
        stream_object(found.storage_key),
        mimetype=found.content_type if inline else "application/octet-stream",
    )
    disposition = content_disposition("attachment", found.filename)
    safe_download_headers(response, disposition, found.size)
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --- request parsing ---------------------------------------------------------------------


def _json_body(allowed: tuple[str, ...]) -> dict:
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


def _address_list(data: dict, field: str) -> list[str]:
    value = data.get(field)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ApiError(422, f"{field} must be a list of email addresses")
    return value


def _int_arg(name: str) -> int | None:
    """An empty value counts as absent; anything else must be digits, nothing around them
    (str.strip() would also drop exotic spaces such as U+0085 and make them "absent")."""
    value = request.args.get(name, "")
    if not value:
        return None
    if not (value.isascii() and value.isdigit()):  # "²" passes isdigit() but not int()
        raise ApiError(400, f"{name} must be a positive integer")
    return int(value)


def _datetime_field(value, name: str) -> datetime:
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


def _find(model, pk: int):
    """The row with this id, or None; an id past MAX_ID cannot exist and is not looked up."""
    return db.session.get(model, pk) if 0 < pk <= MAX_ID else None


def _inbox_visible(inbox_id: int) -> bool:
    if not 0 < inbox_id <= MAX_ID:
        return False
    return db.session.scalar(visible_inboxes_query(_user()).where(Inbox.id == inbox_id)) is not None


def _visible_conversation(conversation_id: int) -> Conversation:
    in_range = 0 < conversation_id <= MAX_ID  # past MAX_ID it cannot exist: not looked up
    conv = visible_conversation(_user(), conversation_id) if in_range else None
    if conv is None:
        raise ApiError(404, f"conversation {conversation_id}: no such conversation")
    return conv


# --- JSON shapes -------------------------------------------------------------------------


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def contact_json(contact: Contact) -> dict:
    return {"id": contact.id, "email": contact.email, "name": contact.name}


def user_json(user: User | None) -> dict | None:
    return {"id": user.id, "name": user.name} if user is not None else None


def conversation_json(row: ConversationRow, labels: dict | None = None) -> dict:
    """`labels` maps conversation ids to labels (services.labels.labels_for) for a page."""
    conv = row.conversation
    found = labels.get(conv.id, []) if labels is not None else conversation_labels(conv.id)
    return {
        "id": conv.id,
        "display_number": conv.display_number,
        "subject": conv.subject,
        "status": conv.status,
        "snoozed_until": _iso(conv.snoozed_until),
        "inbox_id": conv.inbox_id,
        "contact": contact_json(row.contact),
        "assignee": user_json(row.assignee),
        "labels": [label.display_name for label in found],
        "last_activity_at": _iso(conv.last_activity_at),
        "created_at": _iso(conv.created_at),
    }


def conversation_detail(conv: Conversation) -> dict:
    contact = db.session.get(Contact, conv.contact_id)
    assignee = db.session.get(User, conv.assignee_id) if conv.assignee_id else None
    messages = db.session.scalars(
        select(Message)
        .where(Message.conversation_id == conv.id)
        .order_by(Message.id)
        .options(selectinload(Message.attachments))
    ).all()
    senders = _senders(messages)
    return {
        **conversation_json(ConversationRow(conv, contact, assignee)),
        "messages": [message_json(message, senders) for message in messages],
    }


def _senders(messages) -> dict:
    """Users and contacts named by these messages, loaded in two queries."""
    user_ids = {m.sender_user_id for m in messages if m.sender_user_id}
    contact_ids = {m.contact_id for m in messages if m.contact_id}
    users = db.session.scalars(select(User).where(User.id.in_(user_ids))) if user_ids else []
    contacts = (
        db.session.scalars(select(Contact).where(Contact.id.in_(contact_ids)))
        if contact_ids
        else []
    )
    return {
        **{("user", u.id): {"type": "user", **user_json(u)} for u in users},
        **{("contact", c.id): {"type": "contact", **contact_json(c)} for c in contacts},
    }


def _addresses(value: str) -> list[str]:
    return [part.strip() for part in (value or "").split(", ") if part.strip()]


def message_json(message: Message, senders: dict) -> dict:
    if message.direction == "incoming" and message.contact_id:
        sender = senders.get(("contact", message.contact_id))
    else:
        sender = senders.get(("user", message.sender_user_id))
    return {
        "id": message.id,
        "direction": message.direction,
        "private": message.direction == "note",
        "sender": sender,
        "subject": message.subject,
        "from": message.from_address or None,
        "to": _addresses(message.to_addresses),
        "cc": _addresses(message.cc_addresses),
        "bcc": _addresses(message.bcc_addresses),
        "text": message.text_body,
        "quoted_text": message.quoted_text,
        "html": message.html_body,
        "quoted_html": message.quoted_html,
        "delivery_status": message.delivery_status,
        "delivery_error": message.delivery_error,
        "sent_at": _iso(message.sent_at),
        "smtp_response": message.smtp_response,
        "sent_mime_url": get_settings().app_url
        + url_for("attachments.sent_mime", message_id=message.id)
        if message.mime_storage_key
        else None,
        "threaded_by": message.threaded_by,
        "auto_flag": message.auto_flag,
        "created_at": _iso(message.created_at),
        "attachments": [attachment_json(a) for a in message.attachments],
    }


def attachment_json(attachment: Attachment) -> dict:
    stored = attachment.storage_key is not None
    base = get_settings().app_url
    return {
        "id": attachment.id,
        "filename": attachment.filename,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "inline": attachment.inline,
        # The web URL needs a signed-in browser; download_url takes the bearer token.
        "url": base + url_for("attachments.download", attachment_id=attachment.id)
        if stored
        else None,
        "download_url": base + url_for("api.attachment", attachment_id=attachment.id)
        if stored
        else None,
        "skipped_reason": attachment.skipped_reason,
    }
