"""Every model, importable from one place (Alembic autogenerate sees them all)."""

from models.automations import AutoAcknowledgement, AutomationRule
from models.base import Base, utcnow
from models.contacts import Contact
from models.conversations import (
    Attachment,
    Conversation,
    ConversationRead,
    Message,
    Participant,
)
from models.inbound import InboundEmail
from models.inboxes import (
    ImapFolderState,
    ImapSettings,
    Inbox,
    InboxAddress,
    InboxMember,
    SmtpSettings,
)
from models.ingress_refusals import IngressRefusal
from models.labels import ConversationLabel, Label
from models.notifications import Notification, NotificationPreference, NotificationThread
from models.oauth import OAuthConnection
from models.spam import BlockedSender
from models.users import User, UserSession
from models.workspace import ReplyDraft, SavedReply

__all__ = [
    "Attachment",
    "AutoAcknowledgement",
    "AutomationRule",
    "Base",
    "BlockedSender",
    "Contact",
    "Conversation",
    "ConversationLabel",
    "ConversationRead",
    "ImapFolderState",
    "ImapSettings",
    "InboundEmail",
    "IngressRefusal",
    "Inbox",
    "InboxAddress",
    "InboxMember",
    "Label",
    "Message",
    "Notification",
    "NotificationPreference",
    "NotificationThread",
    "OAuthConnection",
    "Participant",
    "ReplyDraft",
    "SavedReply",
    "SmtpSettings",
    "User",
    "UserSession",
    "utcnow",
]
