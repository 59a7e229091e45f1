"""Admin Agents pages: list, create, role, deactivate, password reset, inbox membership, and who
may use them. Every change goes through the real forms with the page's CSRF token."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from extensions import db
from models import InboxMember, User
from services import agents as agent_service
from services.users import UserError
from tests.conftest import AuthActions, csrf_token_from
from tests.support.workspace import Browser, make_team


@pytest.fixture
def team(app, inbox, make_user):
    return make_team(inbox, make_user)


@pytest.fixture
def admin(client, auth, team):
    """Ana (admin) signed in."""
    return Browser(client, auth).login(team.ana)


def fresh(user: User) -> User:
    db.session.expire_all()
    return db.session.get(User, user.id)


def can_sign_in(app, email: str, password: str) -> bool:
    """Through the real login form, in a separate browser. Its own app context: requests
    share the test's context otherwise, and Flask-Login caches the signed-in user in `g`."""
    with app.app_context():
        response = AuthActions(app.test_client()).login(email, password)
    return response.status_code == 302


def is_fragment(response) -> bool:
    return "<html" not in response.get_data(as_text=True)


def row_of(html: str, user) -> str:
    return re.search(rf'<tr id="agent-{user.id}".*?</tr>', html, re.S).group(0)


def text(response) -> str:
    return response.get_data(as_text=True)


# --- the list --------------------------------------------------------------------------------


def test_list_shows_everyone_with_role_status_and_inboxes(admin, team, make_user):
    gone = make_user(email="gone@staff.example", name="Gil Gone")
    gone.active = False
    db.session.commit()

    page = admin.get("/admin/agents")
    assert page.status_code == 200 and not is_fragment(page)
    html = text(page)
    bob_row = row_of(html, team.bob)
    assert "bob@staff.example" in bob_row and "Agent" in bob_row and "Support" in bob_row
    assert "active" in bob_row and "Billing" not in bob_row
    gil_row = row_of(html, gone)
    assert "deactivated" in gil_row
    ana_row = row_of(html, team.ana)
    assert "Admin" in ana_row and "(you)" in ana_row
    # Active people come first; the deactivated one last.
    assert html.index(f'id="agent-{gone.id}"') > html.index(f'id="agent-{team.olga.id}"')

    fragment = admin.get("/admin/agents", htmx=True)
    assert fragment.status_code == 200 and is_fragment(fragment)
    assert text(fragment).startswith('<div id="agents">')
    assert "HX-Request" in fragment.headers["Vary"]


# --- create ----------------------------------------------------------------------------------


def test_create_with_a_chosen_password(app, admin):
    response = admin.post(
        "/admin/agents",
        {
            "name": " Cleo Clerk ",
            "email": "Cleo@Staff.example",
            "role": "agent",
            "password": "cleo-password-1",
        },
    )
    assert response.status_code == 201 and is_fragment(response)
    assert "Created agent <strong>Cleo Clerk</strong>" in text(response)
    assert "created-password" not in text(response)  # nothing generated, nothing shown
    user = db.session.scalar(select(User).where(User.email == "cleo@staff.example"))
    assert (user.name, user.role, user.active) == ("Cleo Clerk", "agent", True)
    assert can_sign_in(app, "cleo@staff.example", "cleo-password-1")


def test_create_with_a_generated_password_shows_it_once(app, admin):
    response = admin.post(
        "/admin/agents",
        {"name": "Dan Admin", "email": "dan@staff.example", "role": "admin", "password": ""},
        htmx=False,
    )
    assert response.status_code == 201 and not is_fragment(response)
    assert response.headers["Cache-Control"] == "no-store"
    password = re.search(r'id="created-password"[^>]*value="([^"]+)"', text(response)).group(1)
    assert len(password) >= 12
    assert can_sign_in(app, "dan@staff.example", password)
    assert fresh(db.session.scalar(select(User).where(User.email == "dan@staff.example"))).is_admin
    assert password not in text(admin.get("/admin/agents"))  # shown once only


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"email": "bob@staff.example"}, "a user with email bob@staff.example already exists"),
        ({"email": "not-an-address"}, "is not an email address"),
        ({"password": "short"}, "the password must have at least 12 characters"),
        ({"name": "  "}, "the name is empty"),
        ({"role": "owner"}, "role must be one of admin, agent"),
    ],
)
def test_create_refuses_bad_input_and_keeps_the_form(admin, form, message):
    before = db.session.scalar(select(db.func.count(User.id)))
    values = {
        "name": "Eve Example",
        "email": "eve@staff.example",
        "role": "agent",
        "password": "good-password",
        **form,
    }
    response = admin.post("/admin/agents", values)
    assert response.status_code == 422 and is_fragment(response)
    html = text(response)
    assert "Could not create the account:" in html and message in html
    assert f'value="{values["email"]}"' in html  # input kept, to fix and resend
    assert 'value="good-password"' not in html  # a password is never echoed back
    assert db.session.scalar(select(db.func.count(User.id))) == before

    full = admin.post("/admin/agents", values, htmx=False)
    assert full.status_code == 422 and not is_fragment(full) and message in text(full)


# --- deactivate, role ------------------------------------------------------------------------


def test_deactivate_and_reactivate(app, admin, team):
    response = admin.post(f"/admin/agents/{team.bob.id}/active", {"active": "0"})
    assert response.status_code == 200 and is_fragment(response)
    assert "is deactivated and can no longer sign in" in text(response)
    assert not fresh(team.bob).active
    assert not can_sign_in(app, team.bob.email, team.bob.plain_password)

    # Without htmx: Post/Redirect/Get, the notice flashed on the page.
    response = admin.post(f"/admin/agents/{team.bob.id}/active", {"active": "1"}, htmx=False)
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/admin/agents/{team.bob.id}")
    assert "Bob Agent can sign in again." in text(admin.get(f"/admin/agents/{team.bob.id}"))
    assert fresh(team.bob).active
    assert can_sign_in(app, team.bob.email, team.bob.plain_password)


def test_admin_cannot_deactivate_or_demote_themself(admin, team):
    response = admin.post(f"/admin/agents/{team.ana.id}/active", {"active": "0"})
    assert response.status_code == 422
    assert "you cannot deactivate your own account; another admin has to do that" in text(response)
    response = admin.post(f"/admin/agents/{team.ana.id}/role", {"role": "agent"})
    assert response.status_code == 422
    assert "you cannot remove your own admin role" in text(response)
    ana = fresh(team.ana)
    assert ana.active and ana.is_admin


def test_change_role_both_ways(app, admin, team):
    response = admin.post(f"/admin/agents/{team.bob.id}/role", {"role": "admin"})
    assert response.status_code == 200 and "Bob Agent is now an admin." in text(response)
    assert fresh(team.bob).is_admin
    with app.app_context():  # Bob's own browser (see can_sign_in)
        other = app.test_client()
        bob = Browser(other, AuthActions(other)).login(team.bob)
        assert bob.get("/admin/agents").status_code == 200

    response = admin.post(f"/admin/agents/{team.bob.id}/role", {"role": "agent"})
    assert response.status_code == 200 and not fresh(team.bob).is_admin
    with app.app_context():  # a role change ends Bob's sessions: he signs in again
        assert bob.get("/admin/agents").status_code == 302
    with app.app_context():
        bob = Browser(other, AuthActions(other)).login(team.bob)
        assert bob.get("/admin/agents").status_code == 403

    response = admin.post(f"/admin/agents/{team.bob.id}/role", {"role": "root"})
    assert response.status_code == 422 and "choose a role: admin or agent" in text(response)


def test_the_last_active_admin_stays_an_active_admin(app, team):
    """Through the service: with the views, the acting admin is always another active admin,
    so this rule is the net under the self-rules (and for any future caller)."""
    with pytest.raises(UserError, match="Ana Admin is the last active admin"):
        agent_service.set_active(team.bob, team.ana, False)
    with pytest.raises(UserError, match="Ana Admin is the last active admin"):
        agent_service.set_role(team.bob, team.ana, "agent")
    db.session.rollback()
    assert fresh(team.ana).active and fresh(team.ana).is_admin

    # With a second active admin the first may go.
    agent_service.set_role(team.ana, team.bob, "admin")
    agent_service.set_active(team.bob, team.ana, False)
    assert not fresh(team.ana).active
    # A deactivated admin does not count: Bob is now the last active one.
    with pytest.raises(UserError, match="Bob Agent is the last active admin"):
        agent_service.set_role(team.olga, team.bob, "agent")


# --- password --------------------------------------------------------------------------------


def test_reset_password_generated_is_shown_once(app, admin, team):
    response = admin.post(f"/admin/agents/{team.bob.id}/password", {"password": ""})
    assert response.status_code == 200 and is_fragment(response)
    assert response.headers["Cache-Control"] == "no-store"
    password = re.search(r'id="new-password"[^>]*value="([^"]+)"', text(response)).group(1)
    assert can_sign_in(app, team.bob.email, password)
    assert not can_sign_in(app, team.bob.email, team.bob.plain_password)
    assert password not in text(admin.get(f"/admin/agents/{team.bob.id}"))


def test_reset_password_to_a_chosen_one(app, admin, team):
    response = admin.post(f"/admin/agents/{team.bob.id}/password", {"password": "short"})
    assert response.status_code == 422
    assert "the password must have at least 12 characters" in text(response)
    assert can_sign_in(app, team.bob.email, team.bob.plain_password)  # unchanged

    response = admin.post(
        f"/admin/agents/{team.bob.id}/password", {"password": "bob-new-password"}, htmx=False
    )
    assert response.status_code == 303
    assert "password is changed" in text(admin.get(f"/admin/agents/{team.bob.id}"))
    assert can_sign_in(app, team.bob.email, "bob-new-password")


# --- inbox membership ------------------------------------------------------------------------


def memberships(user) -> set[int]:
    db.session.expire_all()
    return set(
        db.session.scalars(select(InboxMember.inbox_id).where(InboxMember.user_id == user.id))
    )


def test_inbox_membership_checkboxes(admin, team):
    page = text(admin.get(f"/admin/agents/{team.bob.id}"))
    assert re.search(rf'value="{team.support.id}" checked> Support', page)
    assert re.search(rf'value="{team.billing.id}"> Billing', page)

    both = {"inbox_ids": [str(team.support.id), str(team.billing.id)]}
    response = admin.post(f"/admin/agents/{team.bob.id}/inboxes", both)
    assert response.status_code == 200 and "inboxes are saved" in text(response)
    assert memberships(team.bob) == {team.support.id, team.billing.id}
    assert memberships(team.olga) == {team.billing.id}  # nobody else touched

    response = admin.post(f"/admin/agents/{team.bob.id}/inboxes", {"inbox_ids": []})
    assert response.status_code == 200 and memberships(team.bob) == set()

    for bad, message in (("999999", "no longer exists"), ("x", "Tick inboxes from the list.")):
        response = admin.post(f"/admin/agents/{team.bob.id}/inboxes", {"inbox_ids": [bad]})
        assert response.status_code == 422 and message in text(response)
    assert memberships(team.bob) == set()


# --- who may ---------------------------------------------------------------------------------


def agent_routes(user_id: int) -> list[tuple[str, str, dict]]:
    return [
        ("GET", "/admin/agents", {}),
        ("POST", "/admin/agents", {"name": "X", "email": "x@staff.example", "role": "admin"}),
        ("GET", f"/admin/agents/{user_id}", {}),
        ("POST", f"/admin/agents/{user_id}/role", {"role": "agent"}),
        ("POST", f"/admin/agents/{user_id}/active", {"active": "0"}),
        ("POST", f"/admin/agents/{user_id}/password", {"password": ""}),
        ("POST", f"/admin/agents/{user_id}/inboxes", {"inbox_ids": []}),
    ]


def test_agents_get_403_everywhere(client, auth, team):
    bob = Browser(client, auth).login(team.bob)
    for method, path, data in agent_routes(team.ana.id):
        response = bob.get(path) if method == "GET" else bob.post(path, data)
        assert response.status_code == 403, (method, path)
    assert fresh(team.ana).active and fresh(team.ana).is_admin
    assert db.session.scalar(select(User).where(User.email == "x@staff.example")) is None


def test_anonymous_is_sent_to_sign_in(client, team):
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    for method, path, data in agent_routes(team.ana.id):
        if method == "GET":
            response = client.get(path)
        else:
            response = client.post(path, data={**data, "csrf_token": token})
        assert response.status_code == 302, (method, path)
        assert "/login" in response.headers["Location"]


def test_posts_without_csrf_token_are_refused(admin, team):
    for method, path, data in agent_routes(team.bob.id):
        if method == "POST":
            response = admin.post(path, data, csrf=False)
            assert response.status_code == 400, path
            assert "Form expired" in text(response)
    assert fresh(team.bob).active and not fresh(team.bob).is_admin


def test_unknown_agent_is_a_clear_404(admin):
    response = admin.get("/admin/agents/999999")
    assert response.status_code == 404 and "No such agent" in text(response)
    response = admin.post("/admin/agents/999999/active", {"active": "0"})
    assert response.status_code == 404
