"""The hand-written mail corpus (tests/fixtures/mail) and the thread its replies belong to."""

from __future__ import annotations

from pathlib import Path

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "mail"
DOMAIN = "reply.example.com"  # the corpus's inbound (continuity) domain
TOKEN = "0123456789abcdef0123456789abcdef"  # the corpus's conversation token
THREAD_START = "thread-start@customer.example"


def seed_corpus_thread(inbox_id: int, *, status: str = "resolved", first_message: bool = False):
    """The corpus's conversation: its token, our outgoing replies 41-43 (the ones the corpus's
    auto-replies and bounces name) and, optionally, the customer's first message. Flushes;
    the caller commits."""
    from extensions import db
    from mail.threading import outgoing_message_id
    from models import Contact, Conversation, Message

    contact = Contact(email="jane@customer.example", name="Jane Doe")
    db.session.add(contact)
    db.session.flush()
    conversation = Conversation(
        inbox_id=inbox_id,
        contact_id=contact.id,
        display_number=1,
        token=TOKEN,
        subject="Order #1042 arrived damaged",
        status=status,
    )
    db.session.add(conversation)
    db.session.flush()
    for n in (41, 42, 43):
        db.session.add(
            Message(
                conversation_id=conversation.id,
                inbox_id=inbox_id,
                direction="outgoing",
                message_id=outgoing_message_id(TOKEN, n, DOMAIN),
                delivery_status="sent",
                text_body=f"our reply {n}",
            )
        )
    if first_message:
        db.session.add(
            Message(
                conversation_id=conversation.id,
                inbox_id=inbox_id,
                direction="incoming",
                contact_id=contact.id,
                message_id=THREAD_START,
                delivery_status="received",
            )
        )
    db.session.flush()
    return conversation
