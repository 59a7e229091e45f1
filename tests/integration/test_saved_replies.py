"""Saved replies: who sees and manages which, the management page, the picker's endpoints and
the variables (a small substitution, never template evaluation)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from extensions import db
from models import SavedReply
from services import saved_replies
from tests.support.workspace import Browser, make_team, quick_conversation


@pytest.fixture
def team(inbox, make_user):
    return make_team(inbox, make_user)


@pytest.fixture
def browser(client, auth):
    return Browser(client, auth)


def shared(name, body, inbox=None):
    reply = SavedReply(name=name, body=body, inbox_id=inbox.id if inbox else None)
    db.session.add(reply)
    db.session.commit()
    return reply


def personal(user, name, body):
    reply = SavedReply(name=name, body=body, owner_id=user.id)
    db.session.add(reply)
    db.session.commit()
    return reply


@pytest.fixture
def replies(team):
    return {
        "everyone": shared("Thanks", "Thanks for writing, {{contact.first_name}}!"),
        "support": shared("Refund", "Refund for #{{conversation.number}}", team.support),
        "billing": shared("Invoice", "Your invoice", team.billing),
        "bob": personal(team.bob, "Bob's sign-off", "Cheers, {{agent.first_name}}"),
        "olga": personal(team.olga, "Olga's secret", "Olga only"),
    }


def names(replies_list):
    return sorted(reply.name for reply in replies_list)


# --- the service: what each one may use and see ------------------------------------------


def test_usable_in_a_conversation_is_global_that_inbox_and_own(team, replies):
    conversation = quick_conversation(team.support)
    assert names(saved_replies.usable_replies(team.bob, conversation)) == [
        "Bob's sign-off",
        "Refund",
        "Thanks",
    ]
    billing_conversation = quick_conversation(team.billing)
    assert names(saved_replies.usable_replies(team.olga, billing_conversation)) == [
        "Invoice",
        "Olga's secret",
        "Thanks",
    ]


def test_the_page_groups_everyone_inboxes_and_yours(team, replies):
    groups = {g.title: names(g.replies) for g in saved_replies.grouped_replies(team.bob)}
    assert groups == {
        "For everyone, in every inbox": ["Thanks"],
        "Support inbox": ["Refund"],
        "Yours alone": ["Bob's sign-off"],
    }, "Bob sees no Billing replies and nobody else's personal ones"
    admin = {g.title: names(g.replies) for g in saved_replies.grouped_replies(team.ana)}
    assert admin["Billing inbox"] == ["Invoice"] and admin["Support inbox"] == ["Refund"]
    assert admin["Yours alone"] == [], "an admin does not see agents' personal replies"


def test_agents_cannot_create_shared_or_change_shared(team, replies):
    with pytest.raises(saved_replies.NotAllowed):
        saved_replies.create_reply(team.bob, "Mine", "text", saved_replies.EVERYONE)
    with pytest.raises(saved_replies.NotAllowed):
        saved_replies.create_reply(team.bob, "Mine", "text", f"inbox:{team.support.id}")
    with pytest.raises(saved_replies.NotAllowed):
        saved_replies.update_reply(
            team.bob, replies["support"], "Refund", "changed", saved_replies.PERSONAL
        )
    with pytest.raises(saved_replies.NotAllowed):
        saved_replies.delete_reply(team.bob, replies["everyone"])
    with pytest.raises(saved_replies.NotAllowed):  # personal means personal, admins too
        saved_replies.delete_reply(team.ana, replies["bob"])
    mine = saved_replies.create_reply(team.bob, " Mine ", "Hello,\r\n\r\nBob\r\n")
    assert (mine.name, mine.owner_id, mine.inbox_id) == ("Mine", team.bob.id, None)
    assert mine.body == "Hello,\n\nBob", "a form's CRLF is stored as plain new lines"


def test_admin_moves_a_reply_between_scopes(team, replies):
    reply = saved_replies.update_reply(
        team.ana, replies["everyone"], "Thanks", "Hi", f"inbox:{team.billing.id}"
    )
    assert (reply.inbox_id, reply.owner_id) == (team.billing.id, None)
    with pytest.raises(saved_replies.SavedReplyError):
        saved_replies.update_reply(team.ana, reply, "Thanks", "Hi", "inbox:999999")
    with pytest.raises(saved_replies.SavedReplyError):
        saved_replies.create_reply(team.ana, "", "Hi", saved_replies.EVERYONE)


# --- variables ----------------------------------------------------------------------------


def test_variables_are_filled_in(team):
    conversation = quick_conversation(
        team.support, "Broken printer", email="carla@customer.example", name="Carla Jones"
    )
    body = (
        "Hi {{contact.first_name}} ({{ contact.name }}, {{contact.email}}), "
        "#{{conversation.number}} '{{conversation.subject}}' in {{inbox.name}}. "
        "-- {{agent.name}} / {{agent.first_name}}"
    )
    assert saved_replies.render_text(
        body, saved_replies.variable_values(team.bob, conversation)
    ) == (
        "Hi Carla (Carla Jones, carla@customer.example), "
        f"#{conversation.display_number} 'Broken printer' in Support. -- Bob Agent / Bob"
    )


def test_missing_values_fall_back_and_unknown_variables_stay(team):
    conversation = quick_conversation(team.support, "", email="x@customer.example", name="")
    conversation.contact.name = ""
    values = saved_replies.variable_values(team.bob, conversation)
    text = "Hi {{contact.name}}, {{contact.first_name}}: {{conversation.subject}} {{contact.phone}}"
    assert saved_replies.render_text(text, values) == (
        "Hi there, there: your message {{contact.phone}}"
    )
    conversation.contact.name = "someone@customer.example"  # an address is not a name
    values = saved_replies.variable_values(team.bob, conversation)
    assert saved_replies.render_text("Hi {{contact.first_name}}", values) == "Hi there"


@pytest.mark.parametrize(
    "body",
    [
        "{{ config }}",
        "{{ config.SECRET_KEY }}",
        "{{ config.items() }}",
        "{% for k in config %}{{ k }}{% endfor %}",
        "{{ ''.__class__.__mro__ }}",
        "{{ 7*7 }}",
        "{# comment #}",
        "{{contact.name|upper}}",
    ],
)
def test_template_code_stays_literal(team, browser, body):
    """Never evaluated: what is not one of the variables is returned exactly as written."""
    conversation = quick_conversation(team.support)
    reply = personal(team.bob, "Attempt", body)
    assert saved_replies.render_reply(reply, team.bob, conversation) == body
    browser.login(team.bob)
    response = browser.get(f"/conversations/{conversation.id}/saved-replies/{reply.id}")
    assert response.status_code == 200
    assert response.get_data(as_text=True) == body


def test_a_value_that_looks_like_a_variable_is_not_expanded_again(team):
    conversation = quick_conversation(team.support, "{{agent.name}} {{ config }}")
    values = saved_replies.variable_values(team.bob, conversation)
    assert saved_replies.render_text("Re: {{conversation.subject}}", values) == (
        "Re: {{agent.name}} {{ config }}"
    )


# --- the picker's endpoints --------------------------------------------------------------


def test_picker_lists_usable_replies_and_renders_one(team, replies, browser):
    conversation = quick_conversation(team.support, email="dora@customer.example", name="Dora K")
    browser.login(team.bob)
    listing = browser.get(f"/conversations/{conversation.id}/saved-replies")
    assert listing.status_code == 200
    html = listing.get_data(as_text=True)
    assert 'role="option"' in html
    assert "Thanks" in html and "Refund" in html and "Bob&#39;s sign-off" in html
    assert "Invoice" not in html and "Olga" not in html
    assert "Thanks for writing, Dora!" in html, "the preview is what would be inserted"
    rendered = browser.get(
        f"/conversations/{conversation.id}/saved-replies/{replies['everyone'].id}"
    )
    assert rendered.status_code == 200
    assert rendered.mimetype == "text/plain"
    assert rendered.get_data(as_text=True) == "Thanks for writing, Dora!"
    mine = browser.get(f"/conversations/{conversation.id}/saved-replies/{replies['bob'].id}")
    assert mine.get_data(as_text=True) == "Cheers, Bob"


def test_picker_refuses_other_inboxes_and_other_peoples_replies(team, replies, browser):
    support_conversation = quick_conversation(team.support)
    billing_conversation = quick_conversation(team.billing)
    browser.login(team.bob)
    base = f"/conversations/{support_conversation.id}/saved-replies"
    assert browser.get(f"{base}/{replies['billing'].id}").status_code == 404
    assert browser.get(f"{base}/{replies['olga'].id}").status_code == 404
    assert browser.get(f"{base}/999999").status_code == 404
    other = f"/conversations/{billing_conversation.id}/saved-replies"
    assert browser.get(other).status_code == 404, "not a member of Billing"
    assert browser.get(f"{other}/{replies['everyone'].id}").status_code == 404
    browser.login(team.ana)  # an admin uses an inbox's replies only in that inbox
    assert browser.get(f"{base}/{replies['billing'].id}").status_code == 404
    assert browser.get(f"{base}/{replies['support'].id}").status_code == 200


def test_empty_picker_says_so(team, browser):
    conversation = quick_conversation(team.support)
    browser.login(team.bob)
    html = browser.get(f"/conversations/{conversation.id}/saved-replies").get_data(as_text=True)
    assert "data-sr-empty" in html and 'role="option"' not in html


# --- the management page -----------------------------------------------------------------


def test_agent_page_shows_shared_read_only_and_manages_own(team, replies, browser):
    browser.login(team.bob)
    page = browser.get("/saved-replies")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Thanks" in html and "Refund" in html and "Bob&#39;s sign-off" in html
    assert "Invoice" not in html and "Olga" not in html
    assert f"/saved-replies/{replies['bob'].id}/edit" in html
    assert f"/saved-replies/{replies['support'].id}/edit" not in html
    assert 'name="scope"' not in html, "agents only create personal replies"

    created = browser.post("/saved-replies", {"name": "Follow-up", "body": "Any news?"}, htmx=False)
    assert created.status_code == 303
    reply = db.session.scalar(select(SavedReply).where(SavedReply.name == "Follow-up"))
    assert (reply.owner_id, reply.inbox_id) == (team.bob.id, None)

    sneaky = browser.post(
        "/saved-replies", {"name": "Shared?", "body": "x", "scope": "everyone"}, htmx=False
    )
    assert sneaky.status_code == 422
    assert db.session.scalar(select(SavedReply).where(SavedReply.name == "Shared?")) is None

    edited = browser.post(
        f"/saved-replies/{reply.id}",
        {"name": "Follow-up", "body": "Any news, {{contact.first_name}}?", "scope": "personal"},
        htmx=False,
    )
    assert edited.status_code == 303
    db.session.refresh(reply)
    assert reply.body == "Any news, {{contact.first_name}}?"

    # Shared: visible, not changeable; another inbox's or person's: not even there.
    assert browser.get(f"/saved-replies/{replies['support'].id}/edit").status_code == 403
    form = {"name": "Hacked", "body": "x", "scope": "personal"}
    assert browser.post(f"/saved-replies/{replies['support'].id}", form).status_code == 403
    assert browser.post(f"/saved-replies/{replies['everyone'].id}/delete").status_code == 403
    assert browser.get(f"/saved-replies/{replies['billing'].id}/edit").status_code == 404
    assert browser.post(f"/saved-replies/{replies['olga'].id}/delete").status_code == 404
    db.session.expire_all()
    assert db.session.get(SavedReply, replies["support"].id).name == "Refund"
    assert db.session.get(SavedReply, replies["olga"].id) is not None

    deleted = browser.post(f"/saved-replies/{reply.id}/delete", htmx=False)
    assert deleted.status_code == 303
    assert db.session.get(SavedReply, reply.id) is None


def test_admin_manages_shared_replies(team, replies, browser):
    browser.login(team.ana)
    html = browser.get("/saved-replies").get_data(as_text=True)
    assert "Invoice" in html and "Refund" in html and 'name="scope"' in html
    assert "Olga&#39;s secret" not in html and "Bob&#39;s sign-off" not in html
    created = browser.post(
        "/saved-replies",
        {"name": "Billing hello", "body": "Hello", "scope": f"inbox:{team.billing.id}"},
        htmx=False,
    )
    assert created.status_code == 303
    reply = db.session.scalar(select(SavedReply).where(SavedReply.name == "Billing hello"))
    assert (reply.inbox_id, reply.owner_id) == (team.billing.id, None)
    assert browser.get(f"/saved-replies/{replies['everyone'].id}/edit").status_code == 200
    moved = browser.post(
        f"/saved-replies/{replies['everyone'].id}",
        {"name": "Thanks!", "body": "Thanks", "scope": "everyone"},
        htmx=False,
    )
    assert moved.status_code == 303
    removed = browser.post(f"/saved-replies/{replies['billing'].id}/delete")  # htmx
    assert removed.status_code == 204 and removed.headers["HX-Redirect"] == "/saved-replies"
    assert db.session.get(SavedReply, replies["billing"].id) is None
    # Olga's personal reply is hers: the admin cannot open or delete it.
    assert browser.get(f"/saved-replies/{replies['olga'].id}/edit").status_code == 404


def test_form_errors_say_what_to_fix(team, browser):
    browser.login(team.ana)
    response = browser.post(
        "/saved-replies", {"name": "", "body": "", "scope": "inbox:abc"}, htmx=False
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "the name is empty" in html and "the text is empty" in html
    assert "choose who can use this reply" in html
    assert 'aria-invalid="true"' in html


def test_pages_need_sign_in(client, team, replies):
    conversation = quick_conversation(team.support)
    for path in (
        "/saved-replies",
        f"/saved-replies/{replies['everyone'].id}/edit",
        f"/conversations/{conversation.id}/saved-replies",
        f"/conversations/{conversation.id}/saved-replies/{replies['everyone'].id}",
    ):
        response = client.get(path)
        assert response.status_code in (302, 401), path
