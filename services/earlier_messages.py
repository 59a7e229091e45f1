"""A long thread's earlier messages, a page at a time: the thread shows its latest emails,
replies and notes (services/workspace.py) behind a button; each press loads the `PAGE` before
the first one shown, with the activity lines among them, and says how many are left. Every
answer stays small however long the thread (490 earlier messages at once were half a
megabyte and 150 ms to draw).

A page is cut where the thread's fold is (workspace._fold_point): after an email, reply or
note, so the activity lines that follow it come with the later messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, case, func, select
from sqlalchemy.orm import selectinload

from extensions import db
from models import Message

PAGE = 50  # emails, replies and notes per press of "earlier messages"


@dataclass(frozen=True)
class EarlierPage:
    messages: list[Message]  # in order, oldest first
    remaining: int  # emails, replies and notes before these, still folded

    @property
    def before(self) -> int | None:
        """What the next press asks for: the messages before the first one of this page."""
        return self.messages[0].id if self.remaining and self.messages else None


# Built once, bound when run (as workspace.py's thread statements): the newest email, reply or
# note beyond the page, which stays folded with everything before it (0 when none is left).
_CONVERSATION, _BEFORE = bindparam("conversation_id"), bindparam("before")
_CUT = func.coalesce(
    select(Message.id)
    .where(
        Message.conversation_id == _CONVERSATION,
        Message.id < _BEFORE,
        Message.direction != "activity",
    )
    .order_by(Message.id.desc())
    .offset(bindparam("page"))
    .limit(1)
    .scalar_subquery(),
    0,
)
_PAGE = (
    select(Message)
    .where(Message.conversation_id == _CONVERSATION, Message.id < _BEFORE, Message.id > _CUT)
    .order_by(Message.id)
    .options(selectinload(Message.attachments))
)
_REMAINING = select(
    func.sum(case(((Message.id <= _CUT) & (Message.direction != "activity"), 1), else_=0))
).where(Message.conversation_id == _CONVERSATION, Message.id < _BEFORE)


def page(conversation_id: int, before: int, size: int = PAGE) -> EarlierPage:
    """The `size` emails, replies and notes before message `before` (with the activity lines
    among them), and how many earlier ones are left."""
    ids = {"conversation_id": conversation_id, "before": before, "page": size}
    messages = list(db.session.scalars(_PAGE, ids))
    remaining = db.session.scalar(_REMAINING, ids) or 0
    return EarlierPage(messages, remaining)
