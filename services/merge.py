"""Merge two conversations of one inbox: everything of the merged one moves into the survivor.

Messages move with their attachments, notes and activity lines (a merge is one UPDATE of
their conversation_id), and keep their Message-IDs: a customer answering an old email is
threaded by In-Reply-To/References into wherever the email is now, like a moved email
(services/message_moves.py). The merged conversation keeps its row, resolved, with
`merged_into_id` naming the survivor: mail to its reply+<token>@ address (or naming one of
our Message-IDs, which carry the token) is routed on to the survivor by services/routing.py.
What else hangs off the merged one follows: notifications, the notification emails' thread
state, drafts and labels. Both conversations get an activity line saying who merged what.

Callers check that the user may see both conversations first (services/access.py;
`find_survivor` does for a typed "#42"). A MergeError is raised before anything changes.
"""

from __future__ import annotations

from sqlalchemy import func, select, update

from extensions import db
from models import (
    Conversation,
    Message,
    Notification,
    NotificationThread,
    Participant,
    ReplyDraft,
    User,
    utcnow,
)
from models.enums import ConversationStatus, Direction
from services.conversations import ConversationError
from services.labels import MAX_LABELS, conversation_labels, set_labels
from services.message_moves import MoveError, conversation_numbered


class MergeError(ConversationError):
    def __init__(self, message: str):
        super().__init__("into", message)


def find_survivor(actor: User, reference: str) -> Conversation:
    """The conversation an agent typed ("#42" or "42") to merge into, among their inboxes."""
    try:
        return conversation_numbered(actor, reference, "merge into")
    except MoveError as exc:
        raise MergeError(str(exc)) from None


def check(source: Conversation, survivor: Conversation) -> None:
    """Why `source` cannot be merged into `survivor`, as a MergeError saying what to do."""
    number, into = source.display_number, survivor.display_number
    if survivor.id == source.id:
        raise MergeError(
            f"#{number} cannot be merged into itself: give the number of the other conversation."
        )
    if source.inbox_id != survivor.inbox_id:
        raise MergeError(
            f"#{into} is in {survivor.inbox.name} and #{number} in {source.inbox.name}: only "
            "conversations of the same inbox can be merged."
        )
    for merged in (source, survivor):
        if merged.merged_into_id is not None:
            now_in = db.session.get(Conversation, merged.merged_into_id).display_number
            raise MergeError(
                f"#{merged.display_number} was already merged into #{now_in}: "
                f"use #{now_in} instead."
            )


def merge(
    source: Conversation, survivor: Conversation, actor: User, *, commit: bool = True
) -> Conversation:
    """Merge `source` into `survivor` (same inbox); returns the survivor. `commit=False`
    leaves the commit to a caller merging several (services/bulk_actions.py)."""
    check(source, survivor)
    written = db.session.scalar(
        select(func.count(Message.id)).where(
            Message.conversation_id == source.id, Message.direction != Direction.ACTIVITY
        )
    )
    db.session.execute(
        update(Message)
        .where(Message.conversation_id == source.id)
        .values(conversation_id=survivor.id)
        .execution_options(synchronize_session="fetch")
    )
    # Earlier merges into the source now lead straight to the survivor (routing also
    # follows a chain, but one step is enough from here on).
    db.session.execute(
        update(Conversation)
        .where(Conversation.merged_into_id == source.id)
        .values(merged_into_id=survivor.id)
        .execution_options(synchronize_session="fetch")
    )
    db.session.execute(
        update(Notification)
        .where(Notification.conversation_id == source.id)
        .values(conversation_id=survivor.id)
        .execution_options(synchronize_session="fetch")
    )
    _follow(NotificationThread, source, survivor, _fold_notification_thread)
    _follow(ReplyDraft, source, survivor, _fold_draft)
    _move_participants(source, survivor)
    _add_labels(source, survivor, actor)

    open_ = ConversationStatus.OPEN
    reopened = source.status == open_ and survivor.status != open_
    if reopened:  # the merged one still waited for an answer: so does the survivor now
        survivor.reopen()
    if source.status != ConversationStatus.RESOLVED:
        source.move_to(ConversationStatus.RESOLVED)
    source.merged_into_id = survivor.id
    # The survivor has news for whoever read it before (unread again); the merged one
    # only changed status, which does not count as news (services/unread.py).
    survivor.last_activity_at = max(utcnow(), survivor.last_activity_at)
    db.session.expire(source, ["messages"])
    db.session.expire(survivor, ["messages"])

    subject = f"“{(source.subject or '(no subject)')[:80]}”"
    line = f"{actor.name} merged #{source.display_number} {subject} into this conversation"
    line += f" ({written} message{'' if written == 1 else 's'})"
    if reopened:
        line += f"; #{source.display_number} was open, so this one is open again"
    db.session.add(survivor.activity(line, actor.id))
    db.session.add(
        source.activity(
            f"{actor.name} merged this conversation into #{survivor.display_number}", actor.id
        )
    )
    if commit:
        db.session.commit()
    else:
        db.session.flush()
    return survivor


def _follow(model, source: Conversation, survivor: Conversation, fold) -> None:
    """Rows of `model` kept one per (person, conversation) follow the merge: a person with
    none on the survivor takes theirs along; one with both keeps the survivor's, after
    `fold(kept, theirs)` took in what the merged one's held."""
    kept = {
        row.user_id: row
        for row in db.session.scalars(select(model).where(model.conversation_id == survivor.id))
    }
    for row in db.session.scalars(select(model).where(model.conversation_id == source.id)).all():
        if row.user_id in kept:
            fold(kept[row.user_id], row)
            db.session.delete(row)
        else:
            row.conversation_id = survivor.id


def _fold_notification_thread(kept: NotificationThread, theirs: NotificationThread) -> None:
    """Due as soon as either was: the moved notifications go out in its next email."""
    if theirs.due_at is not None:
        kept.due_at = min(kept.due_at or theirs.due_at, theirs.due_at)


def _fold_draft(kept: ReplyDraft, theirs: ReplyDraft) -> None:
    """The merged one's text below the survivor's, so nothing typed is lost."""
    text = theirs.text.strip()
    if text and text not in kept.text:
        kept.text = f"{kept.text.rstrip()}\n\n{text}".strip()


def _move_participants(source: Conversation, survivor: Conversation) -> None:
    """The merged one's participants join the survivor; one the survivor already has (same
    address) is folded into it: their emails point at the survivor's row, which takes over
    a third party's reply token (so their reply+ address keeps working) and role."""
    kept = {
        p.email: p
        for p in db.session.scalars(
            select(Participant).where(Participant.conversation_id == survivor.id)
        )
    }
    for theirs in db.session.scalars(
        select(Participant).where(Participant.conversation_id == source.id)
    ).all():
        same = kept.get(theirs.email)
        if same is None:
            theirs.conversation_id = survivor.id
            continue
        db.session.execute(
            update(Message)
            .where(Message.participant_id == theirs.id)
            .values(participant_id=same.id)
            .execution_options(synchronize_session="fetch")
        )
        token, role, name = theirs.token, theirs.role, theirs.name
        db.session.delete(theirs)
        db.session.flush()  # the token is unique: free it before the survivor's row takes it
        if token and not same.token:
            same.token, same.role = token, role
        same.name = same.name or name


def _add_labels(source: Conversation, survivor: Conversation, actor: User) -> None:
    """The survivor gains the merged one's labels (as far as MAX_LABELS allows), through the
    labels' own service and its activity line; the merged one keeps its own."""
    had = conversation_labels(survivor.id)
    known = {label.name for label in had}
    extra = [label for label in conversation_labels(source.id) if label.name not in known]
    room = MAX_LABELS - len(had)
    if extra and room > 0:
        names = [label.display_name for label in had + extra[:room]]
        set_labels(survivor, actor, names, commit=False)
