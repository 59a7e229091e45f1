"""One action on several conversations at once (the list's bulk bar): assign, change the
status, add labels, or merge them into one. Each conversation goes through the same service
as the single action (services/conversations.update_conversation, services/labels.set_labels,
services/merge.merge), with the same checks; all of them change in one transaction, or none
does, and a refusal names the conversation it is about.

Callers pass conversation ids as the request gave them: a conversation the user may not
see is refused like one that does not exist (no telling the two apart).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from extensions import db
from models import Conversation, User
from services import merge
from services.access import visible_conversation
from services.conversations import ConversationError, update_conversation
from services.labels import conversation_labels, set_labels

STATUS_ACTIONS = ("open", "pending", "resolved")
ACTIONS = ("assign", "label", *STATUS_ACTIONS)
MAX_CONVERSATIONS = 100  # a page of the list holds at most this many rows


class BulkError(ConversationError):
    """The whole bulk action was refused; nothing changed. `conversation` is the one the
    refusal is about (None when it is about the request itself)."""

    def __init__(self, message: str, conversation: Conversation | None = None):
        super().__init__("conversations", message)
        self.conversation = conversation


@dataclass
class BulkResult:
    conversations: list[Conversation]  # every conversation acted on, in the order given
    changed: int  # how many of them actually changed (an activity line each)


def apply(
    user: User,
    conversation_ids: list[int],
    action: str,
    assignee_id: int | None = None,
    labels: list[str] | None = None,
) -> BulkResult:
    """Apply `action` to each conversation: "assign" (to `assignee_id`, None = unassign),
    "open", "pending", "resolved", or "label" (add `labels` to the ones each has).
    Raises BulkError, having changed nothing, when any one of them cannot take it."""
    if action not in ACTIONS:
        raise BulkError(f"Unknown action “{action}”: choose one of {', '.join(ACTIONS)}.")
    ids = _checked_ids(conversation_ids)
    if not ids:
        raise BulkError("Select at least one conversation first.")
    if action == "label" and not labels:
        raise BulkError("Type the label to add.")
    conversations = _visible(user, ids)

    def change(conversation: Conversation) -> bool:
        return _apply_one(conversation, user, action, assignee_id, labels or [])

    return BulkResult(conversations, _in_one_transaction(conversations, change))


def merge_selected(user: User, conversation_ids: list[int], into: str = "") -> BulkResult:
    """Merge the selected conversations into one (services/merge.py): into the conversation
    numbered `into` ("#42", selected or not) when given, else into the selected one with the
    latest activity (the highest in the list). The result's `conversations`: the survivor
    first, then the ones merged into it."""
    selected = _visible(user, _checked_ids(conversation_ids))
    if into.strip():
        try:
            survivor = merge.find_survivor(user, into)
        except ConversationError as exc:
            raise BulkError(f"{exc} Nothing was changed.") from None
    else:
        survivor = max(selected, key=lambda c: (c.last_activity_at, c.id), default=None)
    sources = [c for c in selected if survivor is not None and c.id != survivor.id]
    if not sources:
        raise BulkError(
            "Select at least two conversations to merge (or one, and the number of the "
            "conversation to merge it into)."
        )

    def change(conversation: Conversation) -> bool:
        merge.merge(conversation, survivor, user, commit=False)
        return True

    return BulkResult([survivor, *sources], _in_one_transaction(sources, change))


def _checked_ids(conversation_ids: list[int]) -> list[int]:
    ids = list(dict.fromkeys(conversation_ids))
    if len(ids) > MAX_CONVERSATIONS:
        raise BulkError(f"At most {MAX_CONVERSATIONS} conversations at once.")
    return ids


def _visible(user: User, ids: list[int]) -> list[Conversation]:
    conversations = []
    for conversation_id in ids:
        conversation = visible_conversation(user, conversation_id)
        if conversation is None:
            raise BulkError(f"Conversation {conversation_id} is not in any of your inboxes.")
        conversations.append(conversation)
    return conversations


def _in_one_transaction(conversations: list[Conversation], change) -> int:
    """`change(conversation)` for each, committed once at the end (the services only flush
    here) or not at all; returns how many changed. A refusal names its conversation."""
    changed = 0
    try:
        for conversation in conversations:
            try:
                changed += change(conversation)
            except ConversationError as exc:
                why = re.sub(r"^assignee_id \d+: ", "", str(exc)).rstrip(".")
                raise BulkError(
                    f"#{conversation.display_number} “{conversation.subject or '(no subject)'}”: "
                    f"{why}. Nothing was changed.",
                    conversation,
                ) from None
    except BaseException:
        db.session.rollback()
        raise
    db.session.commit()  # the list version moves once, on this commit
    return changed


def _apply_one(
    conversation: Conversation, user: User, action: str, assignee_id, labels: list[str]
) -> bool:
    if action == "assign":
        return bool(update_conversation(conversation, user, assignee_id=assignee_id, commit=False))
    if action in STATUS_ACTIONS:
        return bool(update_conversation(conversation, user, status=action, commit=False))
    before = [label.display_name for label in conversation_labels(conversation.id)]
    after = set_labels(conversation, user, before + labels, commit=False)
    return len(after) != len(before)
