"""The data model on the real migrated schema: identities, dedupe constraints, secrets at rest."""

import io

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from extensions import db
from models import (
    AutomationRule,
    Contact,
    Conversation,
    ImapFolderState,
    ImapSettings,
    InboundEmail,
    Inbox,
    InboxMember,
    Message,
    Notification,
    NotificationPreference,
    OAuthConnection,
    Participant,
    ReplyDraft,
    SmtpSettings,
    User,
    utcnow,
)
from models.enums import CHECKS


def make_inbox(address="support@example.com", **kwargs) -> Inbox:
    inbox = Inbox(name="Support", support_address=address, **kwargs)
    db.session.add(inbox)
    db.session.commit()
    return inbox


def make_conversation(inbox: Inbox, number: int = 1) -> Conversation:
    contact = db.session.scalar(select(Contact).where(Contact.email == "c@example.com"))
    contact = contact or Contact(email="c@example.com", name="Customer")
    db.session.add(contact)
    db.session.flush()
    conversation = Conversation(
        inbox_id=inbox.id, contact_id=contact.id, display_number=number, subject="Help"
    )
    db.session.add(conversation)
    db.session.commit()
    return conversation


def test_inbox_gets_an_unguessable_forwarding_address(app):
    first, second = make_inbox("a@example.com"), make_inbox("b@example.com")
    assert len(first.forward_token) == 32 and int(first.forward_token, 16) >= 0
    assert first.forward_token != second.forward_token
    assert first.forwarding_address("in.example.com") == f"{first.forward_token}@in.example.com"
    assert first.mode == "forwarding" and first.subject_threading is True


def test_conversation_tokens_are_128_bit_and_unique(app):
    inbox = make_inbox()
    tokens = {make_conversation(inbox, n).token for n in range(1, 6)}
    assert len(tokens) == 5
    assert all(len(t) == 32 for t in tokens)


def test_display_numbers_are_unique(app):
    inbox = make_inbox()
    make_conversation(inbox, 7)
    with pytest.raises(IntegrityError):
        make_conversation(inbox, 7)
    db.session.rollback()


def test_one_message_per_inbox_and_message_id(app):
    inbox = make_inbox()
    other = make_inbox("other@example.com")
    conversation = make_conversation(inbox)
    fields = dict(conversation_id=conversation.id, direction="incoming", message_id="abc@x")
    db.session.add(Message(inbox_id=inbox.id, **fields))
    db.session.commit()
    # The same Message-ID in another inbox is a different delivery and is allowed.
    db.session.add(Message(inbox_id=other.id, **fields))
    db.session.commit()
    db.session.add(Message(inbox_id=inbox.id, **fields))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
    # Notes have no Message-ID: any number of them may exist.
    for _ in range(3):
        db.session.add(
            Message(inbox_id=inbox.id, conversation_id=conversation.id, direction="note")
        )
    db.session.commit()
    assert db.session.query(Message).count() == 5


def test_inbound_email_identity_is_message_id_plus_checksum(app):
    row = dict(message_id="m@x", checksum="a" * 40, source="relay", storage_key="k")
    db.session.add(InboundEmail(**row))
    db.session.commit()
    db.session.add(InboundEmail(**row))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
    db.session.add(InboundEmail(**{**row, "checksum": "b" * 40}))
    db.session.commit()
    assert db.session.query(InboundEmail).filter_by(status="pending").count() == 2


def test_contact_email_is_unique(app):
    db.session.add(Contact(email="x@example.com"))
    db.session.commit()
    db.session.add(Contact(email="x@example.com"))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_imap_and_smtp_passwords_are_encrypted_at_rest(app):
    inbox = make_inbox()
    inbox.imap = ImapSettings(host="imap.example.com", username="u", password="imap-s3cret")
    inbox.smtp = SmtpSettings(host="smtp.example.com", username="u", password="smtp-s3cret")
    db.session.commit()
    raw = db.session.execute(
        text("SELECT i.password, s.password FROM inbox_imap_settings i, inbox_smtp_settings s")
    ).one()
    assert "imap-s3cret" not in raw[0] and "smtp-s3cret" not in raw[1]
    assert raw[0].startswith("gAAAA")  # a Fernet token
    db.session.expire_all()
    loaded = db.session.get(Inbox, inbox.id)
    assert loaded.imap.password == "imap-s3cret"
    assert loaded.smtp.password == "smtp-s3cret"
    assert loaded.imap.folder_list == ["INBOX"]


def test_imap_folder_state_is_unique_per_inbox_and_folder(app):
    inbox = make_inbox()
    db.session.add(ImapFolderState(inbox_id=inbox.id, folder="INBOX", uidvalidity=1, last_uid=9))
    db.session.commit()
    db.session.add(ImapFolderState(inbox_id=inbox.id, folder="INBOX"))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_timestamps_come_back_timezone_aware(app):
    inbox = make_inbox()
    db.session.expire_all()
    loaded = db.session.get(Inbox, inbox.id)
    assert loaded.created_at.tzinfo is not None
    assert abs((utcnow() - loaded.created_at).total_seconds()) < 60


def test_deleting_an_inbox_removes_its_members_and_settings(app, make_user):
    user = make_user()
    inbox = make_inbox()
    inbox.members.append(InboxMember(user_id=user.id))
    inbox.imap = ImapSettings(host="h", username="u", password="p")
    db.session.commit()
    db.session.delete(inbox)
    db.session.commit()
    assert db.session.query(InboxMember).count() == 0
    assert db.session.query(ImapSettings).count() == 0
    assert db.session.get(User, user.id) is not None


def test_api_token_is_stored_hashed(app, make_user):
    from models.users import hash_api_token

    user = make_user()
    token = user.issue_api_token()
    db.session.commit()
    assert token not in (user.api_token_hash or "")
    found = db.session.scalar(select(User).where(User.api_token_hash == hash_api_token(token)))
    assert found.id == user.id


def test_storage_accessor_uses_configured_local_path(app, app_config):
    from extensions import get_storage

    storage = get_storage()
    storage.put("probe/x", io.BytesIO(b"abc"), length=3)
    assert storage.get_bytes("probe/x") == b"abc"
    assert app_config["INSTANCE_PATH"] in storage.describe()


@pytest.mark.parametrize(
    ("table", "column"),
    [(table, column) for table, columns in CHECKS.items() for column in columns],
)
def test_every_status_and_choice_column_refuses_a_value_outside_its_enum(app, table, column):
    """The CHECK constraints of migration 0007, on the real schema: a raw UPDATE with a value
    the enum does not have fails at the database (models/enums.py)."""
    inbox = make_inbox()
    conversation = make_conversation(inbox)
    db.session.add(Message(inbox_id=inbox.id, conversation_id=conversation.id, direction="note"))
    db.session.add(InboundEmail(message_id="m@x", checksum="0" * 40, source="relay"))
    db.session.add(ImapSettings(inbox_id=inbox.id, host="i.example", username="u", password="p"))
    db.session.add(SmtpSettings(inbox_id=inbox.id, host="s.example", username="u", password="p"))
    user = User(email="u@example.com", name="U", password_hash="x")
    db.session.add(user)
    db.session.flush()
    db.session.add(ReplyDraft(conversation_id=conversation.id, user_id=user.id, text="Hi"))
    db.session.add(AutomationRule(inbox_id=inbox.id, name="VIP", conditions=[], actions=[]))
    db.session.add(
        OAuthConnection(
            inbox_id=inbox.id, provider="google", mailbox="u@example.com", refresh_token="r"
        )
    )
    db.session.add(Notification(user_id=user.id, conversation_id=conversation.id, event="mention"))
    db.session.add(
        NotificationPreference(user_id=user.id, event="mention", email=True, in_app=True)
    )
    db.session.add(Participant(conversation_id=conversation.id, email="p@example.com"))
    db.session.commit()
    with pytest.raises(IntegrityError, match=rf"(?i)check|ck_{table}_{column}"):
        db.session.execute(text(f"UPDATE {table} SET {column} = 'exploded'"))
        db.session.commit()
    db.session.rollback()
