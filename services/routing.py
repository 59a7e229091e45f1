"""Where an incoming message belongs: its inbox, and the conversation it continues (if any).

A merged conversation's mail goes to the one it was merged into (`surviving`): its
reply+<token>@ address and our Message-IDs (which carry the token) stay valid after a merge.

An archived inbox receives nothing: mail for its addresses, its conversations' reply
addresses or the mailbox it was fetched from gets no inbox and a `refusal` (the bounce reason
the Inbound log shows), so it is bounced, never lost. An active inbox sharing a recipient wins.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, union_all

from extensions import db, get_settings
from mail.addresses import normalise, reply_token
from mail.model import ParsedEmail
from mail.threading import normalise_subject, token_from_message_id
from models import Contact, Conversation, Inbox, InboxAddress, Message
from models.conversations import Participant
from services.inbox_aliases import inbox_ids_for
from services.inbox_archive import refusal

OPEN_FOR_SUBJECT = ("open", "pending", "snoozed")


@dataclass
class Route:
    inbox: Inbox | None
    conversation: Conversation | None = None
    threaded_by: str = "new"
    refusal: str | None = None  # why no inbox takes it (an archived one matched)
    # The third party whose reply+<token>@ address it was sent to (services/participants.py).
    participant: Participant | None = None


def _refused(inbox: Inbox) -> Route:
    return Route(None, refusal=refusal(inbox))


class OurAddresses:
    """Addresses that are Threadline itself: any inbox's support address or alias, or anything at
    the inbound domain (forwarding and reply+ continuity addresses). Mail from there is
    never a customer, a participant or someone to answer automatically. Reads the inboxes
    once: keep one for a whole check."""

    def __init__(self) -> None:
        self.support = {normalise(a) for a in db.session.scalars(_SUPPORT_ADDRESSES) if a}
        self.domain = (get_settings().inbound_domain or "").lower()

    def __contains__(self, address: object) -> bool:
        found = normalise(str(address or ""))
        return found in self.support or bool(self.domain and found.endswith("@" + self.domain))


# Every inbox's support address and aliases (an inbox's aliases are the inbox too): one query.
_SUPPORT_ADDRESSES = union_all(select(Inbox.support_address), select(InboxAddress.address))


def route(parsed: ParsedEmail, inbox_id: int | None = None) -> Route:
    """reply+token first, then the inbox (the one the mail was fetched for, as with IMAP,
    else by address), then header threading inside it."""
    by_token = _conversation_by_reply_token(parsed.recipients)
    if by_token is not None:
        inbox = db.session.get(Inbox, by_token.inbox_id)
        if inbox.archived_at is not None:
            return _refused(inbox)
        return Route(inbox, by_token, "reply_token")
    third_party = _participant_by_reply_token(parsed.recipients)
    if third_party is not None:
        conversation = surviving(db.session.get(Conversation, third_party.conversation_id))
        if conversation.inbox.archived_at is not None:
            return _refused(conversation.inbox)
        return Route(conversation.inbox, conversation, "reply_token", participant=third_party)
    # A bounce is about the message it names: that is its reply-to, whatever its headers say.
    bounced = parsed.bounce.original_message_id if parsed.bounce else None
    known = db.session.get(Inbox, inbox_id) if inbox_id is not None else None
    inbox = known or inbox_for(parsed.recipients)
    if inbox is None and bounced:
        # Bounces may come back to a bare MAILER-DAEMON path: follow the original message.
        conversation = _conversation_by_message_id(None, bounced)
        if conversation is not None:
            if conversation.inbox.archived_at is not None:
                return _refused(conversation.inbox)
            return Route(conversation.inbox, conversation, "in_reply_to")
    if inbox is None:
        return Route(None)
    if inbox.archived_at is not None:
        return _refused(inbox)
    replied_to = ([bounced] if bounced else []) + parsed.in_reply_to
    for rule, ids in (("in_reply_to", replied_to), ("references", parsed.references[::-1])):
        for message_id in ids:
            conversation = _conversation_by_message_id(inbox.id, message_id)
            if conversation is not None:
                return Route(inbox, conversation, rule)
    return Route(inbox)


def inbox_for(recipients: list[str]) -> Inbox | None:
    """The inbox a recipient names (its support address, an alias or its forwarding address):
    an active one first, else an archived one (which `route` refuses with its reason)."""
    domain = get_settings().inbound_domain
    wanted = {normalise(address) for address in recipients}
    if not wanted:
        return None
    by_alias = inbox_ids_for(wanted)
    query = select(Inbox).order_by(Inbox.archived_at.is_not(None), Inbox.id)
    for inbox in db.session.scalars(query):
        if normalise(inbox.support_address) in wanted or inbox.id in by_alias:
            return inbox
        if domain and normalise(inbox.forwarding_address(domain)) in wanted:
            return inbox
    return None


def conversation_by_subject(inbox: Inbox, contact: Contact, subject: str) -> Conversation | None:
    """Same contact, same normalised subject, not resolved: several emails sent before the
    first answer stay one conversation. Off per inbox with subject_threading=False."""
    wanted = normalise_subject(subject)
    if not inbox.subject_threading or not wanted:
        return None
    candidates = db.session.scalars(
        select(Conversation)
        .where(
            Conversation.inbox_id == inbox.id,
            Conversation.contact_id == contact.id,
            Conversation.status.in_(OPEN_FOR_SUBJECT),
            Conversation.merged_into_id.is_(None),  # a merged one is empty, even if reopened
        )
        .order_by(Conversation.last_activity_at.desc())
        .limit(50)
    )
    return next((c for c in candidates if normalise_subject(c.subject) == wanted), None)


def _conversation_by_reply_token(recipients: list[str]) -> Conversation | None:
    domain = get_settings().inbound_domain
    for address in recipients:
        token = reply_token(address, domain)
        if token:
            found = _conversation_by_token(token)
            if found is not None:
                return found
    return None


def _participant_by_reply_token(recipients: list[str]) -> Participant | None:
    """A forward's reply+<token>@ address names its third party (services/forwards.py)."""
    domain = get_settings().inbound_domain
    for address in recipients:
        token = reply_token(address, domain)
        found = token and db.session.scalar(select(Participant).where(Participant.token == token))
        if found:
            return found
    return None


def _conversation_by_token(token: str) -> Conversation | None:
    found = db.session.scalar(select(Conversation).where(Conversation.token == token))
    return surviving(found)


MAX_MERGE_HOPS = 20  # merges shorten chains as they go (services/merge.py); this is a guard


def surviving(conversation: Conversation | None) -> Conversation | None:
    """Where mail for `conversation` goes: itself, or, once it was merged into another, the
    conversation it lives on in (following merges of merges)."""
    for _ in range(MAX_MERGE_HOPS):
        if conversation is None or conversation.merged_into_id is None:
            return conversation
        conversation = db.session.get(Conversation, conversation.merged_into_id)
    return conversation


def _conversation_by_message_id(inbox_id: int | None, message_id: str) -> Conversation | None:
    """Our own outgoing ids resolve by their token without a lookup; others by the index."""
    token = token_from_message_id(message_id)
    if token:
        found = _conversation_by_token(token)
        if found is not None and (inbox_id is None or found.inbox_id == inbox_id):
            return found
    query = select(Message.conversation_id).where(Message.message_id == message_id)
    if inbox_id is not None:
        query = query.where(Message.inbox_id == inbox_id)
    conversation_id = db.session.scalar(query.limit(1))
    return surviving(db.session.get(Conversation, conversation_id)) if conversation_id else None
