"""Conversations, their messages (incoming, outgoing, notes, activity) and attachments."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mail.model import People, Person
from models.base import Base, PeopleType, TimestampMixin, utcnow
from models.enums import ConversationStatus, Direction, ParticipantRole, checks_for, values

if TYPE_CHECKING:
    from models.contacts import Contact
    from models.inboxes import Inbox
    from models.users import User

STATUSES = values(ConversationStatus)


def new_conversation_token() -> str:
    """Continuity token for reply+<token>@domain: 128 random bits, lower-case hex."""
    return secrets.token_hex(16)


class Conversation(TimestampMixin, Base):
    __tablename__ = "conversations"
    __table_args__ = (
        *checks_for("conversations"),
        Index("ix_conversations_status_activity", "status", "last_activity_at"),
        Index("ix_conversations_inbox_status_activity", "inbox_id", "status", "last_activity_at"),
        Index("ix_conversations_contact", "contact_id", "last_activity_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True, default=new_conversation_token)
    # The number agents say out loud ("#42"); one sequence for the whole deployment.
    display_number: Mapped[int] = mapped_column(unique=True)
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default="open")
    subject: Mapped[str] = mapped_column(String(998), default="")
    snoozed_until: Mapped[datetime | None]
    last_activity_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set when this one was merged into another (services/merge.py): its reply address and
    # Message-IDs route there from then on (services/routing.py).
    merged_into_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL"), index=True
    )

    messages: Mapped[list[Message]] = relationship(
        back_populates="conversation", order_by="Message.id", cascade="all, delete-orphan"
    )
    inbox: Mapped[Inbox] = relationship()
    contact: Mapped[Contact] = relationship()
    assignee: Mapped[User | None] = relationship()

    # Its lifecycle: open ⇄ pending ⇄ resolved, or snoozed until a time; every change of
    # status but a snooze ends a snooze.
    def reopen(self) -> None:
        """Back to open (a customer wrote, a message was moved here, a snooze ended)."""
        self.move_to(ConversationStatus.OPEN)

    def snooze(self, until: datetime) -> None:
        self.status, self.snoozed_until = ConversationStatus.SNOOZED, until

    def move_to(self, status: ConversationStatus | str) -> None:
        """open, pending or resolved; use snooze() for snoozed."""
        if status == ConversationStatus.SNOOZED:
            raise ValueError("a snooze needs a time: use snooze(until)")
        self.status, self.snoozed_until = ConversationStatus(status), None

    @property
    def waits_for_a_customer(self) -> bool:
        """Resolved or snoozed: a customer's new message reopens it."""
        return self.status in (ConversationStatus.RESOLVED, ConversationStatus.SNOOZED)

    def activity(self, text: str, actor_id: int | None = None) -> Message:
        """An activity line ("Ana assigned this to Bob") for this thread; the caller adds it."""
        return Message(
            conversation_id=self.id,
            inbox_id=self.inbox_id,
            direction=Direction.ACTIVITY,
            sender_user_id=actor_id,
            text_body=text,
        )

    def __repr__(self) -> str:
        return f"<Conversation #{self.display_number} {self.status}>"


class ConversationRead(Base):
    """When a user last saw a thread; the list shows it unread while last_activity_at is
    newer. No row means never opened (unread)."""

    __tablename__ = "conversation_reads"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    read_at: Mapped[datetime] = mapped_column(default=utcnow)


class Message(TimestampMixin, Base):
    __tablename__ = "messages"
    # One message per (inbox, Message-ID): two forwarding rules or forwarding + IMAP never
    # duplicate. NULL Message-IDs (notes, activity) are distinct on SQLite and PostgreSQL.
    __table_args__ = (
        *checks_for("messages"),
        UniqueConstraint("inbox_id", "message_id"),
        Index("ix_messages_conversation_id", "conversation_id", "id"),
        # The tick that sends replies when due (jobs/sweeps.py send_due_replies).
        Index("ix_messages_delivery_send_after", "delivery_status", "send_after"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(16))
    sender_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    inbound_email_id: Mapped[int | None] = mapped_column(
        ForeignKey("inbound_emails.id", ondelete="SET NULL"), index=True
    )
    message_id: Mapped[str | None] = mapped_column(String(998))  # without angle brackets
    in_reply_to: Mapped[str | None] = mapped_column(String(998))
    references: Mapped[str | None] = mapped_column(Text)  # space-separated, bracketless
    subject: Mapped[str] = mapped_column(String(998), default="")
    # Incoming: the sender's bare address and display name (From, else the contact).
    # Outgoing: the inbox address it went out from ("" for the primary). An automation's
    # note: no address; from_name names the rule.
    from_address: Mapped[str] = mapped_column(String(320), default="")
    from_name: Mapped[str] = mapped_column(String(255), default="")
    # Each header's people, structured ({"name", "address"}: models/base.py PeopleType).
    to_addresses: Mapped[People] = mapped_column(PeopleType, default=People)
    cc_addresses: Mapped[People] = mapped_column(PeopleType, default=People)
    bcc_addresses: Mapped[People] = mapped_column(PeopleType, default=People)
    reply_to: Mapped[People] = mapped_column(PeopleType, default=People)
    # Incoming: who vouches for the sender (mail/sender_trust.py SenderVerdict.to_dict()):
    # DKIM checked here, SPF and DMARC as a trusted server's Authentication-Results say.
    sender_verdict: Mapped[dict | None] = mapped_column(JSON)
    text_body: Mapped[str] = mapped_column(Text, default="")
    html_body: Mapped[str | None] = mapped_column(Text)  # sanitised with nh3 before storing
    quoted_text: Mapped[str] = mapped_column(Text, default="")
    quoted_html: Mapped[str | None] = mapped_column(Text)
    delivery_status: Mapped[str | None] = mapped_column(String(16))
    delivery_error: Mapped[str | None] = mapped_column(Text)
    delivery_attempts: Mapped[int] = mapped_column(default=0)  # also the claim (services/leases.py)
    # While `sending`: renewed by the send job's heartbeat (services/leases.py).
    lease_expires_at: Mapped[datetime | None]
    # Set just before SMTP DATA: from then on only the server's answer says whether it was sent.
    handed_over_at: Mapped[datetime | None]
    # A reply no send job may take before this: the composer's undo window, or the time the
    # agent chose (`scheduled`; held if the customer writes first): services/send_later.py.
    send_after: Mapped[datetime | None]
    scheduled: Mapped[bool] = mapped_column(default=False)
    smtp_response: Mapped[str | None] = mapped_column(Text)  # e.g. "250 2.0.0 queued as 4XyZ"
    sent_at: Mapped[datetime | None]
    threaded_by: Mapped[str | None] = mapped_column(String(16))
    # Auto-replies, bounces and bulk mail are kept but never answered or auto-assigned.
    auto_flag: Mapped[str | None] = mapped_column(String(32))
    # An incoming message's automation rules that failed ("Rule 'VIP': <why>", one a line):
    # the message was delivered all the same (services/automations).
    rule_errors: Mapped[str | None] = mapped_column(Text)
    mime_storage_key: Mapped[str | None] = mapped_column(String(1024))  # sent MIME
    # Incoming: written by this participant (not the contact). Outgoing: sent in that third
    # party's thread (a forward, or an answer to them): their reply address, not the customer's.
    participant_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversation_participants.id", ondelete="SET NULL"), index=True
    )
    # Outgoing: a forward to a third party (services/forwards.py), not a reply.
    forward: Mapped[bool] = mapped_column(default=False)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")
    sender: Mapped[User | None] = relationship()  # the agent who wrote it (outgoing, note)

    @property
    def from_person(self) -> Person:
        """Who it is from as a Person (incoming: the sender; outgoing: the inbox address)."""
        return Person(self.from_address or "", self.from_name or "")

    @property
    def verdict(self):
        """The sender verdict (mail/sender_trust.py SenderVerdict), None if not checked."""
        if not self.sender_verdict:
            return None
        from mail.sender_trust import SenderVerdict  # loads dkimpy: only where it is shown

        return SenderVerdict.from_dict(self.sender_verdict)

    @property
    def from_display(self) -> str:
        """The From as a person reads it: `"Ximian, Inc." <evolve@ximian.com>`."""
        return self.from_person.formatted() if self.from_address else self.from_name or ""

    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="message", cascade="all, delete-orphan"
    )


class Participant(Base):
    """Someone on a conversation besides its contact: a person the customer wrote to or
    copied (`cc`: reply-all includes them), or a third party an agent forwarded it to
    (`third_party`: their own thread inside the conversation, answered at
    reply+<token>@<inbound domain>, never copied to the customer)."""

    __tablename__ = "conversation_participants"
    __table_args__ = (
        *checks_for("conversation_participants"),
        UniqueConstraint("conversation_id", "email"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(320))  # lower-case
    name: Mapped[str] = mapped_column(String(255), default="")
    role: Mapped[str] = mapped_column(String(16), default=ParticipantRole.CC)
    # A third party's continuity token (reply+<token>@), like Conversation.token.
    token: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<Participant {self.email} {self.role}>"


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The column keeps its name; in Python `message_id` is always the RFC Message-ID.
    message_pk: Mapped[int] = mapped_column(
        "message_id", ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255), default="application/octet-stream")
    size: Mapped[int] = mapped_column(default=0)
    storage_key: Mapped[str | None] = mapped_column(String(1024))
    content_id: Mapped[str | None] = mapped_column(String(998))
    inline: Mapped[bool] = mapped_column(default=False)
    # Over ATTACHMENT_MAX_MB: recorded and shown, bytes not stored.
    skipped_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    message: Mapped[Message] = relationship(back_populates="attachments")
