"""Every status, direction and choice a column can hold: one StrEnum each, stored as its
string and guarded by a CHECK constraint (`one_of`), so a typo fails at the database, not
silently in a query that never matches. Members compare equal to their strings."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import CheckConstraint


class ConversationStatus(StrEnum):
    OPEN = "open"
    PENDING = "pending"
    RESOLVED = "resolved"
    SNOOZED = "snoozed"
    # Caught by the spam check on arrival (services/spam.py) or marked by an agent: kept out
    # of the open queue, never auto-assigned or notified; "Not spam" reopens it.
    SPAM = "spam"


class Direction(StrEnum):
    INCOMING = "incoming"
    OUTGOING = "outgoing"
    NOTE = "note"
    ACTIVITY = "activity"


class DeliveryStatus(StrEnum):
    RECEIVED = "received"  # incoming mail
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"  # handed to SMTP by a worker that died: an agent decides
    HELD = "held"  # scheduled, but the customer wrote since: an agent decides (send_later.py)


class ParticipantRole(StrEnum):
    """Who else is on a conversation besides its contact (models/conversations.Participant)."""

    CC = "cc"  # someone the customer wrote to or copied: the customer's side, reply-all
    THIRD_PARTY = "third_party"  # someone an agent forwarded it to: their own thread


class ThreadedBy(StrEnum):
    """How an incoming message found its conversation; shown to agents."""

    NEW = "new"
    REPLY_TOKEN = "reply_token"
    IN_REPLY_TO = "in_reply_to"
    REFERENCES = "references"
    SUBJECT = "subject"
    MANUAL = "manual"


class InboundStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    DELIVERED = "delivered"
    FAILED = "failed"
    BOUNCED = "bounced"
    # Accepted by the ingress but not posted: a forged or expired agent reply address, a
    # sender who is not that agent, an auto-reply or bounce to a notification.
    REFUSED = "refused"


class InboxMode(StrEnum):
    FORWARDING = "forwarding"
    IMAP = "imap"


class SenderNameStyle(StrEnum):
    AGENT_FROM_INBOX = "agent_from_inbox"
    INBOX = "inbox"


class ReplyToStyle(StrEnum):
    CONTINUITY = "continuity"
    INBOX = "inbox"


class Security(StrEnum):
    SSL = "ssl"
    STARTTLS = "starttls"
    NONE = "none"


class AfterImport(StrEnum):
    """What IMAP import does to the original in the mailbox."""

    LEAVE = "leave"
    MARK = "mark"
    MOVE = "move"
    DELETE = "delete"


class SmtpAuth(StrEnum):
    LOGIN = "login"
    PLAIN = "plain"
    NONE = "none"


class DraftKind(StrEnum):
    REPLY = "reply"  # emailed to the customer when sent
    NOTE = "note"  # private to the team, never emailed


class Role(StrEnum):
    ADMIN = "admin"
    AGENT = "agent"


class RuleMatch(StrEnum):
    ALL = "all"  # every condition holds
    ANY = "any"  # at least one does


class OAuthProvider(StrEnum):
    MICROSOFT = "microsoft"  # Microsoft 365 / Exchange Online (Entra ID)
    GOOGLE = "google"  # Gmail / Google Workspace


class NotificationEvent(StrEnum):
    NEW_CONVERSATION = "new_conversation"  # in an inbox I am a member of
    ASSIGNED = "assigned"  # to me, by someone else, a rule or auto-assignment
    CUSTOMER_REPLY = "customer_reply"  # on a conversation assigned to me
    UNASSIGNED_REPLY = "unassigned_reply"  # on an unassigned conversation in my inbox
    MENTION = "mention"  # @me in a note
    SEND_FAILED = "send_failed"  # a reply of mine that could not be sent


class Availability(StrEnum):
    ONLINE = "online"
    BUSY = "busy"
    OFFLINE = "offline"


def values(enum: type[StrEnum]) -> tuple[str, ...]:
    """The plain strings, in order (for click.Choice, messages and `in` checks)."""
    return tuple(member.value for member in enum)


def one_of(column: str, values: type[StrEnum]) -> CheckConstraint:
    """CHECK (column IN (...)), named ck_<table>_<column> by the naming convention; NULL
    passes, as SQL has it, so optional columns stay optional."""
    allowed = ", ".join(f"'{member.value}'" for member in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=column)


# The CHECK constraints, per table, as the models declare them and migration 0007 adds them.
CHECKS: dict[str, dict[str, type[StrEnum]]] = {
    "conversations": {"status": ConversationStatus},  # widened by migration 0019 (spam)
    "messages": {
        "direction": Direction,
        "delivery_status": DeliveryStatus,
        "threaded_by": ThreadedBy,
    },
    "inbound_emails": {"status": InboundStatus},
    "inboxes": {
        "mode": InboxMode,
        "sender_name_style": SenderNameStyle,
        "reply_to_style": ReplyToStyle,
    },
    "inbox_imap_settings": {"security": Security, "after_import": AfterImport},
    "inbox_smtp_settings": {"security": Security, "auth_method": SmtpAuth},
    "users": {"role": Role, "availability": Availability},
    "reply_drafts": {"kind": DraftKind},  # added with its table by migration 0008
    "automation_rules": {"match": RuleMatch},  # added with its table by migration 0010
    "inbox_oauth": {"provider": OAuthProvider},  # added with its table by migration 0012
    # added with their tables by migration 0013 (which also widens inbound_emails.status)
    "notifications": {"event": NotificationEvent},
    "notification_preferences": {"event": NotificationEvent},
    "conversation_participants": {"role": ParticipantRole},  # added with it by migration 0016
}


def checks_for(table: str) -> tuple[CheckConstraint, ...]:
    return tuple(one_of(column, values) for column, values in CHECKS[table].items())
