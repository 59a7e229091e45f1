"""Fix wrong threading: move a customer's email into another conversation, or split it off
into a new one.

The message keeps its Message-ID, so the customer's later replies (In-Reply-To/References
name it) follow it to where it was moved. Attachments belong to the message and go with it.
Both threads get an activity line saying who moved what where. Callers check that the user
may see the source conversation's inbox first (services/access.py). A MoveError is raised
before anything changes, so the view that shows it has nothing to roll back.
"""

from __future__ import annotations

from sqlalchemy import func, select

from extensions import db
from models import Conversation, Message, User, utcnow
from models.enums import ConversationStatus
from services.access import can_view_inbox
from services.conversations import MAX_ID, ConversationError, new_conversation

MOVABLE = ("incoming",)


class MoveError(ConversationError):
    def __init__(self, message: str):
        super().__init__("move", message)


def _check_movable(message: Message, source: Conversation) -> None:
    if message.conversation_id != source.id:
        raise MoveError("That message is not in this conversation.")
    if message.direction not in MOVABLE:
        raise MoveError("Only emails from the customer can be moved; replies and notes stay.")


def _describe(message: Message) -> str:
    subject = (message.subject or "(no subject)")[:80]
    return f"the email “{subject}” from {message.from_display or 'the customer'}"


def _relocate(message: Message, source: Conversation, target: Conversation) -> None:
    message.conversation_id = target.id
    message.threaded_by = "manual"
    now = utcnow()
    target.last_activity_at = now
    source.last_activity_at = max(source.last_activity_at, now)
    if target.status != ConversationStatus.OPEN:  # the moved email needs an answer there now
        target.reopen()


def _remaining_incoming(conversation: Conversation) -> int:
    return db.session.scalar(
        select(func.count(Message.id)).where(
            Message.conversation_id == conversation.id, Message.direction == "incoming"
        )
    )


def conversation_numbered(actor: User, reference: str, doing: str = "move to") -> Conversation:
    """The conversation an agent typed as "#42" or "42", checked like any other access: one
    outside their inboxes is "no such conversation" (also used by services/merge.py)."""
    number = reference.strip().lstrip("#").strip()
    if not (number.isascii() and number.isdigit()):  # "²" passes isdigit() but not int()
        raise MoveError(f"Give the number of the conversation to {doing}, like #42.")
    found = None
    if int(number) <= MAX_ID:  # a larger one cannot exist (and PostgreSQL refuses to bind it)
        found = db.session.scalar(
            select(Conversation).where(Conversation.display_number == int(number))
        )
    if found is None or not can_view_inbox(actor, found.inbox_id):
        raise MoveError(f"There is no conversation #{number} in your inboxes.")
    return found


def find_target(source: Conversation, actor: User, reference: str) -> Conversation:
    """The conversation to move an email into: one of the same inbox, not its own."""
    target = conversation_numbered(actor, reference)
    number = target.display_number
    if target.id == source.id:
        raise MoveError(f"The email is already in #{number}.")
    if target.inbox_id != source.inbox_id:
        raise MoveError(
            f"#{number} is in another inbox; emails can only move between conversations "
            "of the same inbox."
        )
    if target.merged_into_id is not None:
        survivor = db.session.get(Conversation, target.merged_into_id)
        raise MoveError(f"#{number} was merged into #{survivor.display_number}: move it there.")
    return target


def move_message(message: Message, source: Conversation, target: Conversation, actor: User):
    """Move `message` from `source` into `target` (same inbox). Commits."""
    _check_movable(message, source)
    emptied = _remaining_incoming(source) <= 1
    _relocate(message, source, target)
    what = _describe(message)
    line = f"{actor.name} moved {what} to #{target.display_number}"
    if emptied and source.status != "resolved":
        # Nothing from the customer is left to answer here (the usual "should have joined
        # #41" fix): resolve it rather than leave an empty open conversation behind.
        source.move_to(ConversationStatus.RESOLVED)
        line += "; no customer email is left here, so it is resolved"
    db.session.add(source.activity(line, actor.id))
    db.session.add(
        target.activity(f"{actor.name} moved {what} here from #{source.display_number}", actor.id)
    )
    db.session.commit()
    return target


def split_message(message: Message, source: Conversation, actor: User) -> Conversation:
    """Move `message` into a new open, unassigned conversation in the same inbox. Commits."""
    _check_movable(message, source)
    if _remaining_incoming(source) <= 1:
        raise MoveError("This is the conversation's only email from the customer already.")
    target = new_conversation(
        source.inbox_id, message.contact_id or source.contact_id, message.subject or ""
    )
    db.session.flush()
    _relocate(message, source, target)
    what = _describe(message)
    db.session.add(
        source.activity(f"{actor.name} split {what} off into #{target.display_number}", actor.id)
    )
    db.session.add(
        target.activity(f"{actor.name} split {what} off from #{source.display_number}", actor.id)
    )
    db.session.commit()
    return target
