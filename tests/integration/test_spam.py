"""Spam (services/spam.py) through the paths that make it happen: customer email through the
relay ingress and the worker (the upstream filter's headers, the inbox's block list), the
workspace's thread actions (Mark as spam, Block sender, Not spam), the list's Spam view and
the inbox settings' Blocked senders tab."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from extensions import db, get_settings
from models import BlockedSender, Conversation, Message, Notification
from services import spam
from tests.support.inbound import post_relay, work_inbound
from tests.support.workspace import Browser, acknowledging, make_team

_numbers = iter(range(1, 10_000))


def raw_email(sender: str, subject: str, *headers: str) -> bytes:
    n = next(_numbers)
    lines = [
        f"From: {sender}",
        "To: support@example.com",
        f"Subject: {subject}",
        f"Message-ID: <spam-test-{n}@sender.example>",
        "Date: Mon, 20 Jan 2025 10:00:00 +0000",
        *headers,
        "MIME-Version: 1.0",
        'Content-Type: text/plain; charset="UTF-8"',
        "",
        f"Body {n}.",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


@pytest.fixture
def team(inbox, make_user):
    """Support (Bob's inbox, auto-assigning, Bob online), Billing (Olga's), Ana the admin."""
    team = make_team(inbox, make_user)
    inbox.auto_assign = True
    team.bob.availability = "online"
    db.session.commit()
    return team


@pytest.fixture
def browser(client, auth):
    return Browser(client, auth)


@pytest.fixture
def deliver(app, client):
    """Post one raw email to the relay, run the worker: the conversation it landed in."""

    def run(raw: bytes) -> Conversation:
        post_relay(client, raw)
        work_inbound(app)
        db.session.expire_all()
        message = db.session.scalars(
            select(Message).where(Message.direction == "incoming").order_by(Message.id.desc())
        ).first()
        assert message is not None, "the email was not delivered"
        return db.session.get(Conversation, message.conversation_id)

    return run


def activity(conversation: Conversation) -> list[str]:
    return list(
        db.session.scalars(
            select(Message.text_body)
            .where(Message.conversation_id == conversation.id, Message.direction == "activity")
            .order_by(Message.id)
        )
    )


def notifications_about(conversation: Conversation) -> int:
    return db.session.scalar(
        select(func.count(Notification.id)).where(Notification.conversation_id == conversation.id)
    )


def outgoing(conversation: Conversation) -> int:
    return db.session.scalar(
        select(func.count(Message.id)).where(
            Message.conversation_id == conversation.id, Message.direction == "outgoing"
        )
    )


def blocked(inbox) -> list[str]:
    return [entry.pattern for entry in spam.blocked_senders(inbox)]


# --- the upstream filter, through the relay ingress ------------------------------------------


def test_x_spam_flag_sets_a_new_conversation_aside_unassigned_and_unannounced(
    app, deliver, inbox, team, browser
):
    acknowledging(inbox, "We got your email.", window_minutes=0)
    caught = deliver(raw_email("Offers <offers@bulk.example>", "Cheap pills", "X-Spam-Flag: YES"))
    clean = deliver(raw_email("Carla <carla@customer.example>", "Printer on fire"))

    assert caught.status == "spam" and caught.assignee_id is None
    assert activity(caught) == ["Threadline marked this as spam: X-Spam-Flag: YES"]
    assert notifications_about(caught) == 0 and outgoing(caught) == 0  # nobody told, no ack
    # The same inbox, the same moment: a clean email is assigned, announced and acknowledged.
    assert clean.status == "open" and clean.assignee_id == team.bob.id
    assert notifications_about(clean) > 0 and outgoing(clean) == 1

    browser.login(team.bob)
    queue = browser.get("/conversations").get_data(as_text=True)
    assert "Printer on fire" in queue and "Cheap pills" not in queue
    assert re.search(r'id="count-spam">1<', queue)
    assert 'href="/conversations?status=spam"' in queue
    view = browser.get("/conversations?status=spam").get_data(as_text=True)
    assert "Cheap pills" in view and "Printer on fire" not in view
    thread = browser.get(f"/conversations/{caught.id}").get_data(as_text=True)
    assert "<strong>Spam:</strong> X-Spam-Flag: YES" in thread and "Not spam" in thread


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (
            "X-Spam-Status: Yes, score=7.1 required=5.0 tests=BAYES_99,URIBL_BLACK",
            "X-Spam-Status: Yes, score=7.1",
        ),
        ("X-Spam-Status: No, score=1.2 required=5.0 tests=ALL_TRUSTED", None),
        ("X-Spam-Flag: NO", None),
        ("X-Spamd-Result: default: True [15.20 / 15.00]; BAYES_SPAM(5.10)[99.9%]", "rspamd"),
        ("X-Spamd-Result: default: False [7.10 / 15.00]; BAYES_HAM(-3.0)", None),
    ],
)
def test_spamassassin_and_rspamd_verdicts(app, deliver, team, header, reason):
    conversation = deliver(raw_email("Someone <someone@sender.example>", "Hello", header))
    if reason is None:
        assert conversation.status == "open" and conversation.assignee_id == team.bob.id
    else:
        assert conversation.status == "spam" and conversation.assignee_id is None
        assert activity(conversation)[0].startswith(f"Threadline marked this as spam: {reason}")


def test_an_rspamd_score_from_the_threshold_up_is_spam_below_it_is_not(app, deliver, team):
    get_settings().spam_score_threshold = 6.0  # SPAM_SCORE_THRESHOLD=6.0
    over = deliver(
        raw_email("a@sender.example", "One", "X-Spamd-Result: default: False [7.10 / 15.00]")
    )
    under = deliver(
        raw_email("b@sender.example", "Two", "X-Spamd-Result: default: False [5.90 / 15.00]")
    )
    assert over.status == "spam"
    assert activity(over) == ["Threadline marked this as spam: rspamd score 7.1 ≥ 6.0"]
    assert under.status == "open"


# --- the block list --------------------------------------------------------------------------


def test_blocked_addresses_and_domains_go_to_spam_and_others_do_not(
    app, deliver, inbox, team, browser
):
    browser.login(team.ana)
    for pattern in ("Pest@Nuisance.example", "@junk.example"):
        response = browser.post(
            f"/admin/inboxes/{inbox.id}/blocked-senders", {"pattern": pattern}, htmx=False
        )
        assert response.status_code == 303, response.get_data(as_text=True)
    assert blocked(inbox) == ["junk.example", "pest@nuisance.example"]  # domains first

    address = deliver(raw_email("Pest <pest@nuisance.example>", "Buy now"))
    domain = deliver(raw_email("Anyone <anyone@junk.example>", "Win big"))
    neighbour = deliver(raw_email("Nice <nice@nuisance.example>", "Real question"))
    subdomain = deliver(raw_email("Sub <sub@mail.junk.example>", "Another question"))

    assert address.status == "spam" and address.assignee_id is None
    assert activity(address) == [
        "Threadline marked this as spam: blocked sender pest@nuisance.example"
    ]
    assert domain.status == "spam"
    assert activity(domain) == ["Threadline marked this as spam: blocked domain junk.example"]
    assert notifications_about(address) == notifications_about(domain) == 0
    # Only that address of its domain; a domain entry is that domain, not its subdomains.
    assert neighbour.status == subdomain.status == "open"


def test_a_blocked_sender_writing_in_an_existing_conversation_is_delivered_there(
    app, deliver, inbox, team
):
    first = deliver(raw_email("Carla <carla@customer.example>", "Invoice question"))
    spam.add_block(inbox, "carla@customer.example", team.ana)
    again = raw_email(
        "Carla <carla@customer.example>",
        "Re: Invoice question",
        f"In-Reply-To: <{first.messages[0].message_id}>",
    )
    later = deliver(again)
    assert later.id == first.id and later.status == "open"


def test_mail_to_a_conversation_already_in_spam_stays_there_and_tells_nobody(
    app, deliver, inbox, team
):
    first = deliver(raw_email("Offers <offers@bulk.example>", "Deals", "X-Spam-Flag: YES"))
    again = raw_email(
        "Offers <offers@bulk.example>",
        "Re: Deals",
        f"In-Reply-To: <{first.messages[0].message_id}>",
    )
    later = deliver(again)
    assert later.id == first.id and later.status == "spam" and later.assignee_id is None
    assert notifications_about(later) == 0


# --- the workspace ---------------------------------------------------------------------------


def test_not_spam_reopens_unblocks_and_the_next_email_lands_in_the_queue(
    app, deliver, inbox, team, browser
):
    spam.add_block(inbox, "customer.example", team.ana)
    spam.add_block(inbox, "carla@customer.example", team.ana)
    spam.add_block(inbox, "other.example", team.ana)
    caught = deliver(raw_email("Carla <carla@customer.example>", "Refund please"))
    assert caught.status == "spam"

    browser.login(team.bob)
    response = browser.post(f"/conversations/{caught.id}/not-spam")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Not spam" not in page and "Mark as spam" in page  # the thread, redrawn
    db.session.expire_all()
    assert caught.status == "open"
    assert blocked(inbox) == ["other.example"]
    assert activity(caught)[-1] == (
        "Bob Agent marked this as not spam and unblocked carla@customer.example, customer.example"
    )
    later = deliver(raw_email("Carla <carla@customer.example>", "Another thing"))
    assert later.id != caught.id and later.status == "open"


def test_mark_as_spam_and_block_sender_from_the_thread(app, deliver, inbox, team, browser):
    first = deliver(raw_email("Pat <pat@pushy.example>", "First pitch"))
    second = deliver(raw_email("Quinn <quinn@other.example>", "Second pitch"))
    assert first.status == second.status == "open"
    browser.login(team.bob)
    thread = browser.get(f"/conversations/{first.id}").get_data(as_text=True)
    assert "Mark as spam" in thread and "Block sender" in thread

    assert browser.post(f"/conversations/{second.id}/spam").status_code == 200
    blocking = browser.post(f"/conversations/{first.id}/block-sender", htmx=False)
    assert blocking.status_code == 303  # a plain form goes back to the thread

    db.session.expire_all()
    assert second.status == "spam" and activity(second)[-1] == "Bob Agent marked this as spam"
    assert blocked(inbox) == ["pat@pushy.example"]  # marking alone blocks nobody
    entry = db.session.scalar(select(BlockedSender))
    assert entry.created_by_user_id == team.bob.id
    assert first.status == "spam"
    assert activity(first)[-1] == "Bob Agent marked this as spam: blocked sender pat@pushy.example"
    banner = browser.get(f"/conversations/{first.id}").get_data(as_text=True)
    assert "<strong>Spam:</strong> blocked sender pat@pushy.example" in banner
    assert "<strong>Spam:</strong> marked by Bob Agent" in browser.get(
        f"/conversations/{second.id}"
    ).get_data(as_text=True)

    later = deliver(raw_email("Pat <pat@pushy.example>", "Third pitch"))
    assert later.id != first.id and later.status == "spam" and later.assignee_id is None


def test_spam_actions_need_the_inbox_and_a_csrf_token(app, deliver, team, browser):
    conversation = deliver(raw_email("Carla <carla@customer.example>", "Help"))
    browser.login(team.olga)  # Billing's agent: Support's conversations do not exist for her
    for action in ("spam", "block-sender", "not-spam"):
        assert browser.post(f"/conversations/{conversation.id}/{action}").status_code == 404
    browser.login(team.bob)
    refused = browser.post(f"/conversations/{conversation.id}/spam", csrf=False)
    assert refused.status_code == 400
    db.session.expire_all()
    assert conversation.status == "open" and db.session.scalar(select(BlockedSender)) is None


# --- inbox settings: Blocked senders ---------------------------------------------------------


def test_settings_list_add_refuse_and_remove_blocked_senders(app, inbox, team, browser):
    browser.login(team.ana)
    url = f"/admin/inboxes/{inbox.id}/blocked-senders"
    tab = browser.get(f"/admin/inboxes/{inbox.id}/settings?section=blocked")
    assert tab.status_code == 200 and "Nobody is blocked in this inbox." in tab.get_data(
        as_text=True
    )

    for typed, error in [
        ("", "Enter an email address (spammer@example.com) or a domain (example.com)."),
        ("not a domain", "is not a domain such as example.com"),
        ("a@@b.example", "is not an address such as a@b.com"),
    ]:
        response = browser.post(url, {"pattern": typed}, htmx=False)
        assert response.status_code == 422
        assert error in response.get_data(as_text=True)
    assert blocked(inbox) == []

    assert browser.post(url, {"pattern": "Spam.Example"}, htmx=False).status_code == 303
    twice = browser.post(url, {"pattern": "@spam.example"}, htmx=False)
    assert twice.status_code == 422
    assert "spam.example is already blocked in this inbox." in twice.get_data(as_text=True)
    page = browser.get(f"/admin/inboxes/{inbox.id}/settings?section=blocked")
    assert "<strong>spam.example</strong>" in page.get_data(as_text=True)

    entry = db.session.scalar(select(BlockedSender))
    remove = f"{url}/{entry.id}/remove"
    assert browser.post(remove, htmx=False, csrf=False).status_code == 400
    assert browser.post(remove, htmx=False).status_code == 303
    assert blocked(inbox) == []
    assert browser.post(remove, htmx=False).status_code == 404


def test_only_admins_manage_the_block_list(app, inbox, team, browser):
    entry = spam.add_block(inbox, "spam.example", team.ana)
    browser.login(team.bob)
    url = f"/admin/inboxes/{inbox.id}/blocked-senders"
    assert browser.get(f"/admin/inboxes/{inbox.id}/settings?section=blocked").status_code == 403
    assert browser.post(url, {"pattern": "x.example"}, htmx=False).status_code == 403
    assert browser.post(f"{url}/{entry.id}/remove", htmx=False).status_code == 403
    assert blocked(inbox) == ["spam.example"]


def test_an_entry_of_another_inbox_is_not_removed_through_this_one(app, inbox, team, browser):
    elsewhere = spam.add_block(team.billing, "spam.example", team.ana)
    browser.login(team.ana)
    response = browser.post(
        f"/admin/inboxes/{inbox.id}/blocked-senders/{elsewhere.id}/remove", htmx=False
    )
    assert response.status_code == 404
    assert blocked(team.billing) == ["spam.example"]


# --- the API ---------------------------------------------------------------------------------


def test_the_api_lists_and_sets_spam(app, client, deliver, team):
    caught = deliver(raw_email("Offers <offers@bulk.example>", "Deals", "X-Spam-Flag: YES"))
    clean = deliver(raw_email("Carla <carla@customer.example>", "Help"))
    headers = {"Authorization": f"Bearer {team.bob.token}"}
    listed = client.get("/api/v1/conversations?status=spam", headers=headers).get_json()
    assert [c["id"] for c in listed["conversations"]] == [caught.id]
    assert listed["conversations"][0]["status"] == "spam"
    changed = client.patch(
        f"/api/v1/conversations/{clean.id}", headers=headers, json={"status": "spam"}
    )
    assert changed.status_code == 200 and changed.get_json()["status"] == "spam"
    assert activity(clean)[-1] == "Bob Agent marked this as spam"
