"""Saved replies (canned answers): who may use and manage which, and filling in their variables.

Three kinds, one table (models/workspace.py `SavedReply`):

- for everyone: `inbox_id` and `owner_id` both NULL, usable in every inbox;
- for one inbox: `inbox_id` set, usable by that inbox's members (and admins);
- personal: `owner_id` set, its agent's alone (nobody else sees it, admins neither).

Admins manage the shared ones; everyone manages their own personal ones. An agent sees the
shared ones of the inboxes they are members of, never another inbox's.

Variables are a small explicit substitution of the names in `VARIABLES`, never a template
engine: a body is the agent's text, and evaluating it (Jinja) would let anyone who can write
a saved reply run template code on the server. Anything else between braces, `{{ config }}`
or `{% if %}` included, stays as typed, so a misspelt variable is visible before sending.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import or_, select

from extensions import db
from models import Conversation, Inbox, SavedReply, User
from services.access import can_view_inbox, visible_inboxes_query

NAME_MAX = 120
BODY_MAX = 20_000

# Scopes as the forms send them: "personal", "everyone", or "inbox:<id>".
PERSONAL, EVERYONE, INBOX_PREFIX = "personal", "everyone", "inbox:"

VARIABLES = {
    "contact.name": "The customer's name (“there” when unknown)",
    "contact.first_name": "The customer's first name (“there” when unknown)",
    "contact.email": "The customer's email address",
    "agent.name": "Your name",
    "agent.first_name": "Your first name",
    "conversation.number": "The conversation's number",
    "conversation.subject": "The conversation's subject",
    "inbox.name": "The inbox's name",
}
NO_NAME = "there"  # "Hi {{contact.first_name}}," reads "Hi there," without a name
NO_SUBJECT = "your message"

# {{contact.name}} with optional spaces inside the braces; only word characters and dots, so
# the pattern never spans two variables or a block like {% ... %}.
_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)\s*\}\}")


class SavedReplyError(ValueError):
    """A change refused for a reason the person can fix (empty name, too long...)."""


class NotAllowed(PermissionError):
    """The user may see the reply (or the scope) but not change it."""


# --- reading --------------------------------------------------------------------------


def _shared_in(inbox_id: int):
    return or_(
        SavedReply.inbox_id == inbox_id,
        (SavedReply.inbox_id.is_(None)) & (SavedReply.owner_id.is_(None)),
    )


def usable_replies(user: User, conversation: Conversation) -> list[SavedReply]:
    """What `user` may insert in `conversation` (which the caller checked they can see):
    the replies for everyone, that inbox's, and their own personal ones, by name."""
    query = (
        select(SavedReply)
        .where(or_(_shared_in(conversation.inbox_id), SavedReply.owner_id == user.id))
        .order_by(SavedReply.name, SavedReply.id)
    )
    return list(db.session.scalars(query))


def usable_reply(user: User, conversation: Conversation, reply_id: int) -> SavedReply | None:
    reply = db.session.get(SavedReply, reply_id)
    if reply is None:
        return None
    if reply.owner_id is not None:
        return reply if reply.owner_id == user.id else None
    if reply.inbox_id is not None and reply.inbox_id != conversation.inbox_id:
        return None
    return reply


def can_see(user: User, reply: SavedReply) -> bool:
    if reply.owner_id is not None:
        return reply.owner_id == user.id
    if reply.inbox_id is not None:
        return can_view_inbox(user, reply.inbox_id)
    return True


def can_manage(user: User, reply: SavedReply) -> bool:
    if reply.owner_id is not None:
        return reply.owner_id == user.id
    return user.is_admin


def visible_reply(user: User, reply_id: int) -> SavedReply | None:
    """The reply if `user` may see it, else None ("not yours" and "not found" are one answer)."""
    reply = db.session.get(SavedReply, reply_id)
    return reply if reply is not None and can_see(user, reply) else None


@dataclass
class Group:
    """One heading of the management page and the replies under it."""

    title: str
    scope: str
    replies: list[SavedReply] = field(default_factory=list)
    manageable: bool = False


def grouped_replies(user: User) -> list[Group]:
    """The management page: for everyone, then each inbox the user sees, then their own."""
    inboxes = list(db.session.scalars(visible_inboxes_query(user)))
    groups = [Group("For everyone, in every inbox", EVERYONE, manageable=user.is_admin)]
    by_inbox = {}
    for inbox in inboxes:
        group = Group(f"{inbox.name} inbox", f"{INBOX_PREFIX}{inbox.id}", manageable=user.is_admin)
        by_inbox[inbox.id] = group
        groups.append(group)
    groups.append(Group("Yours alone", PERSONAL, manageable=True))
    query = (
        select(SavedReply)
        .where(
            or_(
                (SavedReply.inbox_id.is_(None)) & (SavedReply.owner_id.is_(None)),
                SavedReply.inbox_id.in_(list(by_inbox)),
                SavedReply.owner_id == user.id,
            )
        )
        .order_by(SavedReply.name, SavedReply.id)
    )
    for reply in db.session.scalars(query):
        if reply.owner_id is not None:
            groups[-1].replies.append(reply)
        elif reply.inbox_id is not None:
            by_inbox[reply.inbox_id].replies.append(reply)
        else:
            groups[0].replies.append(reply)
    return groups


def scope_of(reply: SavedReply) -> str:
    if reply.owner_id is not None:
        return PERSONAL
    if reply.inbox_id is not None:
        return f"{INBOX_PREFIX}{reply.inbox_id}"
    return EVERYONE


def scope_choices(user: User) -> list[tuple[str, str]]:
    """Where `user` may put a reply: agents only their own; admins anywhere."""
    choices = [(PERSONAL, "Only me (personal)")]
    if user.is_admin:
        choices.append((EVERYONE, "Everyone, in every inbox"))
        for inbox in db.session.scalars(select(Inbox).order_by(Inbox.name)):
            choices.append((f"{INBOX_PREFIX}{inbox.id}", f"Members of the {inbox.name} inbox"))
    return choices


# --- changing -------------------------------------------------------------------------


def _place(user: User, reply: SavedReply, scope: str) -> None:
    """Put `reply` in `scope`, if `user` may put a reply there."""
    if scope == PERSONAL:
        reply.inbox_id, reply.owner_id = None, user.id
        return
    if not user.is_admin:
        raise NotAllowed("only admins can share saved replies; yours stay personal")
    if scope == EVERYONE:
        reply.inbox_id, reply.owner_id = None, None
        return
    inbox_id = scope.removeprefix(INBOX_PREFIX)
    if not scope.startswith(INBOX_PREFIX) or not inbox_id.isdigit():
        raise SavedReplyError("choose who can use this reply from the list")
    if db.session.get(Inbox, int(inbox_id)) is None:
        raise SavedReplyError("that inbox no longer exists; choose another")
    reply.inbox_id, reply.owner_id = int(inbox_id), None


def _fill(reply: SavedReply, name: str, body: str) -> None:
    name = (name or "").strip()
    body = (body or "").replace("\r\n", "\n").replace("\r", "\n").strip()  # forms send CRLF
    if not name:
        raise SavedReplyError("the name is empty")
    if len(name) > NAME_MAX:
        raise SavedReplyError(f"the name is longer than {NAME_MAX} characters")
    if not body:
        raise SavedReplyError("the text is empty")
    if len(body) > BODY_MAX:
        raise SavedReplyError(f"the text is longer than {BODY_MAX} characters")
    reply.name, reply.body = name, body


def create_reply(user: User, name: str, body: str, scope: str = PERSONAL) -> SavedReply:
    reply = SavedReply()
    _fill(reply, name, body)
    _place(user, reply, scope)
    db.session.add(reply)
    db.session.commit()
    return reply


def update_reply(user: User, reply: SavedReply, name: str, body: str, scope: str) -> SavedReply:
    if not can_manage(user, reply):
        raise NotAllowed("only admins can change shared saved replies")
    _fill(reply, name, body)
    _place(user, reply, scope)
    db.session.commit()
    return reply


def delete_reply(user: User, reply: SavedReply) -> None:
    if not can_manage(user, reply):
        raise NotAllowed("only admins can delete shared saved replies")
    db.session.delete(reply)
    db.session.commit()


# --- variables ------------------------------------------------------------------------


def _first_word(name: str) -> str:
    return name.split()[0] if name.split() else ""


def _person_name(name: str | None) -> str:
    """A name worth greeting: empty when unknown or when it is only an address."""
    name = (name or "").strip().strip('"').strip()
    return "" if "@" in name else name


def variable_values(user: User, conversation: Conversation) -> dict[str, str]:
    contact = conversation.contact
    contact_name = _person_name(contact.name if contact else "")
    agent_name = _person_name(user.name)
    return {
        "contact.name": contact_name or NO_NAME,
        "contact.first_name": _first_word(contact_name) or NO_NAME,
        "contact.email": contact.email if contact else "",
        "agent.name": agent_name or user.email,
        "agent.first_name": _first_word(agent_name) or agent_name or user.email,
        "conversation.number": str(conversation.display_number),
        "conversation.subject": (conversation.subject or "").strip() or NO_SUBJECT,
        "inbox.name": conversation.inbox.name if conversation.inbox else "",
    }


def render_text(body: str, values: dict[str, str]) -> str:
    """`body` with each known variable replaced by its value, in one pass (a value that
    itself looks like a variable is not expanded again); unknown ones stay as typed."""

    def replace(match: re.Match) -> str:
        value = values.get(match.group(1).lower())
        return match.group(0) if value is None else value

    return _VARIABLE.sub(replace, body)


def render_reply(reply: SavedReply, user: User, conversation: Conversation) -> str:
    return render_text(reply.body, variable_values(user, conversation))
