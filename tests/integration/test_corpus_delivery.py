"""The corpus through the real ingress, queue and worker: what each email must become."""

import pytest
from sqlalchemy import select

from extensions import db, get_storage
from models import Attachment, Contact, Conversation, InboundEmail, Message
from tests.support.corpus import CORPUS, DOMAIN, TOKEN, seed_corpus_thread
from tests.support.inbound import post_relay, work_inbound


@pytest.fixture
def app_config(app_config):
    return {**app_config, "MAILER_INBOUND_EMAIL_DOMAIN": DOMAIN}


@pytest.fixture
def feed(app, client, inbox):
    """Post a corpus file to the relay ingress, run the worker; return its InboundEmail."""

    def run(name: str) -> InboundEmail:
        raw = (CORPUS / name).read_bytes()
        post_relay(client, raw)
        work_inbound(app)
        db.session.expire_all()
        return db.session.scalars(select(InboundEmail).order_by(InboundEmail.id.desc())).first()

    return run


@pytest.fixture
def our_conversation(inbox):
    """A conversation with the corpus's token and our outgoing messages 41-43 in it."""
    conversation = seed_corpus_thread(inbox.id)
    db.session.commit()
    return conversation


def message_of(inbound: InboundEmail) -> Message:
    assert inbound.status == "delivered", inbound.reason
    return db.session.scalar(select(Message).where(Message.inbound_email_id == inbound.id))


def contact_of(message: Message) -> Contact:
    return db.session.get(Contact, message.contact_id)


def test_first_message_opens_a_conversation(feed, inbox):
    message = message_of(feed("thread-start.eml"))
    conversation = db.session.get(Conversation, message.conversation_id)
    assert (conversation.subject, conversation.status) == ("Order #1042 arrived damaged", "open")
    assert (contact_of(message).email, contact_of(message).name) == (
        "jane@customer.example",
        "Jane Doe",
    )
    assert message.threaded_by == "new" and message.text_body.startswith("Hello,")
    assert message.quoted_text == "" and message.auto_flag is None


@pytest.mark.parametrize(
    ("reply", "rule", "starts", "quote_marker"),
    [
        ("gmail-reply.eml", "in_reply_to", "I forgot to add: the box itself was fine", "wrote:"),
        ("outlook-reply.eml", "in_reply_to", "Hi, I'm Jane's colleague", "From: Jane Doe"),
        ("apple-mail-reply.eml", "in_reply_to", "Any news on the replacement?", "wrote:"),
        ("references-only-reply.eml", "references", "", None),
    ],
)
def test_replies_continue_the_thread_with_the_history_split_off(
    feed, reply, rule, starts, quote_marker
):
    first = message_of(feed("thread-start.eml"))
    message = message_of(feed(reply))
    assert message.conversation_id == first.conversation_id
    assert message.threaded_by == rule
    assert message.text_body.startswith(starts)
    if quote_marker:
        assert quote_marker in message.quoted_text
        assert quote_marker not in message.text_body
        assert message.quoted_html  # the HTML history is kept too, collapsed in the UI
    assert db.session.query(Conversation).count() == 1


def test_second_email_with_the_same_subject_joins_the_first(feed):
    first = message_of(feed("same-subject-1.eml"))
    second = message_of(feed("same-subject-2.eml"))
    assert second.conversation_id == first.conversation_id
    assert second.threaded_by == "subject"
    assert contact_of(second).email == "bob@other.example"


def test_subject_threading_can_be_switched_off_per_inbox(feed, inbox):
    inbox.subject_threading = False
    db.session.commit()
    first = message_of(feed("same-subject-1.eml"))
    second = message_of(feed("same-subject-2.eml"))
    assert second.conversation_id != first.conversation_id and second.threaded_by == "new"


def test_subject_does_not_join_a_resolved_conversation(feed):
    first = message_of(feed("same-subject-1.eml"))
    db.session.get(Conversation, first.conversation_id).status = "resolved"
    db.session.commit()
    second = message_of(feed("same-subject-2.eml"))
    assert second.conversation_id != first.conversation_id


@pytest.mark.parametrize("name", ["reply-token-to.eml", "reply-token-cc.eml"])
def test_reply_token_routes_and_reopens(feed, our_conversation, name):
    message = message_of(feed(name))
    assert message.conversation_id == our_conversation.id
    assert message.threaded_by == "reply_token"
    db.session.refresh(our_conversation)
    assert our_conversation.status == "open"  # a resolved conversation reopens
    lines = db.session.scalars(select(Message.text_body).where(Message.direction == "activity"))
    assert list(lines) == [f"Reopened (resolved) by a new email from {contact_of(message).email}"]


def test_our_own_message_id_threads_by_its_token(feed, our_conversation):
    message = message_of(feed("auto-submitted.eml"))  # In-Reply-To our message 41
    assert message.conversation_id == our_conversation.id
    assert message.threaded_by == "in_reply_to" and message.auto_flag == "auto_reply"


@pytest.mark.parametrize(
    "name",
    [
        "x-original-to-only.eml",
        "delivered-to-only.eml",
        "x-forwarded-for-no-to.eml",
        "malformed-to.eml",
    ],
)
def test_the_inbox_is_found_in_any_recipient_header(feed, inbox, name):
    inbound = feed(name)
    assert inbound.status == "delivered" and inbound.inbox_id == inbox.id


@pytest.mark.parametrize(
    ("name", "flag"),
    [
        ("auto-submitted.eml", "auto_reply"),
        ("x-autoreply.eml", "auto_reply"),
        ("x-autorespond.eml", "auto_reply"),
        ("precedence-bulk.eml", "bulk"),
        ("precedence-junk.eml", "bulk"),
        ("precedence-auto-reply.eml", "auto_reply"),
        ("empty-return-path.eml", "bounce"),
        ("mailer-daemon.eml", "bounce"),
    ],
)
def test_automatic_mail_is_stored_and_flagged(feed, our_conversation, name, flag):
    message = message_of(feed(name))
    assert message.auto_flag == flag


def test_a_bounce_of_our_reply_fails_it_in_its_conversation(feed, our_conversation):
    message = message_of(feed("dsn-bounce.eml"))
    assert message.conversation_id == our_conversation.id and message.auto_flag == "bounce"
    ours = db.session.scalar(
        select(Message).where(Message.message_id == f"conversation/{TOKEN}/messages/42@{DOMAIN}")
    )
    assert ours.delivery_status == "failed"
    assert "User unknown in local recipient table" in ours.delivery_error
    activity = db.session.scalar(
        select(Message).where(
            Message.direction == "activity", Message.text_body.startswith("Delivery to")
        )
    )
    assert activity.conversation_id == our_conversation.id
    assert activity.text_body.startswith("Delivery to nobody@customer.example failed: 550 5.1.1")
    others = db.session.scalars(
        select(Message.delivery_status).where(Message.direction == "outgoing")
    ).all()
    assert sorted(others) == ["failed", "sent", "sent"]  # only message 42


@pytest.mark.parametrize(
    ("name", "subject", "contact", "snippet"),
    [
        (
            "rfc2047-utf8.eml",
            "Ärger mit der Lieferung – Bestellung #7781",
            "Jürgen Müller",
            "die Lieferung #7781 ist unvollständig",
        ),
        (
            "rfc2047-latin1.eml",
            "Problème de facturation (réf. 5521)",
            "Hélène Lefèvre",
            "La facture réf. 5521",
        ),
        ("rfc2047-iso2022jp.eml", "注文についてのお問い合わせ", "山田 太郎", "注文番号 A-3391"),
        ("invalid-utf8.eml", "Delivery to Zürich", None, "Café Z\ufffdrich"),
        ("unknown-charset.eml", "Café order 7710", "Ana María", "A naïve question"),
        ("plain-text.eml", "Question about invoice INV-2024-118", "Sam Carter", "Café Rouge"),
    ],
)
def test_charsets_decode_into_readable_text(feed, name, subject, contact, snippet):
    message = message_of(feed(name))
    conversation = db.session.get(Conversation, message.conversation_id)
    assert conversation.subject == subject
    if contact:
        assert contact_of(message).name == contact
    assert snippet in message.text_body


def test_8bit_iso_8859_2_html_is_decoded_and_sanitised(feed):
    message = message_of(feed("html-iso-8859-2.eml"))
    assert "Zażółć gęślą jaźń" in message.html_body
    assert "<script" not in message.html_body.lower()


def test_html_only_mail_gets_a_text_version(feed):
    message = message_of(feed("html-only.eml"))
    assert "does nothing – no download" in message.text_body
    assert message.html_body and "<" in message.html_body


@pytest.mark.parametrize("name", ["inline-cid-disposition.eml", "inline-cid-no-disposition.eml"])
def test_inline_images_are_stored_and_cid_points_to_the_authenticated_url(feed, name):
    message = message_of(feed(name))
    [attachment] = db.session.scalars(select(Attachment)).all()
    assert attachment.inline and attachment.content_type.startswith("image/")
    assert get_storage().size(attachment.storage_key) == attachment.size
    assert f'src="/attachments/{attachment.id}"' in message.html_body
    assert "cid:" not in message.html_body


def test_attachment_without_filename_and_forwarded_message_are_kept(feed):
    message_of(feed("attachment-no-filename.eml"))
    message_of(feed("forwarded-rfc822.eml"))
    rows = db.session.scalars(select(Attachment).order_by(Attachment.id)).all()
    assert [(a.filename, a.content_type) for a in rows] == [
        ("attachment-1.pdf", "application/pdf"),
        ("Broken hinge on cabinet.eml", "message/rfc822"),
    ]
    assert all(get_storage().exists(a.storage_key) for a in rows)


def test_unsafe_attachment_names_are_made_safe(feed):
    message_of(feed("unsafe-filenames.eml"))
    names = [a.filename for a in db.session.scalars(select(Attachment).order_by(Attachment.id))]
    assert names == [
        "Résumé final.pdf",
        "Résumé.pdf",
        "passwd",
        "htaccess",
        "invoicefdp.exe",
        "scan 001.png",
    ]


def test_same_message_twice_is_one_message(feed):
    first = feed("thread-start.eml")
    second = feed("thread-start.eml")
    assert first.id == second.id  # the identical bytes are one InboundEmail
    assert db.session.query(Message).count() == 1


def test_missing_message_id_gets_a_stable_one(feed):
    inbound = feed("missing-message-id.eml")
    message = message_of(inbound)
    assert message.message_id == f"{inbound.checksum}@generated.threadline.invalid"
