"""JSON API v1: bearer tokens, who reaches what, every endpoint, pagination, replies, changes."""

from datetime import timedelta
from email.message import EmailMessage
from types import SimpleNamespace

import pytest
from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy import func, select

from extensions import db, get_queue, get_redis
from models import Contact, Conversation, Inbox, InboxMember, Message, User, utcnow
from tests.support.inbound import post_relay, work_inbound
from tests.support.workspace import quick_conversation

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


@pytest.fixture
def app_config(app_config):
    return {**app_config, "ATTACHMENT_MAX_BYTES": "2048"}


def quick_user(name, role="agent"):
    """A user without the deliberately slow password hash (these never sign in)."""
    user = User(
        email=name.split()[0].lower() + "@staff.example", name=name, role=role, password_hash="!"
    )
    db.session.add(user)
    return user


@pytest.fixture
def team(app, inbox, make_user):
    """Support (the `inbox` fixture) and Billing, and one person per access rule."""
    billing = Inbox(name="Billing", support_address="billing@example.com")
    db.session.add(billing)
    db.session.commit()
    people = SimpleNamespace(
        support=inbox,
        billing=billing,
        admin=quick_user("Ana Admin", role="admin"),  # member of nothing, sees all
        bob=make_user(name="Bob Agent"),  # Support member; signs in through the form
        carol=quick_user("Carol Agent"),  # Support member
        olga=quick_user("Olga Outsider"),  # Billing member only
        ivan=quick_user("Ivan Inactive"),  # Support member, deactivated
    )
    for user, box in [
        (people.bob, inbox),
        (people.carol, inbox),
        (people.olga, billing),
        (people.ivan, inbox),
    ]:
        db.session.add(InboxMember(inbox_id=box.id, user_id=user.id))
    for user in (people.admin, people.bob, people.carol, people.olga, people.ivan):
        user.token = user.issue_api_token()
    people.ivan.active = False
    db.session.commit()
    return people


class Api:
    def __init__(self, client):
        self.client = client

    def __call__(self, method, path, who=None, body=None, raw=None, token=None):
        headers = {}
        if who is not None or token is not None:
            headers["Authorization"] = f"Bearer {token if token is not None else who.token}"
        kwargs = {"headers": headers}
        if body is not None:
            kwargs["json"] = body
        if raw is not None:
            kwargs["data"], kwargs["content_type"] = raw, "application/json"
        return self.client.open("/api/v1" + path, method=method, **kwargs)


@pytest.fixture
def api(client):
    return Api(client)


def make_conversation(
    inbox,
    subject="Help needed",
    email="dora@customer.example",
    name="Dora Customer",
    text="Hello there",
    at=None,
    status="open",
    assignee=None,
):
    """A conversation with one incoming message, inserted directly (fast, for list tests)."""
    return quick_conversation(
        inbox, subject, email=email, name=name, text=text, at=at, status=status, assignee=assignee
    )


def ids(response):
    assert response.status_code == 200, response.get_json()
    return [c["id"] for c in response.get_json()["conversations"]]


def job_exists(message_id: int) -> bool:
    try:
        Job.fetch(f"send-message-{message_id}", connection=get_redis())
    except NoSuchJobError:
        return False
    return True


# --- authentication ----------------------------------------------------------------------

ENDPOINTS = [
    ("GET", "/inboxes"),
    ("GET", "/conversations"),
    ("GET", "/conversations/{conv}"),
    ("POST", "/conversations/{conv}/messages"),
    ("PATCH", "/conversations/{conv}"),
    ("GET", "/contacts/{contact}"),
    ("GET", "/attachments/1"),
    ("GET", "/messages/1/sent.eml"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_endpoint_refuses_missing_bad_and_inactive_tokens(api, team, method, path):
    conv = make_conversation(team.support)
    path = path.format(conv=conv.id, contact=conv.contact_id)
    body = {"content": "hi"} if method == "POST" else {"status": "resolved"}
    body = body if method != "GET" else None
    cases = [
        api(method, path, body=body),
        api(method, path, body=body, token="tl_not-a-real-token"),
        api(method, path, body=body, who=team.ivan),
    ]
    for response in cases:
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.headers["Content-Type"] == "application/json"
        assert "token" in response.get_json()["error"]
    assert "invalid_token" in cases[1].headers["WWW-Authenticate"]
    db.session.expire_all()
    assert db.session.get(Conversation, conv.id).status == "open"
    assert db.session.scalar(select(func.count(Message.id))) == 1


def test_other_schemes_and_empty_bearer_are_refused(api, client, team):
    for header in ("Basic YWxpY2U6c2VjcmV0", "Bearer", "Bearer ", team.bob.token, "Token abc"):
        response = client.get("/api/v1/inboxes", headers={"Authorization": header})
        assert response.status_code == 401, header


def test_a_signed_in_browser_without_a_token_gets_401(api, client, auth, team):
    conv = make_conversation(team.support)
    assert auth.login(team.bob.email, team.bob.plain_password).status_code == 302
    assert client.get("/").status_code == 200  # the session cookie works for pages
    refused = client.get("/api/v1/inboxes")
    assert refused.status_code == 401 and "Set-Cookie" not in refused.headers
    response = client.post(f"/api/v1/conversations/{conv.id}/messages", json={"content": "x"})
    assert response.status_code == 401  # not a CSRF error: the cookie is simply not looked at
    assert db.session.scalar(select(func.count(Message.id))) == 1
    # ...and with the token the same client works, cookie or not.
    assert api("GET", "/inboxes", who=team.bob).status_code == 200


def test_a_deactivated_users_token_stops_working_at_once(api, team):
    assert api("GET", "/inboxes", who=team.bob).status_code == 200
    team.bob.active = False
    db.session.commit()
    assert api("GET", "/inboxes", who=team.bob).status_code == 401


# --- inboxes -----------------------------------------------------------------------------


def test_inboxes_are_the_users_own_and_all_for_admins(api, team):
    make_conversation(team.support)
    make_conversation(team.support, status="resolved")
    make_conversation(team.billing)
    bob = api("GET", "/inboxes", who=team.bob).get_json()["inboxes"]
    assert bob == [
        {
            "id": team.support.id,
            "name": "Support",
            "support_address": "support@example.com",
            "mode": "forwarding",
            "open_conversations": 1,
        }
    ]
    olga = api("GET", "/inboxes", who=team.olga).get_json()["inboxes"]
    assert [i["name"] for i in olga] == ["Billing"]
    admin = api("GET", "/inboxes", who=team.admin).get_json()["inboxes"]
    assert [(i["name"], i["open_conversations"]) for i in admin] == [
        ("Billing", 1),
        ("Support", 1),
    ]


# --- one conversation, built from real email -----------------------------------------------


def deliver(app, client, message_id, body, *, in_reply_to=None, html=None, attachments=()):
    message = EmailMessage()
    message["From"], message["To"] = (
        "Carla Customer <carla@customer.example>",
        "support@example.com",
    )
    message["Subject"], message["Message-ID"] = "Printer on fire", f"<{message_id}>"
    if in_reply_to:
        message["In-Reply-To"] = f"<{in_reply_to}>"
    message.set_content(body)
    if html:
        message.add_alternative(html, subtype="html")
    for data, maintype, subtype, name in attachments:
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    post_relay(client, message.as_bytes())
    work_inbound(app)


def test_conversation_detail_from_real_email(app, client, api, team):
    deliver(
        app,
        client,
        "m1@customer.example",
        "It is smoking.",
        html="<p>It is <b>smoking</b>.</p><script>alert(1)</script>",
        attachments=[
            (PNG, "image", "png", "photo.png"),
            (b"z" * 5000, "application", "zip", "big.zip"),
        ],
    )
    deliver(app, client, "m2@customer.example", "Now flames.", in_reply_to="m1@customer.example")
    conv = db.session.scalars(select(Conversation)).one()

    response = api("GET", f"/conversations/{conv.id}", who=team.bob)
    assert response.status_code == 200
    data = response.get_json()
    assert data["id"] == conv.id and data["display_number"] == conv.display_number
    assert (data["subject"], data["status"], data["inbox_id"]) == (
        "Printer on fire",
        "open",
        team.support.id,
    )
    assert data["contact"]["email"] == "carla@customer.example"
    assert data["contact"]["name"] == "Carla Customer"
    assert data["assignee"] is None and data["last_activity_at"].endswith("+00:00")
    first, second = data["messages"]
    assert first["direction"] == "incoming" and first["threaded_by"] == "new"
    assert first["sender"] == {"type": "contact", **data["contact"]}
    assert first["text"].strip() == "It is smoking."
    assert "<b>smoking</b>" in first["html"] and "script" not in first["html"]
    assert first["delivery_status"] == "received" and first["auto_flag"] is None
    assert second["threaded_by"] == "in_reply_to" and second["text"].strip() == "Now flames."
    photo, big = sorted(first["attachments"], key=lambda a: a["filename"])[::-1]
    assert (photo["filename"], photo["content_type"], photo["size"]) == (
        "photo.png",
        "image/png",
        len(PNG),
    )
    assert photo["url"] == f"http://localhost/attachments/{photo['id']}"
    assert photo["download_url"] == f"http://localhost/api/v1/attachments/{photo['id']}"
    assert photo["skipped_reason"] is None
    assert big["url"] is None and big["download_url"] is None
    assert big["skipped_reason"].startswith("too large")

    # The attachment itself, with the token.
    download = api("GET", f"/attachments/{photo['id']}", who=team.bob)
    assert download.status_code == 200 and download.data == PNG
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    gone = api("GET", f"/attachments/{big['id']}", who=team.bob)
    assert gone.status_code == 410 and gone.get_json()["error"].startswith("too large")
    assert api("GET", f"/attachments/{photo['id']}", who=team.olga).status_code == 404
    assert api("GET", f"/attachments/{photo['id']}", who=team.admin).status_code == 200


def test_outsiders_get_404_as_if_nothing_existed(api, team):
    conv = make_conversation(team.support)
    missing = conv.id + 1000
    for path, body, method in [
        ("/conversations/{}", None, "GET"),
        ("/conversations/{}/messages", {"content": "hi"}, "POST"),
        ("/conversations/{}", {"status": "resolved"}, "PATCH"),
    ]:
        hidden = api(method, path.format(conv.id), who=team.olga, body=body)
        absent = api(method, path.format(missing), who=team.olga, body=body)
        assert hidden.status_code == absent.status_code == 404
        assert hidden.get_json()["error"] == f"conversation {conv.id}: no such conversation"
        assert absent.get_json()["error"] == f"conversation {missing}: no such conversation"
        assert api(method, path.format(conv.id), who=team.admin, body=body).status_code in (
            200,
            201,
        )
    assert ids(api("GET", "/conversations", who=team.olga)) == []
    assert api("GET", f"/conversations?inbox_id={team.support.id}", who=team.olga).status_code == (
        404
    )
    # The outsider's attempts changed nothing; the admin's did.
    notes = db.session.scalars(select(Message).where(Message.direction == "outgoing")).all()
    assert [m.sender_user_id for m in notes] == [team.admin.id]


# --- the list: pagination and filters ------------------------------------------------------


def test_cursor_walks_every_conversation_once_in_activity_order(api, team):
    base = utcnow() - timedelta(days=2)
    made = []
    for i in range(58):
        # Pairs share a timestamp, so the id breaks ties.
        made.append(
            make_conversation(team.support, subject=f"s{i}", at=base + timedelta(minutes=i // 2))
        )
    for i in range(3):
        make_conversation(team.billing, subject=f"billing {i}")
    expected = [c.id for c in sorted(made, key=lambda c: (c.last_activity_at, c.id), reverse=True)]

    seen, cursor, pages = [], None, []
    while True:
        query = "/conversations" + (f"?cursor={cursor}" if cursor else "")
        data = api("GET", query, who=team.bob).get_json()
        pages.append(len(data["conversations"]))
        seen += [c["id"] for c in data["conversations"]]
        if cursor is None:
            # New activity after page one must not duplicate or hide anything already paged.
            make_conversation(team.support, subject="late arrival")
        cursor = data["next_cursor"]
        if cursor is None:
            break
    assert pages == [25, 25, 8]
    assert seen == expected and len(set(seen)) == 58
    stamps = [
        c["last_activity_at"]
        for c in api("GET", "/conversations?limit=100", who=team.bob).get_json()["conversations"]
    ]
    assert stamps == sorted(stamps, reverse=True) and len(stamps) == 59

    admin_pages = api("GET", "/conversations?limit=40", who=team.admin).get_json()
    assert len(admin_pages["conversations"]) == 40
    rest = api(
        "GET", f"/conversations?limit=40&cursor={admin_pages['next_cursor']}", who=team.admin
    )
    assert len(rest.get_json()["conversations"]) == 22  # 59 + 3 billing
    assert rest.get_json()["next_cursor"] is None


def test_filters(api, team):
    t = utcnow()
    bob, carol = team.bob, team.carol
    a = make_conversation(team.support, subject="Invoice missing", at=t, assignee=bob)
    b = make_conversation(
        team.support,
        subject="Login trouble",
        email="eve@shop.example",
        name="Eve Evans",
        at=t - timedelta(minutes=1),
        status="pending",
    )
    c = make_conversation(
        team.support,
        subject="Other",
        text="My PARCEL never arrived, 100% sure",
        at=t - timedelta(minutes=2),
        status="resolved",
        assignee=carol,
    )
    d = make_conversation(team.billing, subject="Invoice for billing", at=t - timedelta(minutes=3))

    def get(who, query):
        return ids(api("GET", "/conversations?" + query, who=who))

    assert get(bob, "") == [a.id, b.id, c.id]
    assert get(team.admin, "") == [a.id, b.id, c.id, d.id]
    assert get(bob, "status=pending") == [b.id]
    assert get(bob, "status=resolved") == [c.id]
    assert get(bob, "status=snoozed") == []
    assert get(team.admin, f"inbox_id={team.billing.id}") == [d.id]
    assert get(team.admin, f"inbox_id={team.support.id}&status=open") == [a.id]
    assert get(bob, "assignee=me") == [a.id]
    assert get(carol, "assignee=me") == [c.id]
    assert get(bob, "assignee=unassigned") == [b.id]
    assert get(team.admin, "assignee=unassigned") == [b.id, d.id]
    assert get(bob, f"assignee={carol.id}") == [c.id]
    assert get(bob, "q=invoice") == [a.id]  # subject, case-insensitive; Billing not visible
    assert get(team.admin, "q=INVOICE") == [a.id, d.id]
    assert get(bob, "q=eve%40shop") == [b.id]  # contact email
    assert get(bob, "q=evans") == [b.id]  # contact name
    assert get(bob, "q=parcel") == [c.id]  # message text
    assert get(bob, "q=100%25") == [c.id]  # a literal %, not a wildcard
    assert get(bob, "q=0%25s") == []
    assert get(bob, "q=parcel&status=open") == []
    assert get(bob, "q=%20%20") == [a.id, b.id, c.id]  # blank search: no filter

    for query, field in [
        ("status=closed", "status"),
        ("inbox_id=abc", "inbox_id"),
        ("assignee=someone", "assignee"),
        ("cursor=not-a-cursor", "cursor"),
        ("limit=0", "limit"),
        ("stauts=open", "stauts"),
    ]:
        response = api("GET", "/conversations?" + query, who=bob)
        assert response.status_code == 400, query
        assert field in response.get_json()["error"], (query, response.get_json())
    assert api("GET", "/conversations?inbox_id=999999", who=team.admin).status_code == 404


# --- replies and notes -------------------------------------------------------------------


def test_a_reply_is_queued_and_its_send_job_enqueued(api, team):
    conv = make_conversation(team.support, at=utcnow() - timedelta(hours=1))
    before = conv.last_activity_at
    response = api(
        "POST",
        f"/conversations/{conv.id}/messages",
        who=team.bob,
        body={"content": "  We are on it.  ", "cc": ["Boss@Customer.example"], "bcc": []},
    )
    assert response.status_code == 201, response.get_json()
    assert response.headers["Location"].endswith(f"/api/v1/conversations/{conv.id}")
    data = response.get_json()
    assert data["direction"] == "outgoing" and data["private"] is False
    assert data["delivery_status"] == "queued" and data["delivery_error"] is None
    assert data["sender"] == {"type": "user", "id": team.bob.id, "name": "Bob Agent"}
    assert data["text"] == "We are on it." and data["cc"] == [
        {"name": "", "address": "boss@customer.example"}
    ]

    stored = db.session.get(Message, data["id"])
    assert stored.direction == "outgoing" and stored.delivery_status == "queued"
    assert stored.message_id.startswith(f"conversation/{conv.token}/messages/{stored.id}@")
    job = Job.fetch(f"send-message-{stored.id}", connection=get_redis())
    assert job.origin == "outbound" and job.func_name == "jobs.send_message.send_message"
    assert job.args == (stored.id,)
    assert job.id in get_queue("outbound").job_ids
    db.session.refresh(conv)
    assert conv.last_activity_at > before
    # It shows up in the thread, after the customer's message.
    thread = api("GET", f"/conversations/{conv.id}", who=team.bob).get_json()["messages"]
    assert [m["direction"] for m in thread] == ["incoming", "outgoing"]


def test_a_private_note_is_never_enqueued(api, team):
    conv = make_conversation(team.support)
    response = api(
        "POST",
        f"/conversations/{conv.id}/messages",
        who=team.admin,
        body={"content": "Call them tomorrow", "private": True},
    )
    assert response.status_code == 201
    data = response.get_json()
    assert data["direction"] == "note" and data["private"] is True
    assert data["delivery_status"] is None
    assert data["sender"] == {"type": "user", "id": team.admin.id, "name": "Ana Admin"}
    assert not job_exists(data["id"]) and get_queue("outbound").count == 0

    for field in ("cc", "bcc"):
        refused = api(
            "POST",
            f"/conversations/{conv.id}/messages",
            who=team.admin,
            body={"content": "Note", "private": True, field: ["x@customer.example"]},
        )
        assert refused.status_code == 422
        assert "private note" in refused.get_json()["error"]
    assert db.session.scalar(select(func.count(Message.id))) == 2


@pytest.mark.parametrize(
    ("raw", "status", "needle"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"", 400, "empty"),
        (b'["content"]', 400, "JSON object"),
        (b"{}", 422, "content is required"),
        (b'{"content": 42}', 422, "content must be a string"),
        (b'{"content": "   "}', 422, "empty"),
        (b'{"content": "hi", "private": "yes"}', 422, "private"),
        (b'{"content": "hi", "cc": "a@b.example"}', 422, "cc must be a list"),
        (b'{"content": "hi", "bcc": [1]}', 422, "bcc must be a list"),
        (b'{"content": "hi", "cc": ["not an address"]}', 422, "CC: 'not an address'"),
        (b'{"content": "hi", "attachments": []}', 422, "unknown field attachments"),
    ],
)
def test_reply_validation(api, team, raw, status, needle):
    conv = make_conversation(team.support)
    response = api("POST", f"/conversations/{conv.id}/messages", who=team.bob, raw=raw)
    assert response.status_code == status
    assert needle in response.get_json()["error"]
    assert db.session.scalar(select(func.count(Message.id))) == 1
    assert get_queue("outbound").count == 0


def test_with_redis_down_a_reply_is_still_accepted_and_kept_queued(app_config, team):
    """The send job can be queued later (the sweep does it); the agent's words are not lost."""
    from app import create_app

    conv = make_conversation(team.support)
    broken = create_app({**app_config, "REDIS_URL": "redis://127.0.0.1:1/0"})
    with broken.app_context():
        response = broken.test_client().post(
            f"/api/v1/conversations/{conv.id}/messages",
            json={"content": "hello"},
            headers={"Authorization": f"Bearer {team.bob.token}"},
        )
        db.session.remove()
        db.engine.dispose()
    assert response.status_code == 201
    assert response.get_json()["delivery_status"] == "queued"
    saved = db.session.scalars(select(Message).where(Message.direction == "outgoing")).one()
    assert saved.delivery_status == "queued" and saved.text_body == "hello"
    assert not job_exists(saved.id)


# --- changing status and assignee --------------------------------------------------------


def activity(conv):
    return db.session.scalars(
        select(Message.text_body)
        .where(Message.conversation_id == conv.id, Message.direction == "activity")
        .order_by(Message.id)
    ).all()


def test_patch_status_and_assignee_with_activity_lines(api, team):
    conv = make_conversation(team.support)

    def patch(body, who=team.admin):
        response = api("PATCH", f"/conversations/{conv.id}", who=who, body=body)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    data = patch({"assignee_id": team.bob.id})
    assert data["assignee"] == {"id": team.bob.id, "name": "Bob Agent"}
    assert data["messages"][-1]["direction"] == "activity"
    assert data["messages"][-1]["text"] == "Ana Admin assigned this to Bob Agent"
    assert data["messages"][-1]["sender"]["name"] == "Ana Admin"

    data = patch({"status": "resolved"})
    assert data["status"] == "resolved"
    data = patch({"status": "open", "assignee_id": team.carol.id}, who=team.bob)
    assert (data["status"], data["assignee"]["name"]) == ("open", "Carol Agent")
    patch({"status": "pending"}, who=team.bob)
    wake = (utcnow() + timedelta(days=1)).replace(microsecond=0)
    patch({"status": "snoozed", "snoozed_until": wake.isoformat()}, who=team.bob)
    patch({"assignee_id": team.admin.id}, who=team.bob)  # admins are assignable everywhere
    data = patch({"assignee_id": None}, who=team.bob)
    assert data["assignee"] is None
    # no change: no line
    patch(
        {"assignee_id": None, "status": "snoozed", "snoozed_until": wake.isoformat()}, who=team.bob
    )
    assert activity(conv) == [
        "Ana Admin assigned this to Bob Agent",
        "Ana Admin resolved this conversation",
        "Bob Agent assigned this to Carol Agent",
        "Bob Agent reopened this conversation",
        "Bob Agent marked this conversation as pending",
        f"Bob Agent snoozed this conversation until {wake:%Y-%m-%d %H:%M} UTC",
        "Bob Agent assigned this to Ana Admin",
        "Bob Agent unassigned Ana Admin",
    ]
    assert (
        api("GET", "/conversations?assignee=unassigned&status=snoozed", who=team.bob).get_json()[
            "conversations"
        ][0]["id"]
        == conv.id
    )


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"status": "closed"}, 422, "status must be one of open, pending, resolved, snoozed"),
        ({"status": None}, 422, "status must be one of"),
        ({"status": "resolved", "assignee_id": "olga"}, 422, "assignee_id must be"),
        ({"assignee_id": True}, 422, "assignee_id must be"),
        ({"assignee_id": 1.5}, 422, "assignee_id must be"),
        ({"assignee_id": "OLGA"}, 422, "not a member"),
        ({"status": "resolved", "assignee_id": "IVAN"}, 422, "no active user"),
        ({"assignee_id": 999999}, 422, "assignee_id 999999: no active user"),
        ({}, 422, "nothing to change"),
        ({"state": "resolved"}, 422, "unknown field state"),
    ],
)
def test_patch_validation_changes_nothing(api, team, body, status, needle):
    conv = make_conversation(team.support)
    names = {"OLGA": team.olga.id, "IVAN": team.ivan.id}
    body = {k: names.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
    response = api("PATCH", f"/conversations/{conv.id}", who=team.bob, body=body)
    assert response.status_code == status
    assert needle in response.get_json()["error"]
    db.session.expire_all()
    fresh = db.session.get(Conversation, conv.id)
    assert (fresh.status, fresh.assignee_id) == ("open", None)
    assert activity(conv) == []


def test_patch_with_malformed_json_is_400(api, team):
    conv = make_conversation(team.support)
    response = api("PATCH", f"/conversations/{conv.id}", who=team.bob, raw=b'{"status": ')
    assert response.status_code == 400 and "not valid JSON" in response.get_json()["error"]


# --- contacts ----------------------------------------------------------------------------


def test_contact_shows_only_conversations_the_user_can_see(api, team):
    t = utcnow()
    mine = make_conversation(team.support, email="fay@customer.example", name="Fay", at=t)
    theirs = make_conversation(
        team.billing, email="fay@customer.example", at=t - timedelta(minutes=5)
    )
    only_billing = make_conversation(team.billing, email="gus@customer.example", name="Gus")
    fay = mine.contact_id

    data = api("GET", f"/contacts/{fay}", who=team.bob).get_json()
    assert (data["id"], data["email"], data["name"]) == (fay, "fay@customer.example", "Fay")
    assert [c["id"] for c in data["conversations"]] == [mine.id]
    assert data["conversations"][0]["contact"]["email"] == "fay@customer.example"
    admin = api("GET", f"/contacts/{fay}", who=team.admin).get_json()
    assert [c["id"] for c in admin["conversations"]] == [mine.id, theirs.id]
    olga = api("GET", f"/contacts/{fay}", who=team.olga).get_json()
    assert [c["id"] for c in olga["conversations"]] == [theirs.id]

    lonely = Contact(email="hal@customer.example", name="Hal")  # no conversation at all
    db.session.add(lonely)
    db.session.commit()
    assert api("GET", f"/contacts/{lonely.id}", who=team.bob).status_code == 404
    assert api("GET", f"/contacts/{lonely.id}", who=team.admin).get_json()["conversations"] == []

    hidden = api("GET", f"/contacts/{only_billing.contact_id}", who=team.bob)
    absent = api("GET", "/contacts/999999", who=team.bob)
    assert hidden.status_code == absent.status_code == 404
    assert hidden.get_json()["error"].endswith("no such contact")


def test_unknown_api_paths_and_methods_answer_json(api, team):
    response = api("GET", "/nothing-here", who=team.bob)
    assert response.status_code == 404 and "error" in response.get_json()
    response = api("DELETE", "/inboxes", who=team.bob)
    assert response.status_code == 405 and "error" in response.get_json()


def test_unknown_api_paths_use_the_same_error_shape(client):
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert set(response.get_json()) == {"error"}
