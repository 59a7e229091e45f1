"""Labels on conversations: set them (creating new labels on the fly) and read them back.

Callers check that the user may see the conversation's inbox first (services/access.py).
Label names are case-insensitive: "Urgent" and "urgent" are one label, shown with the
spelling it was first created with.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import bindparam, exists, select
from sqlalchemy.exc import IntegrityError

from extensions import db
from models import Conversation, ConversationLabel, Label, User
from services.access import MEMBER_INBOX_IDS
from services.conversations import ConversationError, acting

MAX_NAME = 40
MAX_LABELS = 20  # per conversation


class LabelError(ConversationError):
    """A label name or list that cannot be accepted (field "labels")."""

    def __init__(self, message: str):
        super().__init__("labels", message)


def split_names(text: str) -> list[str]:
    """ "billing, urgent" from a form field into ["billing", "urgent"]; blanks dropped."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def clean_names(names: Iterable[str]) -> list[str]:
    """Validated display names, duplicates (ignoring case) dropped, order kept."""
    if isinstance(names, str) or not isinstance(names, Iterable):
        raise LabelError("labels must be a list of label names")
    seen, cleaned = set(), []
    for raw in names:
        if not isinstance(raw, str):
            raise LabelError("labels must be a list of label names (strings)")
        name = " ".join(raw.split())
        if not name:
            raise LabelError("a label name cannot be empty")
        if len(name) > MAX_NAME:
            raise LabelError(
                f"label “{name[:MAX_NAME]}…” is too long: at most {MAX_NAME} characters"
            )
        if "," in name:
            raise LabelError(f"label “{name}” contains a comma; commas separate labels")
        if name.casefold() not in seen:
            seen.add(name.casefold())
            cleaned.append(name)
    if len(cleaned) > MAX_LABELS:
        raise LabelError(f"at most {MAX_LABELS} labels per conversation")
    return cleaned


def key(name: str) -> str:
    return " ".join(name.split()).lower()


def get_or_create_label(name: str) -> Label:
    """The label with this name (any case), created when new. Two agents creating the same
    new label at once: the loser's insert fails on the unique name and it reads the winner's."""
    found = db.session.scalar(select(Label).where(Label.name == key(name)))
    if found is not None:
        return found
    label = Label(name=key(name), display_name=name)
    try:
        with db.session.begin_nested():
            db.session.add(label)
    except IntegrityError:
        return db.session.scalar(select(Label).where(Label.name == key(name)))
    return label


def conversation_labels(conversation_id: int) -> list[Label]:
    return labels_for([conversation_id]).get(conversation_id, [])


_LABELS_FOR = (  # built once: every list page and thread runs it
    select(ConversationLabel.conversation_id, Label)
    .join(Label, Label.id == ConversationLabel.label_id)
    .where(ConversationLabel.conversation_id.in_(bindparam("ids", expanding=True)))
    .order_by(Label.name)
)


def labels_for(conversation_ids: list[int]) -> dict[int, list[Label]]:
    """Each conversation's labels, alphabetical, in one query."""
    if not conversation_ids:
        return {}
    rows = db.session.execute(_LABELS_FOR, {"ids": list(conversation_ids)}).all()
    found: dict[int, list[Label]] = {}
    for conversation_id, label in rows:
        found.setdefault(conversation_id, []).append(label)
    return found


_ALL_LABELS = select(Label).order_by(Label.name)  # built once, bound when run
_MEMBER_LABELS = _ALL_LABELS.where(
    exists().where(
        ConversationLabel.label_id == Label.id,
        Conversation.id == ConversationLabel.conversation_id,
        Conversation.inbox_id.in_(MEMBER_INBOX_IDS),
    )
)


def labels_visible_to(user: User) -> list[Label]:
    """The labels this user may see, alphabetical: every label for an admin; for an agent only
    those on at least one conversation of an inbox they can see. Labels are one list for the
    whole deployment, so this is what keeps inbox A's label names from agents of inbox B. The
    sidebar, the list's label filter and GET /api/v1/labels all read it; one query (EXISTS
    over conversation_labels joined to conversations, on the label's index)."""
    if user.is_admin:
        return list(db.session.scalars(_ALL_LABELS))
    return list(db.session.scalars(_MEMBER_LABELS, {"user_id": user.id}))


def set_labels(
    conversation: Conversation,
    actor: User | None,
    names: Iterable[str],
    *,
    commit: bool = True,
    by: str | None = None,
) -> list[Label]:
    """Make the conversation's labels exactly `names`; returns them (alphabetical).
    `commit=False` leaves the commit to a caller changing several (services/bulk_actions.py).
    `by`: who the activity lines name when no user acts (an automation rule), as in
    services/conversations.py `update_conversation`.

    Validates everything before changing anything; adds one activity line for what was
    added ("Ana labelled this billing, urgent") and one for what was removed."""
    wanted = clean_names(names)
    who, actor_id = acting(actor, by)
    current = {label.name: label for label in conversation_labels(conversation.id)}
    wanted_keys = {key(name) for name in wanted}
    added = [get_or_create_label(name) for name in wanted if key(name) not in current]
    removed = [label for name, label in current.items() if name not in wanted_keys]

    for label in added:
        db.session.add(ConversationLabel(conversation_id=conversation.id, label_id=label.id))
    if removed:
        db.session.execute(
            ConversationLabel.__table__.delete().where(
                ConversationLabel.conversation_id == conversation.id,
                ConversationLabel.label_id.in_([label.id for label in removed]),
            )
        )
    lines = []
    if added:
        lines.append(f"{who} labelled this {', '.join(x.display_name for x in added)}")
    if removed:
        noun = "label" if len(removed) == 1 else "labels"
        names_removed = ", ".join(label.display_name for label in removed)
        lines.append(f"{who} removed the {noun} {names_removed}")
    db.session.add_all(conversation.activity(line, actor_id) for line in lines)
    if commit:
        db.session.commit()
    else:
        db.session.flush()
    return conversation_labels(conversation.id)
