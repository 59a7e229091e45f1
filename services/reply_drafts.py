"""The composer as each agent left it, one draft per agent and conversation (ReplyDraft).

The composer saves as the agent types (blueprints/conversations/drafts.py), the thread draws
the composer from the draft (a reload or another device finds it), sending deletes it, and
colleagues see who is drafting (`drafters`, shown by _viewers.html). Reading never writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, delete, select
from sqlalchemy.exc import IntegrityError

from extensions import db
from models import ReplyDraft, User, utcnow

KINDS = ("reply", "note")
MAX_TEXT = 100_000  # a draft longer than this is cut, never refused (it is a courtesy copy)
MAX_ADDRESSES = 2_000
ACTIVE = timedelta(minutes=2)  # typed within this: "is drafting", else "has an unsent draft"


@dataclass(frozen=True)
class Drafter:
    user: User
    kind: str
    active: bool  # saved within ACTIVE


def get(conversation_id: int, user_id: int) -> ReplyDraft | None:
    return db.session.scalar(
        select(ReplyDraft).where(
            ReplyDraft.conversation_id == conversation_id, ReplyDraft.user_id == user_id
        )
    )


def save(
    conversation_id: int,
    user_id: int,
    *,
    kind: str = "reply",
    text: str = "",
    to: str = "",
    cc: str = "",
    bcc: str = "",
) -> ReplyDraft | None:
    """Keep what the composer holds now. An empty composer deletes the draft (None): nothing
    is left to come back to, and colleagues stop seeing "is drafting"."""
    kind = kind if kind in KINDS else "reply"
    values = {
        "kind": kind,
        "text": (text or "")[:MAX_TEXT],
        "to": (to or "").strip()[:MAX_ADDRESSES],
        "cc": (cc or "").strip()[:MAX_ADDRESSES],
        "bcc": (bcc or "").strip()[:MAX_ADDRESSES],
    }
    if not values["text"].strip():
        delete_for(conversation_id, user_id)
        return None
    draft = get(conversation_id, user_id)
    if draft is None:
        draft = ReplyDraft(conversation_id=conversation_id, user_id=user_id, **values)
        db.session.add(draft)
        try:
            db.session.commit()
            return draft
        except IntegrityError:  # the same agent's other tab saved first: update that one
            db.session.rollback()
            draft = get(conversation_id, user_id)
            if draft is None:
                raise
    for name, value in values.items():
        setattr(draft, name, value)
    draft.updated_at = utcnow()
    db.session.commit()
    return draft


def delete_for(conversation_id: int, user_id: int, *, commit: bool = True) -> None:
    """The reply or note was sent (or the agent emptied the composer)."""
    db.session.execute(
        delete(ReplyDraft).where(
            ReplyDraft.conversation_id == conversation_id, ReplyDraft.user_id == user_id
        )
    )
    if commit:
        db.session.commit()


@dataclass(frozen=True)
class Drafts:
    """Every active agent's draft on one conversation, read in one query (on_conversation):
    the thread draws the agent's own in the composer and names the colleagues drafting."""

    rows: list[tuple[ReplyDraft, User]]

    def of(self, user_id: int) -> ReplyDraft | None:
        return next((draft for draft, user in self.rows if user.id == user_id), None)

    def drafters(self, excluding: User | None = None) -> list[Drafter]:
        """Colleagues with an unsent draft here, by name."""
        since = utcnow() - ACTIVE
        out = []
        for draft, user in self.rows:
            if excluding is not None and user.id == excluding.id:
                continue
            updated = draft.updated_at
            if updated.tzinfo is None and since.tzinfo is not None:
                updated = updated.replace(tzinfo=since.tzinfo)
            out.append(Drafter(user, draft.kind, updated >= since))
        return out


_ON_CONVERSATION = (  # built once: every thread page runs it
    select(ReplyDraft, User)
    .join(User, User.id == ReplyDraft.user_id)
    .where(ReplyDraft.conversation_id == bindparam("conversation_id"), User.active)
    .order_by(User.name)
)


def on_conversation(conversation_id: int) -> Drafts:
    rows = db.session.execute(_ON_CONVERSATION, {"conversation_id": conversation_id})
    return Drafts([(draft, user) for draft, user in rows])


def drafters(conversation_id: int, excluding: User | None = None) -> list[Drafter]:
    """Colleagues with an unsent draft on this conversation, by name (active agents only)."""
    return on_conversation(conversation_id).drafters(excluding)
