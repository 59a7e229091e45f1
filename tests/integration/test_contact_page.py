"""The contact page: details and the conversations the signed-in user may see."""

from datetime import timedelta

import pytest

from extensions import db
from models import Contact, Conversation, Inbox, InboxMember, utcnow


@pytest.fixture
def billing(app):
    inbox = Inbox(name="Billing", support_address="billing@example.com")
    db.session.add(inbox)
    db.session.commit()
    return inbox


@pytest.fixture
def jane(app):
    contact = Contact(email="jane@customer.example", name="Jane Doe")
    db.session.add(contact)
    db.session.commit()
    return contact


_numbers = iter(range(1, 10_000))


def conversation(inbox, contact, subject, minutes_ago, **fields) -> Conversation:
    row = Conversation(
        inbox_id=inbox.id,
        contact_id=contact.id,
        display_number=1000 + next(_numbers),
        subject=subject,
        last_activity_at=utcnow() - timedelta(minutes=minutes_ago),
        **fields,
    )
    db.session.add(row)
    db.session.commit()
    return row


def join(inbox, user):
    db.session.add(InboxMember(inbox_id=inbox.id, user_id=user.id))
    db.session.commit()


def signed_in(auth, make_user, role="agent", name="Ana Agent"):
    user = make_user(role=role, name=name)
    response = auth.login(user.email, user.plain_password)
    assert response.status_code == 302
    return user


def test_member_sees_details_and_conversations_newest_first(client, auth, make_user, inbox, jane):
    agent = signed_in(auth, make_user)
    join(inbox, agent)
    older = conversation(inbox, jane, "Order #1042 arrived damaged", 60, status="resolved")
    newer = conversation(inbox, jane, "Where is my refund?", 5, assignee_id=agent.id)

    response = client.get(f"/contacts/{jane.id}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<html" in html and "Jane Doe" in html and "jane@customer.example" in html
    assert "First seen" in html and jane.created_at.strftime("%Y-%m-%d") in html
    assert html.index("Where is my refund?") < html.index("Order #1042 arrived damaged")
    assert f'href="/conversations/{newer.id}"' in html
    assert f'href="/conversations/{older.id}"' in html
    assert f"#{newer.display_number}" in html and f"#{older.display_number}" in html
    assert "resolved" in html and "Support" in html and "Ana Agent" in html
    assert "Unassigned" in html  # the older one has nobody
    assert "HX-Request" in {v.strip() for v in response.headers["Vary"].split(",")}


def test_agent_who_sees_none_of_the_contacts_conversations_gets_404(
    client, auth, make_user, inbox, billing, jane
):
    agent = signed_in(auth, make_user)
    join(billing, agent)
    conversation(inbox, jane, "Secret support thread", 1)
    response = client.get(f"/contacts/{jane.id}")
    assert response.status_code == 404
    assert "Secret support thread" not in response.get_data(as_text=True)
    assert client.get("/contacts/999999").status_code == 404


def test_admin_sees_every_conversation_across_inboxes(
    client, auth, make_user, inbox, billing, jane
):
    signed_in(auth, make_user, role="admin", name="Ada Admin")
    conversation(inbox, jane, "Support question", 10)
    conversation(billing, jane, "Billing question", 1)
    html = client.get(f"/contacts/{jane.id}").get_data(as_text=True)
    assert "Support question" in html and "Billing question" in html
    assert html.index("Billing question") < html.index("Support question")
    assert ">Support<" in html and ">Billing<" in html


def test_admin_gets_the_page_for_a_contact_without_conversations(client, auth, make_user, jane):
    signed_in(auth, make_user, role="admin", name="Ada Admin")
    response = client.get(f"/contacts/{jane.id}")
    assert response.status_code == 200
    assert "jane@customer.example" in response.get_data(as_text=True)
    assert client.get("/contacts/999999").status_code == 404


def test_agent_in_one_of_two_inboxes_sees_only_that_inboxs_conversations(
    client, auth, make_user, inbox, billing, jane
):
    agent = signed_in(auth, make_user)
    join(billing, agent)
    conversation(inbox, jane, "Support-only question", 10)
    visible = conversation(billing, jane, "Billing question", 1)
    html = client.get(f"/contacts/{jane.id}").get_data(as_text=True)
    assert "Billing question" in html and f"/conversations/{visible.id}" in html
    assert "Support-only question" not in html
    assert ">Support<" not in html


def test_hx_request_returns_only_the_conversations_partial(client, auth, make_user, inbox, jane):
    agent = signed_in(auth, make_user)
    join(inbox, agent)
    conversation(inbox, jane, "Order #1042 arrived damaged", 1)
    response = client.get(f"/contacts/{jane.id}", headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<html" not in html and "<body" not in html and "First seen" not in html
    assert 'id="contact-conversations"' in html and "Order #1042 arrived damaged" in html
    assert "HX-Request" in {v.strip() for v in response.headers["Vary"].split(",")}

    full = client.get(f"/contacts/{jane.id}").get_data(as_text=True)
    assert 'id="contact-conversations"' in full and "<html" in full


def test_signed_out_visitors_are_sent_to_login(client, inbox, jane):
    conversation(inbox, jane, "Order #1042 arrived damaged", 1)
    response = client.get(f"/contacts/{jane.id}")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_contact_name_and_subject_are_escaped(client, auth, make_user, inbox):
    agent = signed_in(auth, make_user)
    join(inbox, agent)
    contact = Contact(email="evil@customer.example", name="<script>alert(1)</script>")
    db.session.add(contact)
    db.session.commit()
    conversation(inbox, contact, "<img src=x onerror=alert(2)>", 1)
    html = client.get(f"/contacts/{contact.id}").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(2)&gt;" in html
