"""The people on a conversation besides its contact (models.conversations.Participant).

Two kinds, kept apart on purpose:
- `cc`: someone the customer wrote to or copied. Every delivered email adds the people on it
  (its From when not the contact, its To and Cc), so reply-all keeps everyone in the loop.
- `third_party`: someone an agent forwarded the conversation to (services/forwards.py). Their
  answers come back through their own reply+<token>@ address and are marked as theirs, and a
  reply to them never copies the customer.

Our own addresses (services/routing.OurAddresses) are never participants: mail to them would
loop back into the inbox.
"""

from __future__ import annotations

from sqlalchemy import bindparam, event, select
from sqlalchemy.orm import Session

from extensions import db, get_settings
from mail.addresses import is_email_address, normalise
from mail.model import ParsedEmail, Person
from models import Contact, Conversation, Message
from models.conversations import Participant, new_conversation_token
from models.enums import ParticipantRole

CC, THIRD_PARTY = ParticipantRole.CC.value, ParticipantRole.THIRD_PARTY.value


_OF = select(Participant).where(Participant.conversation_id == bindparam("conversation_id"))
_OF = _OF.order_by(Participant.id)
_READ = "participants.of"  # the session's memo: conversation id -> its participants


def of(conversation_id: int) -> list[Participant]:
    """The conversation's participants, in the order they joined. Read once per session
    while nothing is written: a thread page asks twice (the composer's reply-all and the
    contact panel); any flush, commit, rollback or UPDATE/DELETE statement forgets it."""
    session = db.session()
    known = session.info.setdefault(_READ, {})
    if conversation_id in known and session._is_clean():
        return list(known[conversation_id])
    found = list(session.scalars(_OF, {"conversation_id": conversation_id}))
    known[conversation_id] = found
    return list(found)


def _forget(session, *_args) -> None:
    session.info.pop(_READ, None)


for _name in ("after_flush", "after_commit", "after_rollback", "after_soft_rollback"):
    event.listen(Session, _name, _forget)


@event.listens_for(Session, "do_orm_execute")
def _forget_on_write(state) -> None:
    if not state.is_select:
        _forget(state.session)


def find(conversation_id: int, email: str) -> Participant | None:
    return db.session.scalar(
        select(Participant).where(
            Participant.conversation_id == conversation_id,
            Participant.email == normalise(email),
        )
    )


def add(conversation: Conversation, person: Person, role: str = CC) -> Participant:
    """The participant for `person` on `conversation`: the existing one (its name filled in
    when it had none; a cc becomes a third party when forwarded to, getting a token), or a
    new one. Once per address and conversation (the table's unique key)."""
    email = normalise(person.address)
    found = find(conversation.id, email)
    if found is None:
        found = Participant(
            conversation_id=conversation.id,
            email=email,
            name=(person.name or "")[: Participant.name.type.length],
            role=role,
        )
        db.session.add(found)
    elif person.name and not found.name:
        found.name = person.name[: Participant.name.type.length]
    if role == THIRD_PARTY:
        found.role = THIRD_PARTY
        found.token = found.token or new_conversation_token()
    db.session.flush()
    return found


def on_incoming(
    conversation: Conversation,
    parsed: ParsedEmail,
    sender: Contact,
    routed_to: Participant | None = None,
    ours=None,
) -> Participant | None:
    """Record the people on a delivered email and return who wrote it when that is not the
    conversation's contact (the message's `participant_id`), else None.

    `sender` is the Contact the email came from; `routed_to` the third party whose reply+
    address it was sent to (services/routing.Route.participant). A third party's email adds
    nobody: whoever they copied is on their side, not the customer's, and must not be added
    to the customer's reply-all. `ours`: our addresses (services/routing.OurAddresses), if
    read already."""
    from services.routing import OurAddresses

    contact = normalise(conversation.contact.email)
    writer = routed_to
    if writer is None and normalise(sender.email) != contact:
        writer = find(conversation.id, sender.email)
    if writer is not None and writer.role == THIRD_PARTY:
        return writer
    ours = OurAddresses() if ours is None else ours
    people = ([parsed.from_] if parsed.from_ else []) + list(parsed.to) + list(parsed.cc)
    for person in people:
        address = normalise(person.address)
        if address == contact or address in ours or not is_email_address(address):
            continue
        added = add(conversation, person)
        if writer is None and address == normalise(sender.email):
            writer = added
    if writer is None and normalise(sender.email) != contact and sender.email not in ours:
        writer = add(conversation, Person(sender.email, sender.name))  # wrote via Reply-To
    return writer


def on_outgoing(conversation: Conversation, addresses: list[str]) -> None:
    """The people an agent wrote to or copied on a reply to the customer's side join it
    (cc), so the next reply-all keeps them: not the contact, not ours, and a third party
    stays one."""
    from services.routing import OurAddresses

    contact = normalise(conversation.contact.email)
    wanted = [a for a in dict.fromkeys(normalise(a) for a in addresses) if a != contact]
    ours = OurAddresses() if wanted else ()
    for address in wanted:
        if address not in ours and is_email_address(address):
            add(conversation, Person(address, ""))


def is_third_party(message: Message) -> bool:
    """Written by (incoming) or sent to (outgoing) a third party, not the customer."""
    participant = participant_of(message)
    return participant is not None and participant.role == THIRD_PARTY


def participant_of(message: Message) -> Participant | None:
    if message.participant_id is None:
        return None
    return db.session.get(Participant, message.participant_id)


def third_party_for(conversation: Conversation, addresses: list[str]) -> Participant | None:
    """The third party a reply is for when every To address is a third party of the
    conversation (the first of them), else None: the reply goes the customer's way."""
    found = [find(conversation.id, a) for a in addresses]
    if not found or any(p is None or p.role != THIRD_PARTY for p in found):
        return None
    return found[0]


def reply_address(participant: Participant) -> str | None:
    """reply+<token>@<inbound domain>: where the third party's answers come back."""
    domain = get_settings().inbound_domain
    return f"reply+{participant.token}@{domain}" if domain and participant.token else None


def latest_from(conversation_id: int, participant_id: int, before_id: int) -> Message | None:
    """The third party's latest email before `before_id`: what our answer to them threads
    under (never the customer's)."""
    return db.session.scalar(
        select(Message)
        .where(
            Message.conversation_id == conversation_id,
            Message.direction == "incoming",
            Message.participant_id == participant_id,
            Message.id < before_id,
            Message.message_id.is_not(None),
        )
        .order_by(Message.id.desc())
        .limit(1)
    )


def reply_all(conversation: Conversation, latest: Message | None) -> tuple[str, list[str]]:
    """Reply-all from the latest incoming email: To is who wrote it (the contact or a
    participant), CC the contact and the cc participants, minus To and our own addresses.
    A third party's email is answered to them alone: the customer is never added by itself."""
    from services.routing import OurAddresses

    contact = normalise(conversation.contact.email)
    writer = participant_of(latest) if latest is not None else None
    if writer is not None and writer.role == THIRD_PARTY:
        return writer.email, []
    to = writer.email if writer is not None else contact
    others = [contact] + [p.email for p in of(conversation.id) if p.role == CC]
    if latest is not None and writer is None and not others[1:]:
        # Emails from before participants were recorded: the people on the latest one.
        others += [normalise(p.address) for p in [*latest.to_addresses, *latest.cc_addresses]]
    # The inbox's own address and the inbound domain go without a query; the rest of ours
    # (other inboxes, aliases) is read only when someone is left to check.
    inbox, domain = conversation.inbox, (get_settings().inbound_domain or "").lower()
    cheap = {normalise(inbox.support_address), to}
    left = [
        a
        for a in dict.fromkeys(others)
        if a not in cheap and is_email_address(a) and not (domain and a.endswith("@" + domain))
    ]
    ours = OurAddresses() if left else ()
    cc = [address for address in left if address not in ours]
    return to, cc


def name_for(conversation: Conversation, address: str) -> str:
    """How the composer names whoever a reply goes to: the contact's or participant's name,
    else the address."""
    address = normalise(address or "")
    if not address or address == normalise(conversation.contact.email):
        return conversation.contact.name or conversation.contact.email
    # Among the participants reply-all has just read (services/participants.of), not a query.
    found = next((p for p in of(conversation.id) if p.email == address), None)
    return (found.name if found else "") or address
