"""Conversation endpoints: the filtered, paginated list, one conversation with its messages,
the PATCH that changes its status, assignee, snooze and labels, and merging one into another."""

from __future__ import annotations

import re

from flask import request

from blueprints.api.blueprint import ApiError, api_user, bp, json_response
from blueprints.api.inputs import (
    datetime_field,
    find_conversation,
    inbox_visible,
    int_arg,
    json_body,
)
from blueprints.api.serialise import conversation_detail, conversation_json
from models.conversations import STATUSES
from services.conversation_list import list_conversations
from services.conversations import ConversationError, update_conversation
from services.labels import clean_names, labels_for, set_labels
from services.merge import MergeError, find_survivor, merge

LIST_PARAMS = ("inbox_id", "status", "assignee", "q", "cursor", "limit", "label")
PATCH_FIELDS = ("status", "assignee_id", "snoozed_until", "labels")


@bp.get("/conversations")
def conversations():
    unknown = sorted(set(request.args) - set(LIST_PARAMS))
    if unknown:
        raise ApiError(
            400, f"unknown parameter {', '.join(unknown)}; allowed: {', '.join(LIST_PARAMS)}"
        )
    if any("\x00" in value for _, values in request.args.lists() for value in values):
        raise ApiError(400, "query parameters must not contain NUL characters (%00)")
    inbox_id = int_arg("inbox_id")
    if inbox_id is not None and not inbox_visible(inbox_id):
        raise ApiError(404, f"inbox_id {inbox_id}: no such inbox")
    limit = int_arg("limit")
    if limit is not None and not 1 <= limit <= 100:
        raise ApiError(400, "limit must be between 1 and 100")
    try:
        page = list_conversations(
            api_user(),
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
    return json_response(conversation_detail(find_conversation(conversation_id)))


@bp.patch("/conversations/<int:conversation_id>")
def update(conversation_id: int):
    conv = find_conversation(conversation_id)
    data = json_body(PATCH_FIELDS)
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
        changes["snoozed_until"] = datetime_field(data["snoozed_until"], "snoozed_until")
    try:
        names = clean_names(data["labels"]) if "labels" in data else None
        if changes:
            update_conversation(conv, api_user(), **changes)
        if names is not None:
            set_labels(conv, api_user(), names)
    except ConversationError as exc:  # raised before anything changes: nothing to undo
        raise ApiError(422, str(exc)) from None
    return json_response(conversation_detail(conv))


@bp.post("/conversations/<int:conversation_id>/merge")
def merge_conversation(conversation_id: int):
    """Merge this conversation into `into` (services/merge.py); answers with the survivor."""
    source = find_conversation(conversation_id)
    survivor = _merge_target(json_body(("into",)).get("into"))
    try:
        merge(source, survivor, api_user())
    except ConversationError as exc:  # raised before anything changes
        raise ApiError(422, str(exc)) from None
    return json_response(conversation_detail(survivor))


def _merge_target(into):
    """`into`: the survivor's id, or its number as "#42"; one out of reach is a 404."""
    if isinstance(into, bool) or not isinstance(into, int | str):
        raise ApiError(
            422, 'into must be the id of the conversation to merge into, or its number as "#42"'
        )
    if isinstance(into, str):
        if not re.fullmatch(r"#[0-9]{1,12}", into):
            raise ApiError(422, f'into: give a conversation number as "#42", not "{into[:40]}"')
        try:
            return find_survivor(api_user(), into)
        except MergeError as exc:
            raise ApiError(404, f"into: {exc}") from None
    try:
        return find_conversation(into)
    except ApiError as exc:
        raise ApiError(404, f"into: {exc.message}") from None
