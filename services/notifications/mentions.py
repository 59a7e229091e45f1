"""@mentions in notes: "@" followed by a person's name as Threadline shows it ("@Ana Agent"),
in any letter case, ending where a word ends. The people one can mention in a conversation
are those who can see it: its inbox's active members and the admins."""

from __future__ import annotations

from collections.abc import Iterable

from markupsafe import Markup, escape
from sqlalchemy import or_, select

from extensions import db
from models import Conversation, InboxMember, User
from models.enums import Role


def mentionable(conversation: Conversation) -> list[User]:
    """The people who can see the conversation, by name."""
    members = select(InboxMember.user_id).where(InboxMember.inbox_id == conversation.inbox_id)
    return list(
        db.session.scalars(
            select(User)
            .where(User.active.is_(True), or_(User.role == Role.ADMIN, User.id.in_(members)))
            .order_by(User.name, User.id)
        )
    )


def _spans(text: str, people: Iterable[User]) -> list[tuple[int, int, User]]:
    """(start, end, person) of every mention, the longest name winning where names share a
    beginning ("@Ana" and "@Ana Agent")."""
    by_length = sorted((p for p in people if p.name), key=lambda p: len(p.name), reverse=True)
    lowered, found, at = text.lower(), [], text.find("@")
    while at != -1:
        if at == 0 or not text[at - 1].isalnum():
            for person in by_length:
                name = person.name.lower()
                end = at + 1 + len(name)
                if lowered.startswith(name, at + 1) and (end == len(text) or not _word(text[end])):
                    found.append((at, end, person))
                    break
        at = text.find("@", at + 1)
    return found


def _word(char: str) -> bool:
    return char.isalnum() or char == "_"


def mentioned(text: str, conversation: Conversation) -> list[User]:
    """The people a note's text mentions, each once, in the order first mentioned."""
    seen: dict[int, User] = {}
    for _, _, person in _spans(text or "", mentionable(conversation)):
        seen.setdefault(person.id, person)
    return list(seen.values())


def highlight(text: str, people: Iterable[User]) -> Markup:
    """The text, escaped, with each mention of `people` in <mark class="mention">."""
    text = text or ""
    out, last = [], 0
    for start, end, _ in _spans(text, people):
        out.append(escape(text[last:start]))
        out.append(Markup('<mark class="mention">{}</mark>').format(text[start:end]))
        last = end
    out.append(escape(text[last:]))
    return Markup("").join(out)
