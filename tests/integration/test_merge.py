"""Merging two conversations of an inbox: from the thread, the bulk bar and the API. Everything
moves into the survivor, and the customer's answers to the merged one's old emails (by
In-Reply-To, or to its reply+ address) land there, through the relay ingress and real SMTP."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from email.utils import make_msgid

import pytest
from sqlalchemy import select

from extensions import db
from models import Attachment, Notification, NotificationThread
from services import merge, reply_drafts
from services.labels import conversation_labels, set_labels
from services.replies import create_reply
from tests.conftest import global_smtp
from tests.integration.conftest import fresh
from tests.support.inbound import arrive, email_message
from tests.support.workspace import (
    activity,
    api,
    messages_of,
    quick_conversation,
)
from worker import build_worker

DOMAIN = "reply.example.com"


@pytest.fixture
def app_config(app_config, smtp):
    return {**app_config, "MAILER_INBOUND_EMAIL_DOMAIN": DOMAIN, **global_smtp(smtp)}


def merge_url(conversation) -> str:
    return f"/conversations/{conversation.id}/merge"


def customer_mail(message_id, body, *, subject="Printer on fire", to="support@example.com", **more):
    """The customer's email as their mail client sends it; `more`: In_Reply_To, References."""
    sender = "Carla Customer <carla@customer.example>"
    return email_message(sender, to, subject, message_id, body, **more)


def reply_over_smtp(app, smtp, conversation, agent, text):
    """An agent's reply, sent by the real send job to the real SMTP server: what went out."""
    reply = create_reply(conversation, agent, text)
    build_worker(app, ["outbound"], simple=True).work(burst=True)
    db.session.refresh(reply)
    assert reply.delivery_status == "sent", reply.delivery_error
    return BytesParser(policy=policy.default).parsebytes(smtp.envelopes[-1].content)


def test_merge_from_the_thread_moves_everything_and_old_emails_still_arrive(
    app, client, team, bob, smtp
):
    first = customer_mail("<first@customer.example>", "Help, it is burning.")
    first.add_attachment(
        b"%PDF-1.4 receipt", maintype="application", subtype="pdf", filename="receipt.pdf"
    )
    old = arrive(app, client, first).conversation
    sent = reply_over_smtp(app, smtp, old, team.bob, "Unplug it, please.")
    assert str(sent["Reply-To"]) == f"reply+{old.token}@{DOMAIN}"
    bob.post(f"/conversations/{old.id}/reply", {"text": "Called her, no answer", "private": "1"})
    # The customer wrote again, without any threading headers: a new conversation.
    survivor = arrive(
        app, client, customer_mail("<second@customer.example>", "Still on fire!", subject="Fire")
    ).conversation
    assert survivor.id != old.id
    moving = {m.id for m in messages_of(old)}
    assert {m.direction for m in messages_of(old)} == {"incoming", "outgoing", "note"}

    page = bob.get(f"/conversations/{old.id}").get_data(as_text=True)
    assert "Merge into another conversation" in page and f'action="{merge_url(old)}"' in page

    response = bob.post(merge_url(old), {"into": f"#{survivor.display_number}"})
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    assert response.headers["HX-Retarget"] == "#thread-pane"
    assert response.headers["HX-Push-Url"] == f"/conversations/{survivor.id}"
    html = response.get_data(as_text=True)
    assert f"Merged #{old.display_number} into #{survivor.display_number}." in html
    assert 'id="thread"' in html and "Unplug it, please." in html

    old, survivor = fresh(old), fresh(survivor)
    assert old.merged_into_id == survivor.id and old.status == "resolved"
    assert moving <= {m.id for m in messages_of(survivor)}
    assert [m.direction for m in messages_of(old)] == ["activity"]
    kept = db.session.scalar(select(Attachment).where(Attachment.filename == "receipt.pdf"))
    assert kept.message.conversation_id == survivor.id
    assert activity(old) == [f"Bob Agent merged this conversation into #{survivor.display_number}"]
    assert activity(survivor)[-1].startswith(
        f"Bob Agent merged #{old.display_number} “Printer on fire” into this conversation"
    )

    # The customer answers our old email (In-Reply-To its Message-ID, sent to support@).
    answer = customer_mail(
        make_msgid(domain="customer.example"),
        "It stopped burning.",
        subject=str(sent["Subject"]),
        In_Reply_To=str(sent["Message-ID"]),
        References=f"<first@customer.example> {sent['Message-ID']}",
    )
    assert arrive(app, client, answer).conversation_id == survivor.id
    # ... answers their own first email from their Sent folder ...
    again = customer_mail(
        make_msgid(domain="customer.example"),
        "One more thing.",
        subject="Re: Printer on fire",
        In_Reply_To="<first@customer.example>",
    )
    assert arrive(app, client, again).conversation_id == survivor.id
    # ... and writes to the old reply address with no threading headers at all.
    bare = customer_mail(
        make_msgid(domain="customer.example"),
        "Hello?",
        subject="Another thing",
        to=f"reply+{old.token}@{DOMAIN}",
    )
    stored = arrive(app, client, bare)
    assert stored.conversation_id == survivor.id and stored.threaded_by == "reply_token"
    assert fresh(survivor).status == "open" and messages_of(fresh(old))[-1].direction == "activity"

    # The merged conversation's page says where everything went.
    page = bob.get(f"/conversations/{old.id}").get_data(as_text=True)
    assert "Merged into" in page and f'href="/conversations/{survivor.id}"' in page
    assert f'action="{merge_url(old)}"' not in page


def test_bad_merges_from_the_thread_say_what_to_fix(app, client, team, bob):
    source = quick_conversation(team.support, "One")
    billing = quick_conversation(team.billing, "Bill")
    cases = {
        "": "Give the number of the conversation to merge into, like #42.",
        "forty-two": "Give the number of the conversation to merge into, like #42.",
        "#99999": "There is no conversation #99999 in your inboxes.",
        "#99999999999999999999": "There is no conversation #99999999999999999999 in your inboxes.",
        f"#{source.display_number}": f"#{source.display_number} cannot be merged into itself",
        # Bob is not a member of Billing: it must look like it does not exist at all.
        f"#{billing.display_number}": (
            f"There is no conversation #{billing.display_number} in your inboxes."
        ),
    }
    for into, error in cases.items():
        response = bob.post(merge_url(source), {"into": into})
        assert response.status_code == 422, into
        html = response.get_data(as_text=True)
        assert error in html, (into, html[:2000])
        assert 'id="menu-merge" open' in html and 'aria-invalid="true"' in html
    # Without htmx: the whole page, the form open with the error.
    response = bob.post(merge_url(source), {"into": "#99999"}, htmx=False)
    assert response.status_code == 422
    assert "There is no conversation #99999 in your inboxes." in response.get_data(as_text=True)

    # An admin sees both inboxes but still cannot merge across them.
    ana = bob.login(team.ana)
    response = ana.post(merge_url(source), {"into": f"#{billing.display_number}"})
    assert response.status_code == 422
    assert (
        f"#{billing.display_number} is in Billing and #{source.display_number} in Support: "
        "only conversations of the same inbox can be merged."
    ) in response.get_data(as_text=True)

    # POST only, with the CSRF token; nobody outside the inbox reaches the conversation.
    bob = ana.login(team.bob)
    other = quick_conversation(team.support, "Two")
    assert bob.get(merge_url(source)).status_code == 405
    assert (
        bob.post(merge_url(source), {"into": f"#{other.display_number}"}, csrf=False).status_code
        == 400
    )
    olga = bob.login(team.olga)
    assert olga.post(merge_url(source), {"into": f"#{other.display_number}"}).status_code == 404
    assert activity(fresh(source)) == [] and fresh(source).merged_into_id is None

    # Without htmx a merge that works redirects to the survivor, saying what happened.
    bob = olga.login(team.bob)
    response = bob.post(merge_url(source), {"into": str(other.display_number)}, htmx=False)
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/conversations/{other.id}")
    page = bob.get(f"/conversations/{other.id}").get_data(as_text=True)
    assert f"Merged #{source.display_number} into #{other.display_number}." in page
    # A merged conversation is merged once, and cannot take others in.
    third = quick_conversation(team.support, "Three")
    for into, merged in (
        (f"#{source.display_number}", third),
        (f"#{third.display_number}", source),
    ):
        response = bob.post(merge_url(merged), {"into": into})
        assert response.status_code == 422
        assert f"#{source.display_number} was already merged into #{other.display_number}" in (
            response.get_data(as_text=True)
        )


def bulk_merge(who, ids, into="", csrf=True):
    headers = {"HX-Request": "true", "HX-Current-URL": "/conversations"}
    if csrf:
        headers["X-CSRFToken"] = who.token
    data = {"ids": [c.id for c in ids], "action": "merge", "into": into}
    return who.client.post("/conversations/bulk/merge", data=data, headers=headers)


def test_bulk_merge_into_the_latest_or_a_chosen_one(app, client, team, bob):
    older, newer, newest = (quick_conversation(team.support, f"Case {n}") for n in (1, 2, 3))
    page = bob.get("/conversations").get_data(as_text=True)
    assert 'formaction="/conversations/bulk/merge"' in page and 'data-bulk-menu="merge"' in page

    answer = bulk_merge(bob, [older, newest])
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert f"Merged #{older.display_number} into #{newest.display_number}." in html
    assert 'hx-swap-oob="true"' in html  # the list and the counts follow
    assert fresh(older).merged_into_id == newest.id
    assert [m.text_body for m in messages_of(newest, "incoming")] == ["Hello there"] * 2

    # A chosen one, outside the selection: both selected go into it, in one transaction.
    extra = quick_conversation(team.support, "Case 4")
    answer = bulk_merge(bob, [newer, newest], into=f"#{extra.display_number}")
    assert answer.status_code == 200
    assert (
        f"Merged #{newer.display_number}, #{newest.display_number} into #{extra.display_number}."
    ) in answer.get_data(as_text=True)
    # Merges of merges: the first one's mail now goes straight to the last survivor.
    assert fresh(older).merged_into_id == extra.id
    assert len(messages_of(extra, "incoming")) == 4

    # Refusals change nothing and say why.
    lone = quick_conversation(team.support, "Case 5")
    answer = bulk_merge(bob, [lone])
    assert answer.status_code == 422
    assert "Select at least two conversations to merge" in answer.get_data(as_text=True)
    ana = bob.login(team.ana)
    billing = quick_conversation(team.billing, "Refund")
    answer = bulk_merge(ana, [lone, billing])
    assert answer.status_code == 422
    assert "only conversations of the same inbox can be merged. Nothing was changed." in (
        answer.get_data(as_text=True)
    )
    assert fresh(lone).merged_into_id is None and fresh(billing).merged_into_id is None
    bob = ana.login(team.bob)
    answer = bulk_merge(bob, [lone, billing])
    assert answer.status_code == 422
    assert f"Conversation {billing.id} is not in any of your inboxes." in answer.get_data(
        as_text=True
    )
    assert bulk_merge(bob, [lone, extra], csrf=False).status_code == 400
    assert fresh(lone).merged_into_id is None


def test_api_merge_and_its_refusals(app, client, team, smtp):
    source = quick_conversation(team.support, "Invoice")
    survivor = quick_conversation(team.support, "Invoice again")
    billing = quick_conversation(team.billing, "Refund")

    response = api(
        client,
        "POST",
        f"/conversations/{source.id}/merge",
        team.bob,
        {"into": f"#{survivor.display_number}"},
    )
    assert response.status_code == 200, response.get_json()
    data = response.get_json()
    assert data["id"] == survivor.id and data["merged_into_id"] is None
    assert [m["direction"] for m in data["messages"]] == ["incoming", "incoming", "activity"]
    assert data["messages"][-1]["text"].startswith(
        f"Bob Agent merged #{source.display_number} “Invoice” into this conversation"
    )
    merged = api(client, "GET", f"/conversations/{source.id}", team.bob).get_json()
    assert merged["merged_into_id"] == survivor.id and merged["status"] == "resolved"

    # Merges of merges: A → B → C sends mail for A's reply address to C.
    third = quick_conversation(team.support, "Invoice, third time")
    response = api(
        client, "POST", f"/conversations/{survivor.id}/merge", team.bob, {"into": third.id}
    )
    assert response.status_code == 200 and response.get_json()["id"] == third.id
    assert fresh(source).merged_into_id == third.id
    to_first = customer_mail(
        make_msgid(domain="customer.example"), "Any news?", to=f"reply+{source.token}@{DOMAIN}"
    )
    assert arrive(app, client, to_first).conversation_id == third.id

    fourth = quick_conversation(team.support, "Unrelated")
    refusals = [
        (team.bob, fourth.id, {"into": billing.id}, 404, f"into: conversation {billing.id}"),
        (team.bob, fourth.id, {"into": f"#{billing.display_number}"}, 404, "in your inboxes"),
        (team.bob, fourth.id, {"into": 999999}, 404, "no such conversation"),
        (team.bob, billing.id, {"into": fourth.id}, 404, "no such conversation"),
        (team.bob, fourth.id, {"into": fourth.id}, 422, "cannot be merged into itself"),
        (team.bob, fourth.id, {"into": source.id}, 422, "was already merged into"),
        (team.ana, fourth.id, {"into": billing.id}, 422, "only conversations of the same inbox"),
        (team.bob, fourth.id, {}, 422, "into must be the id of the conversation"),
        (team.bob, fourth.id, {"into": True}, 422, "into must be the id of the conversation"),
        (team.bob, fourth.id, {"into": "42"}, 422, 'give a conversation number as "#42"'),
        (team.bob, fourth.id, {"onto": 1}, 422, "unknown field onto"),
    ]
    for who, conversation_id, body, status, error in refusals:
        response = api(client, "POST", f"/conversations/{conversation_id}/merge", who, body)
        assert response.status_code == status, (body, response.get_json())
        assert set(response.get_json()) == {"error"} and error in response.get_json()["error"]
    assert fresh(fourth).merged_into_id is None and fresh(billing).merged_into_id is None
    assert api(client, "POST", f"/conversations/{fourth.id}/merge", team.bob).status_code == 400


def test_drafts_notifications_and_labels_follow_the_merge(app, client, team, smtp):
    source = quick_conversation(team.support, "Old")
    survivor = quick_conversation(team.support, "New", status="resolved")
    set_labels(source, team.bob, ["VIP", "billing"])
    set_labels(survivor, team.bob, ["billing"])
    reply_drafts.save(source.id, team.bob.id, text="Half a reply")
    reply_drafts.save(source.id, team.ana.id, text="Ana's words")
    reply_drafts.save(survivor.id, team.ana.id, text="Ana's other words")
    mention = Notification(user_id=team.bob.id, conversation_id=source.id, event="mention")
    db.session.add_all(
        [
            mention,
            NotificationThread(user_id=team.bob.id, conversation_id=source.id),
            NotificationThread(user_id=team.ana.id, conversation_id=source.id),
            NotificationThread(user_id=team.ana.id, conversation_id=survivor.id),
        ]
    )
    db.session.commit()

    merge.merge(source, survivor, team.bob)

    survivor = fresh(survivor)
    assert reply_drafts.get(survivor.id, team.bob.id).text == "Half a reply"
    assert reply_drafts.get(survivor.id, team.ana.id).text == "Ana's other words\n\nAna's words"
    assert reply_drafts.get(source.id, team.ana.id) is None
    assert db.session.get(Notification, mention.id).conversation_id == survivor.id
    threads = db.session.scalars(select(NotificationThread.conversation_id)).all()
    assert sorted(threads) == [survivor.id, survivor.id]
    assert [label.display_name for label in conversation_labels(survivor.id)] == ["billing", "VIP"]
    # The merged one was open: the survivor needs an answer now.
    assert survivor.status == "open"
    assert activity(survivor)[-1].endswith(
        f"#{source.display_number} was open, so this one is open again"
    )
