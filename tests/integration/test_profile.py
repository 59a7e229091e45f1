"""The profile page and the API token flow, through the real forms with CSRF."""

import re

from extensions import db
from models import InboxMember, User
from models.users import hash_api_token
from tests.conftest import csrf_token_from

TOKEN = re.compile(r'id="new-api-token"[^>]*value="([^"]+)"')


def signed_in(auth, make_user, inbox, **kwargs):
    user = make_user(**kwargs)
    db.session.add(InboxMember(inbox_id=inbox.id, user_id=user.id))
    db.session.commit()
    assert auth.login(user.email, user.plain_password).status_code == 302
    return user


def generate(client):
    """Open the profile page and press "Generate"; return (response, token shown)."""
    page = client.get("/profile")
    response = client.post(
        "/profile/api-token", data={"csrf_token": csrf_token_from(page.get_data(as_text=True))}
    )
    match = TOKEN.search(response.get_data(as_text=True))
    return response, match.group(1) if match else None


def api_status(client, token):
    # A separate client: no session cookie, only the token.
    return client.get("/api/v1/inboxes", headers={"Authorization": f"Bearer {token}"}).status_code


def test_profile_shows_who_you_are_and_is_linked_from_the_top_bar(client, auth, make_user, inbox):
    signed_in(auth, make_user, inbox, name="Bob Agent", email="bob@example.com")
    home = client.get("/").get_data(as_text=True)
    assert re.search(r'<a class="who" href="/profile"[^>]*>Bob Agent</a>', home)
    page = client.get("/profile")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for text in ("Bob Agent", "bob@example.com", "Agent", "Support", "You have no API token yet."):
        assert text in html
    assert 'action="/profile/api-token"' in html


def test_profile_needs_sign_in(client):
    assert client.get("/profile").status_code == 302
    response = client.post("/profile/api-token")
    assert response.status_code in (302, 400)  # CSRF or sign-in: never a token
    assert "tl_" not in response.get_data(as_text=True)


def test_token_shown_once_works_and_is_stored_only_as_a_hash(app, client, auth, make_user, inbox):
    user = signed_in(auth, make_user, inbox)
    response, token = generate(client)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    assert token and token.startswith("tl_") and len(token) > 40
    assert "shown only this once" in html

    db.session.expire_all()
    stored = db.session.get(User, user.id)
    assert stored.api_token_hash == hash_api_token(token) and token not in stored.api_token_hash

    fresh = app.test_client()
    assert api_status(fresh, token) == 200
    body = fresh.get("/api/v1/inboxes", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert [i["name"] for i in body["inboxes"]] == ["Support"]

    # Never again: not on the profile page, not on any other page.
    later = client.get("/profile").get_data(as_text=True)
    assert token not in later and "new-api-token" not in later
    assert "You have an API token. It cannot be shown again" in later
    assert token not in client.get("/").get_data(as_text=True)


def test_regenerating_replaces_the_old_token(app, client, auth, make_user, inbox):
    signed_in(auth, make_user, inbox)
    _, first = generate(client)
    _, second = generate(client)
    assert first and second and first != second
    fresh = app.test_client()
    assert api_status(fresh, first) == 401
    assert api_status(fresh, second) == 200


def test_generating_without_csrf_token_is_refused(app, client, auth, make_user, inbox):
    user = signed_in(auth, make_user, inbox)
    _, token = generate(client)
    response = client.post("/profile/api-token", data={})
    assert response.status_code == 400
    assert "tl_" not in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, user.id).api_token_hash == hash_api_token(token)
    assert api_status(app.test_client(), token) == 200


def test_generating_is_a_post(client, auth, make_user, inbox):
    signed_in(auth, make_user, inbox)
    assert client.get("/profile/api-token").status_code == 405


def test_revoking_the_token(app, client, auth, make_user, inbox):
    user = signed_in(auth, make_user, inbox)
    _, token = generate(client)
    page = client.get("/profile").get_data(as_text=True)
    response = client.post("/profile/api-token/revoke", data={"csrf_token": csrf_token_from(page)})
    assert response.status_code == 302
    assert "You have no API token yet." in client.get("/profile").get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, user.id).api_token_hash is None
    assert api_status(app.test_client(), token) == 401


def test_each_users_token_acts_as_that_user(app, client, auth, make_user, inbox):
    from models import Inbox

    db.session.add(Inbox(name="Billing", support_address="billing@example.com"))
    db.session.commit()
    signed_in(auth, make_user, inbox, role="admin")
    _, admin_token = generate(client)
    auth.logout()
    signed_in(auth, make_user, inbox)
    _, agent_token = generate(client)
    fresh = app.test_client()
    names = {
        token: [
            i["name"]
            for i in fresh.get(
                "/api/v1/inboxes", headers={"Authorization": f"Bearer {token}"}
            ).get_json()["inboxes"]
        ]
        for token in (admin_token, agent_token)
    }
    assert names == {admin_token: ["Billing", "Support"], agent_token: ["Support"]}
