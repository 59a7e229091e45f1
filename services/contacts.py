"""Who the customer is: the contact panel beside a thread (name, address, the other people on
the conversation, earlier conversations, the team's notes) and editing a contact's name and
notes."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import bindparam, func, select

from extensions import db, get_settings
from mail.addresses import normalise
from mail.model import Person
from models import Contact, Conversation, Inbox, InboxMember, Message, User
from models.enums import ParticipantRole
from services import participants as conversation_participants
from services.access import visible_inboxes_query
from services.routing import OurAddresses

NAME_MAX = 255  # Contact.name's column
NOTES_MAX = 10_000
PANEL_CONVERSATIONS = 5  # earlier conversations listed beside a thread; the contact page has all


class ContactError(ValueError):
    """A change the service refused; `field` names the form field to show it beside."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass
class Participant:
    name: str
    address: str
    third_party: bool = False  # forwarded to by an agent, not copied by the customer


@dataclass
class ContactPanel:
    contact: Contact
    participants: list[Participant] = field(default_factory=list)
    # Newest first, at most 5: rows with a conversation's id, display_number, subject, status,
    # inbox_id and last_activity_at (read-only: no ORM object to build for them).
    earlier: list = field(default_factory=list)
    earlier_total: int = 0  # every other conversation the user may see
    inbox_names: dict[int, str] = field(default_factory=dict)


def contact_panel(user: User, conversation: Conversation) -> ContactPanel:
    """What the panel beside `conversation` shows to `user` (three queries, whatever the
    thread's or the contact's size)."""
    contact = conversation.contact
    return ContactPanel(
        contact=contact,
        participants=participants(conversation, contact),
        **_earlier_conversations(user, conversation),
    )


# The panel's statements, built once (every thread page runs them; building a select cost
# about as much as running these). Each distinct header triple once (a long thread repeats the
# same few), first seen first.
_HEADER_COLUMNS = (
    Message.from_address,
    Message.from_name,
    Message.to_addresses,
    Message.cc_addresses,
)
_HEADERS = (
    select(*_HEADER_COLUMNS)
    .where(
        Message.conversation_id == bindparam("conversation_id"),
        Message.direction.in_(("incoming", "outgoing")),
    )
    .group_by(*_HEADER_COLUMNS)
    .order_by(func.min(Message.id))
)
_EARLIER = (
    select(
        Conversation.id,
        Conversation.display_number,
        Conversation.subject,
        Conversation.status,
        Conversation.inbox_id,
        Conversation.last_activity_at,
        Inbox.name.label("inbox_name"),
        func.count().over().label("total"),
    )
    .join(Inbox, Inbox.id == Conversation.inbox_id)
    .where(
        Conversation.contact_id == bindparam("contact_id"),
        Conversation.id != bindparam("conversation_id"),
    )
    .order_by(Conversation.last_activity_at.desc(), Conversation.id.desc())
    .limit(PANEL_CONVERSATIONS)
)
_EARLIER_FOR_MEMBER = _EARLIER.where(  # an agent: only the inboxes they are a member of
    Conversation.inbox_id.in_(
        select(InboxMember.inbox_id).where(InboxMember.user_id == bindparam("user_id"))
    )
)


def participants(conversation: Conversation, contact: Contact) -> list[Participant]:
    """Everyone else on the conversation: its recorded participants (services/participants.py:
    those the customer copied, third parties it was forwarded to), in the order they joined.
    A conversation from before they were recorded has none: then the people on its emails."""
    recorded = [
        Participant(p.name, p.email, p.role == ParticipantRole.THIRD_PARTY)
        for p in conversation_participants.of(conversation.id)
    ]
    return recorded or _on_its_emails(conversation, contact)


def _on_its_emails(conversation: Conversation, contact: Contact) -> list[Participant]:
    """Everyone else on the conversation's emails (From, To, Cc of every email in and out),
    less the contact and the inbox's own addresses, in order of first appearance."""
    rows = db.session.execute(_HEADERS, {"conversation_id": conversation.id}).all()
    # The contact, the inbox's own address and the inbound domain go without a query; the
    # rest of ours (other inboxes, aliases) is read only when someone is left to check.
    domain = "@" + (get_settings().inbound_domain or "").lower()
    skip = {normalise(contact.email), normalise(conversation.inbox.support_address)}
    found: dict[str, Participant] = {}
    for row in rows:
        sender = [Person(row.from_address, row.from_name)] if row.from_address else []
        for person in [*sender, *row.to_addresses, *row.cc_addresses]:
            name, address = person.name, person.address
            normal = normalise(address)
            if normal in skip or (domain != "@" and normal.endswith(domain)):
                continue
            known = found.get(address)
            if known is None:
                found[address] = Participant(name=name, address=address)
            elif name and not known.name:
                known.name = name
    ours = OurAddresses() if found else ()
    return [p for p in found.values() if p.address not in ours]  # a colleague's inbox on Cc


def _earlier_conversations(user: User, conversation: Conversation) -> dict:
    ids = {"contact_id": conversation.contact_id, "conversation_id": conversation.id}
    if user.is_admin:
        rows = db.session.execute(_EARLIER, ids).all()
    else:
        rows = db.session.execute(_EARLIER_FOR_MEMBER, {**ids, "user_id": user.id}).all()
    return {
        "earlier": rows,
        "earlier_total": rows[0].total if rows else 0,
        "inbox_names": {row.inbox_id: row.inbox_name for row in rows},
    }


def update_contact(contact: Contact, *, name: str | None = None, notes: str | None = None) -> None:
    """Change the name and/or the notes (None: leave as is); whitespace is tidied, an empty
    name means "show the address"."""
    if name is not None:
        name = " ".join(name.split())
        if len(name) > NAME_MAX:
            raise ContactError("name", f"A name has at most {NAME_MAX} characters.")
        contact.name = name
    if notes is not None:
        notes = notes.replace("\r\n", "\n").strip()
        if len(notes) > NOTES_MAX:
            raise ContactError("notes", f"Notes have at most {NOTES_MAX:,} characters.")
        contact.notes = notes
    db.session.commit()


def can_see_contact(user: User, contact: Contact) -> bool:
    """Admins see every contact; an agent one with a conversation in an inbox of theirs."""
    if user.is_admin:
        return True
    visible = (
        visible_inboxes_query(user).with_only_columns(Inbox.id).order_by(None).scalar_subquery()
    )
    found = db.session.scalar(
        select(Conversation.id)
        .where(Conversation.contact_id == contact.id, Conversation.inbox_id.in_(visible))
        .limit(1)
    )
    return found is not None
