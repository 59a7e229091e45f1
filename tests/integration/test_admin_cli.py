"""`flask admin create` and `flask admin ensure`, checked through the database and real sign-in."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app import create_app
from extensions import db
from models import User

GENERATED = re.compile(r"^Generated password \(shown only now\): (\S+)$", re.M)


def users() -> list[User]:
    db.session.expire_all()  # rows written by another app context or the CLI
    return list(db.session.scalars(select(User).order_by(User.id)))


def create_args(**options: str) -> list[str]:
    values = {"email": "ana@example.com", "password": "correct horse", "name": "Ana", **options}
    args = ["admin", "create"]
    for key, value in values.items():
        args += [f"--{key}", value]
    return args


def ensure_with(app_config: dict, **settings: str):
    """Run `flask admin ensure` in an app built with extra ADMIN_* settings (same DB, Redis)."""
    other = create_app({**app_config, **settings})
    # Pushed explicitly: with the `app` fixture's context active, Flask's with_appcontext
    # would otherwise run the command in that app, with its settings.
    with other.app_context():
        return other.test_cli_runner().invoke(args=["admin", "ensure"])


# --- admin create ----------------------------------------------------------------------------


def test_create_admin_who_can_sign_in(runner, auth, client):
    result = runner.invoke(args=create_args(email=" Ana@Example.com ", name=" Ana Admin "))
    assert result.exit_code == 0, result.output
    assert result.output == "Created admin ana@example.com.\n"
    [user] = users()
    assert (user.email, user.name, user.role) == ("ana@example.com", "Ana Admin", "admin")
    assert "correct horse" not in user.password_hash
    response = auth.login("ana@example.com", "correct horse")
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_create_agent(runner):
    result = runner.invoke(args=create_args(role="agent"))
    assert result.exit_code == 0, result.output
    assert result.output == "Created agent ana@example.com.\n"
    assert [u.role for u in users()] == ["agent"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"email": "not-an-email"}, "'not-an-email' is not an email address"),
        ({"email": ""}, "'(empty)' is not an email address"),
        ({"password": "short"}, "the password must have at least 12 characters"),
        ({"name": "   "}, "the name is empty"),
    ],
)
def test_create_refuses_bad_input_with_what_to_fix(runner, options, message):
    result = runner.invoke(args=create_args(**options))
    assert result.exit_code == 1
    assert f"Error: cannot create the user: {message}" in result.output
    assert "Traceback" not in result.output
    assert users() == []


def test_create_reports_every_bad_input_at_once(runner):
    result = runner.invoke(args=create_args(email="nope", password="short", name=""))
    assert result.exit_code == 1
    assert (
        "cannot create the user: 'nope' is not an email address; the name is empty; "
        "the password must have at least 12 characters"
    ) in result.output
    assert users() == []


def test_create_refuses_an_unknown_role(runner):
    result = runner.invoke(args=create_args(role="owner"))
    assert result.exit_code == 2
    assert "Invalid value for '--role'" in result.output
    assert "'admin', 'agent'" in result.output
    assert users() == []


@pytest.mark.parametrize("missing", ["email", "password", "name"])
def test_create_requires_every_option(runner, missing):
    args = create_args()
    at = args.index(f"--{missing}")
    del args[at : at + 2]
    result = runner.invoke(args=args)
    assert result.exit_code == 2
    assert f"Missing option '--{missing}'" in result.output
    assert users() == []


def test_create_refuses_a_duplicate_email(runner, auth):
    assert runner.invoke(args=create_args()).exit_code == 0
    result = runner.invoke(args=create_args(email="ANA@example.com", password="another pass"))
    assert result.exit_code == 1
    assert "cannot create the user: a user with email ana@example.com already exists" in (
        result.output
    )
    assert len(users()) == 1
    # The first account is untouched: its password still works, the second one does not.
    assert auth.login("ana@example.com", "another pass").status_code == 401
    assert auth.login("ana@example.com", "correct horse").status_code == 302


# --- admin ensure ----------------------------------------------------------------------------


def test_ensure_generates_a_password_once_and_it_signs_in(runner, auth, client):
    result = runner.invoke(args=["admin", "ensure"])
    assert result.exit_code == 0, result.output
    assert "Created the first admin: admin@example.com" in result.output
    passwords = GENERATED.findall(result.output)
    assert len(passwords) == 1, result.output
    password = passwords[0]
    assert len(password) >= 16

    [admin] = users()
    assert (admin.email, admin.role, admin.name) == ("admin@example.com", "admin", "Admin")
    assert password not in admin.password_hash

    response = auth.login("admin@example.com", password)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert client.get("/").status_code == 200

    again = runner.invoke(args=["admin", "ensure"])
    assert again.exit_code == 0, again.output
    assert again.output == ""  # nothing created, no password printed
    assert password not in again.output
    assert [u.id for u in users()] == [admin.id]
    assert auth.logout().status_code == 302
    assert auth.login("admin@example.com", password).status_code == 302  # unchanged


def test_ensure_uses_admin_email_password_and_name(app, app_config, auth):
    result = ensure_with(
        app_config,
        ADMIN_EMAIL="Boss@Example.com",
        ADMIN_PASSWORD="boss password 1",
        ADMIN_NAME="Bea Boss",
    )
    assert result.exit_code == 0, result.output
    assert result.output == "Created the first admin: boss@example.com\n"
    [admin] = users()
    assert (admin.email, admin.name, admin.role) == ("boss@example.com", "Bea Boss", "admin")
    assert auth.login("boss@example.com", "boss password 1").status_code == 302

    again = ensure_with(
        app_config, ADMIN_EMAIL="other@example.com", ADMIN_PASSWORD="other password 2"
    )
    assert again.exit_code == 0, again.output
    assert again.output == ""
    assert [u.email for u in users()] == ["boss@example.com"]


def test_ensure_creates_nothing_when_an_admin_already_exists(runner, make_user):
    make_user(email="first@example.com", role="admin")
    result = runner.invoke(args=["admin", "ensure"])
    assert result.exit_code == 0, result.output
    assert result.output == ""
    assert [u.email for u in users()] == ["first@example.com"]


def test_ensure_creates_an_admin_when_only_agents_exist(runner, make_user):
    make_user(email="agent@example.com", role="agent")
    result = runner.invoke(args=["admin", "ensure"])
    assert result.exit_code == 0, result.output
    assert len(GENERATED.findall(result.output)) == 1
    assert sorted((u.email, u.role) for u in users()) == [
        ("admin@example.com", "admin"),
        ("agent@example.com", "agent"),
    ]


def test_ensure_explains_when_admin_email_belongs_to_an_agent(app, app_config, make_user):
    make_user(email="ana@example.com", role="agent")
    result = ensure_with(
        app_config, ADMIN_EMAIL="ana@example.com", ADMIN_PASSWORD="ana password 12"
    )
    assert result.exit_code == 1
    assert (
        "Error: cannot create the first admin: a user with email ana@example.com already exists"
        in result.output
    )
    assert "Traceback" not in result.output
    assert [(u.email, u.role) for u in users()] == [("ana@example.com", "agent")]


def test_reset_2fa_turns_it_off_and_ends_sessions(app, runner, make_user):
    from datetime import UTC, datetime

    import pyotp

    from models import UserSession

    user = make_user(email="lost@example.com")
    user.totp_secret = pyotp.random_base32()
    user.totp_enabled_at = datetime.now(UTC)
    db.session.add(
        UserSession(
            token_hash="a" * 64, user_id=user.id, expires_at=datetime(2999, 1, 1, tzinfo=UTC)
        )
    )
    db.session.commit()
    result = runner.invoke(args=["admin", "reset-2fa", "Lost@Example.com"])
    assert result.exit_code == 0, result.output
    assert "Two-factor sign-in is off for lost@example.com" in result.output
    db.session.refresh(user)
    assert not user.has_two_factor and user.totp_secret is None
    assert db.session.query(UserSession).filter_by(user_id=user.id).count() == 0

    again = runner.invoke(args=["admin", "reset-2fa", "lost@example.com"])
    assert again.exit_code == 0 and "nothing changed" in again.output
    missing = runner.invoke(args=["admin", "reset-2fa", "nobody@example.com"])
    assert missing.exit_code == 1
    assert "Error: no user has the email nobody@example.com" in missing.output
