"""Changing a conversation: opening one, its status, assignee and snooze, shared by the web UI
and the JSON API (listing and searching them: services/conversation_list.py).

Callers check that the user may see the conversation's inbox first (services/access.py);
these functions validate the change itself and record what happened as activity lines.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from extensions import db
from models import Conversation, InboxMember, Message, User, utcnow
from models.conversations import STATUSES
from models.enums import NotificationEvent as Event
from services.notifications import events as notifications

NUMBER_RETRIES = 5
# The largest id a row can have: ids are INTEGER columns, 32-bit on PostgreSQL. A larger
# number from a URL or a request is simply not found; binding it would fail instead
# (PostgreSQL: "integer out of range"; SQLite beyond 64 bits: OverflowError).
MAX_ID = 2**31 - 1
_UNCHANGED = object()  # "assignee_id not given"; None means "unassign"

STATUS_PHRASES = {
    "open": "reopened this conversation",
    "pending": "marked this conversation as pending",
    "resolved": "resolved this conversation",
    "snoozed": "snoozed this conversation",
    # The API may set it too; the thread's buttons and blocking go through services/spam.py.
    "spam": "marked this as spam",
}


class ConversationError(ValueError):
    """A change or a query that cannot be accepted; `field` names what to fix."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def new_conversation(
    inbox_id: int, contact_id: int, subject: str, at: datetime | None = None
) -> Conversation:
    """A new open conversation with the next display number, its last activity `at` (now by
    default); a concurrent worker taking the same number makes us try again. Added and
    flushed, not committed."""
    for _ in range(NUMBER_RETRIES):
        number = (db.session.scalar(select(func.max(Conversation.display_number))) or 0) + 1
        conversation = Conversation(
            inbox_id=inbox_id,
            contact_id=contact_id,
            display_number=number,
            subject=subject[:998],
            last_activity_at=at or utcnow(),
        )
        try:
            with db.session.begin_nested():
                db.session.add(conversation)
            return conversation
        except IntegrityError:
            continue
    raise RuntimeError("could not allocate a conversation number; retry")


def latest_email(conversation_id: int) -> Message | None:
    """The conversation's newest incoming email: what reply-all and the From address go by."""
    return db.session.scalar(
        select(Message)
        .where(Message.conversation_id == conversation_id, Message.direction == "incoming")
        .order_by(Message.id.desc())
        .limit(1)
    )


def update_conversation(
    conversation: Conversation,
    actor: User | None,
    status: str | None = None,
    assignee_id: int | None | object = _UNCHANGED,
    snoozed_until: datetime | None = None,
    *,
    commit: bool = True,
    by: str | None = None,
) -> list[Message]:
    """Change status and/or assignee; both are validated before anything changes.
    `commit=False` leaves the commit to a caller changing several (services/bulk_actions.py).
    `by`: who the activity lines name when no user acts (an automation rule: "Rule 'VIP'
    assigned this to Bob"); the lines then have no sender, and `actor` may be None.

    Snoozing needs `snoozed_until`, a time in the future: the wake_snoozed sweep reopens
    the conversation then (a new message from the contact reopens it sooner).
    Returns the activity lines added (none when nothing actually changed).
    """
    if status is not None and status not in STATUSES:
        raise ConversationError("status", f"status must be one of {', '.join(STATUSES)}")
    _check_snooze(status, snoozed_until)
    assignee = current = None
    if assignee_id is not _UNCHANGED and assignee_id is not None:
        if isinstance(assignee_id, bool) or not isinstance(assignee_id, int):
            raise ConversationError(
                "assignee_id", "assignee_id must be a user id (integer) or null"
            )
    change_assignee = assignee_id is not _UNCHANGED and assignee_id != conversation.assignee_id
    if change_assignee and assignee_id is not None:
        assignee = _assignable_user(conversation, assignee_id)
    if change_assignee and conversation.assignee_id is not None:
        current = conversation.assignee

    who, actor_id = acting(actor, by)
    lines = []
    if change_assignee:
        conversation.assignee_id = assignee.id if assignee else None
        if assignee is not None:
            lines.append(f"{who} assigned this to {assignee.name}")
            notifications.record(Event.ASSIGNED, conversation, actor_id=actor_id)
        else:
            former = current.name if current is not None else "the previous assignee"
            lines.append(f"{who} unassigned {former}")
    if status == "snoozed" and (
        conversation.status != "snoozed" or conversation.snoozed_until != snoozed_until
    ):
        conversation.snooze(snoozed_until)
        lines.append(f"{who} {STATUS_PHRASES['snoozed']} until {snooze_label(snoozed_until)}")
    elif status is not None and status != conversation.status:
        conversation.move_to(status)
        lines.append(f"{who} {STATUS_PHRASES[status]}")

    activity = [conversation.activity(line, actor_id) for line in lines]
    db.session.add_all(activity)
    if commit:
        db.session.commit()
    else:
        db.session.flush()
    return activity


def acting(actor: User | None, by: str | None) -> tuple[str, int | None]:
    """Who an activity line names, and its sender: the user, or `by` (a rule) with none."""
    if by is not None:
        return by, None
    if actor is None:
        raise ValueError("a change needs the user who makes it, or `by`")
    return actor.name, actor.id


def _check_snooze(status: str | None, snoozed_until: datetime | None) -> None:
    if snoozed_until is not None and status != "snoozed":
        raise ConversationError("snoozed_until", 'snoozed_until goes with status "snoozed"')
    if status != "snoozed":
        return
    if snoozed_until is None:
        raise ConversationError("snoozed_until", "snoozing needs snoozed_until: when to reopen")
    if not isinstance(snoozed_until, datetime) or snoozed_until.tzinfo is None:
        raise ConversationError(
            "snoozed_until", "snoozed_until must be a date and time with a time zone"
        )
    if snoozed_until <= utcnow():
        raise ConversationError("snoozed_until", "snoozed_until must be in the future")


def snooze_label(moment: datetime) -> str:
    """ "2026-11-23 09:00 UTC": how activity lines and the thread show a snooze's end."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _assignable_user(conversation: Conversation, assignee_id: int) -> User:
    user = db.session.get(User, assignee_id) if 0 < assignee_id <= MAX_ID else None
    if user is None or not user.active:
        raise ConversationError("assignee_id", f"assignee_id {assignee_id}: no active user")
    member = db.session.get(InboxMember, (conversation.inbox_id, user.id))
    if member is None and not user.is_admin:
        raise ConversationError(
            "assignee_id",
            f"assignee_id {assignee_id}: {user.name} is not a member of this conversation's inbox",
        )
    return user
