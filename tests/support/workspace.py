"""A small team, signed-in browsers and fast conversations for the labels and snooze tests."""

from __future__ import annotations

import re
from email.message import EmailMessage
from html import unescape
from types import SimpleNamespace

from sqlalchemy import func, select

from extensions import db
from models import (
    AutoAcknowledgement,
    Contact,
    Conversation,
    Inbox,
    InboxMember,
    Message,
    utcnow,
)
from tests.conftest import csrf_token_from
from tests.support.inbound import post_relay, work_inbound

HX = {"HX-Request": "true"}


def make_team(inbox, make_user) -> SimpleNamespace:
    """Support (Bob's inbox) and Billing (Olga's); Ana the admin is a member of neither.
    Everyone also has an API token (`user.token`)."""
    billing = Inbox(name="Billing", support_address="billing@example.com")
    db.session.add(billing)
    db.session.commit()
    team = SimpleNamespace(
        support=inbox,
        billing=billing,
        bob=make_user(email="bob@staff.example", name="Bob Agent"),
        olga=make_user(email="olga@staff.example", name="Olga Outsider"),
        ana=make_user(email="ana@staff.example", name="Ana Admin", role="admin"),
    )
    db.session.add(InboxMember(inbox_id=inbox.id, user_id=team.bob.id))
    db.session.add(InboxMember(inbox_id=billing.id, user_id=team.olga.id))
    for user in (team.bob, team.olga, team.ana):
        user.token = user.issue_api_token()
    db.session.commit()
    return team


class Browser:
    """A signed-in agent: GETs and htmx-style POSTs carrying the page's CSRF token."""

    def __init__(self, client, auth):
        self.client, self.auth, self.token = client, auth, None

    def login(self, user):
        if self.token is not None:
            self.auth.logout()
        response = self.auth.login(user.email, user.plain_password)
        assert response.status_code in (302, 303), response.get_data(as_text=True)
        self.token = csrf_token_from(self.client.get("/conversations").get_data(as_text=True))
        return self

    def get(self, path, htmx=False, **kwargs):
        return self.client.get(path, headers=HX if htmx else {}, **kwargs)

    def post(self, path, data=None, htmx=True, csrf=True):
        headers = {**({"X-CSRFToken": self.token} if csrf else {}), **(HX if htmx else {})}
        return self.client.post(path, data=data or {}, headers=headers)


def acknowledging(inbox, body: str, window_minutes: int) -> AutoAcknowledgement:
    """The inbox acknowledges new email with this body, at most once per contact in the
    window (0: every email)."""
    settings = AutoAcknowledgement(
        inbox_id=inbox.id, enabled=True, subject="", body=body, window_minutes=window_minutes
    )
    db.session.add(settings)
    db.session.commit()
    return settings


def api(client, method, path, who, body=None):
    headers = {"Authorization": f"Bearer {who.token}"}
    return client.open("/api/v1" + path, method=method, headers=headers, json=body)


def quick_conversation(
    inbox,
    subject="Help needed",
    *,
    text="Hello there",
    status="open",
    at=None,
    email=None,
    name=None,
    assignee=None,
    commit=True,
):
    """A conversation with one incoming message, inserted directly (fast, for list tests).
    The contact is reused when `email` already belongs to one."""
    number = (db.session.scalar(select(func.max(Conversation.display_number))) or 0) + 1
    email = email or f"person{number}@customer.example"
    contact = db.session.scalar(select(Contact).where(Contact.email == email))
    if contact is None:
        contact = Contact(email=email, name=name or f"Person {number}")
        db.session.add(contact)
        db.session.flush()
    conversation = Conversation(
        inbox_id=inbox.id,
        contact_id=contact.id,
        display_number=number,
        subject=subject,
        status=status,
        assignee_id=assignee.id if assignee else None,
        last_activity_at=at or utcnow(),
    )
    db.session.add(conversation)
    db.session.flush()
    db.session.add(
        Message(
            conversation_id=conversation.id,
            inbox_id=inbox.id,
            direction="incoming",
            contact_id=contact.id,
            from_address=email,
            subject=subject,
            text_body=text,
            delivery_status="received",
            threaded_by="new",
        )
    )
    if commit:
        db.session.commit()
    return conversation


def activity(conversation) -> list[str]:
    return list(
        db.session.scalars(
            select(Message.text_body)
            .where(Message.conversation_id == conversation.id, Message.direction == "activity")
            .order_by(Message.id)
        )
    )


def deliver(
    app,
    client,
    message_id,
    body,
    *,
    subject="Printer on fire",
    sender="Carla Customer <carla@customer.example>",
    to="support@example.com",
    in_reply_to=None,
    html=None,
):
    """A real email through the relay ingress and the inbound job; returns its conversation."""
    message = EmailMessage()
    message["From"], message["To"] = sender, to
    message["Subject"], message["Message-ID"] = subject, f"<{message_id}>"
    if in_reply_to:
        message["In-Reply-To"] = f"<{in_reply_to}>"
    message.set_content(body)
    if html:
        message.add_alternative(html, subtype="html")
    post_relay(client, message.as_bytes())
    work_inbound(app)
    row = db.session.scalar(select(Message).where(Message.message_id == message_id))
    assert row is not None, "the inbound job did not store the message"
    return db.session.get(Conversation, row.conversation_id)


def messages_of(conversation, direction=None):
    query = select(Message).where(Message.conversation_id == conversation.id)
    if direction:
        query = query.where(Message.direction == direction)
    return db.session.scalars(query.order_by(Message.id)).all()


def links_to(html: str, conversation) -> bool:
    """Whether a page links to the conversation (list rows carry the list's filters)."""
    return bool(re.search(rf'href="/conversations/{conversation.id}[?"]', html))


def poll_fingerprint(html: str) -> str:
    """The fingerprint of what the page shows: the message poll's value, which the thread's
    component forms send along too (_messages_poll.html)."""
    return re.search(r'<input [^>]*id="thread-fp"[^>]*value="([^"]*)"', html).group(1)


def messages_poll(html: str) -> str:
    """The URL the thread's message poll requests next: its hx-get plus its fingerprint."""
    tag = re.search(r'<input [^>]*id="thread-fp"[^>]*>', html).group(0)
    url = unescape(re.search(r'hx-get="([^"]+)"', tag).group(1))
    return f"{url}{'&' if '?' in url else '?'}fp={poll_fingerprint(html)}"
