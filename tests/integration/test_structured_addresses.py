"""A message's people are stored structured (name, address): a comma, a quote or a non-ASCII
letter in a display name never splits it from its address, from the relay ingress through
the database, the API, the thread page and the headers of the reply (issue 21)."""

from __future__ import annotations

import email
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from extensions import db
from mail.compose import build_mime
from mail.model import Person
from mail.people import legacy_people
from models import Contact, Conversation, Inbox, Message
from services import outbound
from services.replies import create_reply
from tests.support import inbound
from tests.support.workspace import Browser, make_team

RAW = (
    b'From: "Ximian, Inc." <evolve@ximian.com>\r\n'
    b'To: "Bounine, Alexandre" <alexandre.bounine@idt.com>, support@example.com\r\n'
    b'Cc: "O\'Brien, \\"Pat\\"" <pat@customer.example>\r\n'
    b'Reply-To: "Ximian, Inc. (billing)" <billing@ximian.com>\r\n'
    b"Subject: Structured people\r\n"
    b"Message-ID: <commas-1@ximian.com>\r\n"
    b"\r\n"
    b"Hello\r\n"
)


def api_message(client, user, conversation_id: int, message_pk: int) -> dict:
    response = client.get(
        f"/api/v1/conversations/{conversation_id}",
        headers={"Authorization": f"Bearer {user.token}"},
    )
    assert response.status_code == 200, response.get_json()
    return next(m for m in response.get_json()["messages"] if m["id"] == message_pk)


def test_a_comma_in_a_display_name_keeps_its_address_everywhere(
    app, client, auth, inbox, make_user
):
    team = make_team(inbox, make_user)
    inbound.post_relay(client, RAW)
    inbound.work_inbound(app)
    stored = db.session.scalar(select(Message).where(Message.message_id == "commas-1@ximian.com"))
    data = api_message(client, team.bob, stored.conversation_id, stored.id)
    assert data["from"] == {"name": "Ximian, Inc.", "address": "evolve@ximian.com"}
    assert data["to"] == [
        {"name": "Bounine, Alexandre", "address": "alexandre.bounine@idt.com"},
        {"name": "", "address": "support@example.com"},
    ]
    assert data["cc"] == [{"name": 'O\'Brien, "Pat"', "address": "pat@customer.example"}]
    assert data["reply_to"] == [{"name": "Ximian, Inc. (billing)", "address": "billing@ximian.com"}]
    # Stored as JSON, one object per person.
    raw_to = db.session.execute(
        text("SELECT to_addresses FROM messages WHERE id = :id"), {"id": stored.id}
    ).scalar()
    assert raw_to.startswith('[{"name":"Bounine, Alexandre"')
    # The thread shows each name quoted where it must be, so it reads as one person.
    page = Browser(client, auth).login(team.bob).get(f"/conversations/{stored.conversation_id}")
    html = page.get_data(as_text=True)
    assert "&#34;O&#39;Brien, \\&#34;Pat\\&#34;&#34; &lt;pat@customer.example&gt;" in html
    # Reply-all: each copied person named as the customer's email named them.
    reply = create_reply(
        stored.conversation,
        team.bob,
        "On it.",
        cc=["alexandre.bounine@idt.com", "pat@customer.example"],
    )
    sent = email.message_from_bytes(build_mime(outbound.compose(reply)), policy=policy.default)
    assert [(a.display_name, a.addr_spec) for a in sent["Cc"].addresses] == [
        ("Bounine, Alexandre", "alexandre.bounine@idt.com"),
        ('O\'Brien, "Pat"', "pat@customer.example"),
    ]
    # To: the contact, who is the Reply-To's person.
    assert [(a.display_name, a.addr_spec) for a in sent["To"].addresses] == [
        ("Ximian, Inc. (billing)", "billing@ximian.com")
    ]


def test_the_old_joined_format_is_read_without_splitting_names():
    """Migration 0018 reads what was stored before: names unquoted, entries joined by ", "."""
    assert legacy_people(
        "Bounine, Alexandre <alexandre.bounine@idt.com>, b@x.example, Ximian, Inc. <e@x.com>"
    ) == [
        Person("alexandre.bounine@idt.com", "Bounine, Alexandre"),
        Person("b@x.example"),
        Person("e@x.com", "Ximian, Inc."),
    ]
    assert legacy_people("") == []


def test_the_migration_converts_stored_rows_and_back(database_url, redis_server, tmp_path):
    """Rows written before 0018 (joined strings, an incoming From as `Name <address>`, a
    rule's name in from_address) read back structured; downgrading restores the strings."""
    from flask_migrate import downgrade, upgrade

    from app import create_app
    from tests.conftest import base_config
    from tests.support.postgres import empty_database_like

    def run(url):
        app = create_app(base_config(url, redis_server, tmp_path / "instance"))
        with app.app_context():
            try:
                upgrade(revision="0017")
                _insert_old_rows()
                upgrade()
                incoming, note = db.session.scalars(select(Message).order_by(Message.id))
                assert incoming.from_person == Person("evolve@ximian.com", "Ximian, Inc.")
                assert incoming.to_addresses == [
                    Person("alexandre.bounine@idt.com", "Bounine, Alexandre"),
                    Person("s@example.com"),
                ]
                assert incoming.cc_addresses == [] and incoming.reply_to == []
                assert (note.from_address, note.from_name) == ("", "Rule 'VIP'")
                db.session.remove()
                downgrade(revision="0017")
                rows = db.session.execute(
                    text("SELECT from_address, to_addresses FROM messages ORDER BY id")
                ).all()
                assert rows[0] == (
                    "Ximian, Inc. <evolve@ximian.com>",
                    "Bounine, Alexandre <alexandre.bounine@idt.com>, s@example.com",
                )
                assert rows[1][0] == "Rule 'VIP'"
            finally:
                db.session.remove()
                db.engine.dispose()

    with empty_database_like(database_url, tmp_path) as url:
        run(url)


def _insert_old_rows() -> None:
    """An inbox, a contact and a conversation (tables 0018 leaves alone) through the models;
    the messages as 0017's schema holds them, in SQL."""
    inbox = Inbox(name="S", support_address="s@example.com")
    contact = Contact(email="evolve@ximian.com", name="Ximian")
    db.session.add_all([inbox, contact])
    db.session.flush()
    conversation = Conversation(
        inbox_id=inbox.id, contact_id=contact.id, subject="s", display_number=1
    )
    db.session.add(conversation)
    db.session.flush()
    for direction, sender, to in (
        (
            "incoming",
            "Ximian, Inc. <evolve@ximian.com>",
            "Bounine, Alexandre <alexandre.bounine@idt.com>, s@example.com",
        ),
        ("note", "Rule 'VIP'", ""),
    ):
        db.session.execute(
            text(
                "INSERT INTO messages (conversation_id, inbox_id, direction, subject, "
                "from_address, to_addresses, cc_addresses, bcc_addresses, text_body, "
                "quoted_text, delivery_attempts, scheduled, forward, created_at, updated_at) "
                "VALUES (:conversation, :inbox, :direction, 's', :sender, :to, '', '', 'x', '', "
                "0, false, false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            {
                "conversation": conversation.id,
                "inbox": inbox.id,
                "direction": direction,
                "sender": sender,
                "to": to,
            },
        )
    db.session.commit()


# Display names as people write them: commas, quotes, backslashes, brackets, non-ASCII
# letters and symbols; single spaces inside (a header's folding collapses runs of them).
NAMES = st.text(
    alphabet=st.one_of(
        st.sampled_from(",.\"\\()<>@;:[]'-"),
        st.characters(categories=("Lu", "Ll", "Lo", "Nd", "So", "Sm")),
    ),
    min_size=1,
    max_size=24,
).flatmap(lambda head: st.sampled_from([head, f"{head}, {head[::-1]}", f"{head} Ö"]))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sender_name=NAMES, copied_name=NAMES)
def test_names_round_trip_through_store_api_and_reply_headers(
    app, client, inbox, make_user, sender_name, copied_name
):
    team = _team(inbox, make_user)
    number = _next()
    sender = f"customer{number}@customer.example"
    copied = f"copied{number}@partner.example"
    # Headers in UTF-8 as RFC 6532 mail carries them: the library's RFC 2047 encoder may put
    # the space after a comma between two encoded words, where RFC 2047 says to drop it.
    mail = EmailMessage(policy=policy.default.clone(utf8=True))
    mail["From"] = Address(display_name=sender_name, addr_spec=sender)
    mail["To"] = "support@example.com"
    mail["Cc"] = Address(display_name=copied_name, addr_spec=copied)
    mail["Subject"] = "Names"
    mail["Message-ID"] = f"<names-{number}@customer.example>"
    mail.set_content("Hello")
    stored = inbound.arrive(app, client, mail)
    data = api_message(client, team.bob, stored.conversation_id, stored.id)
    assert data["from"] == {"name": sender_name, "address": sender}
    assert data["cc"] == [{"name": copied_name, "address": copied}]
    reply = create_reply(stored.conversation, team.bob, "Answer", cc=[copied])
    sent = email.message_from_bytes(build_mime(outbound.compose(reply)), policy=policy.default)
    assert [(a.display_name, a.addr_spec) for a in sent["To"].addresses] == [(sender_name, sender)]
    assert [(a.display_name, a.addr_spec) for a in sent["Cc"].addresses] == [(copied_name, copied)]


_COUNTER = iter(range(1, 1_000_000))


def _next() -> int:
    return next(_COUNTER)


def _team(inbox, make_user):
    """One team for every example of a test run (the fixtures are built once per test)."""
    if getattr(inbox, "_team", None) is None:
        inbox._team = make_team(inbox, make_user)
    return inbox._team
