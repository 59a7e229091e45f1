"""Creating users and making sure an admin exists."""

from __future__ import annotations

import secrets

from sqlalchemy import func, select

from extensions import db
from mail.addresses import is_email_address
from models import User
from models.users import ROLES
from services.passwords import password_problem

DEFAULT_ADMIN_EMAIL = "admin@example.com"


class UserError(ValueError):
    """A user could not be created; the message says what to fix."""


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == email.strip().lower()))


def create_user(email: str, name: str, password: str, role: str = "agent") -> User:
    email = (email or "").strip().lower()
    problems = []
    if not is_email_address(email):
        problems.append(f"{email or '(empty)'!r} is not an email address")
    if not (name or "").strip():
        problems.append("the name is empty")
    if weak := password_problem(password, email, name or ""):
        problems.append(weak)
    if role not in ROLES:
        problems.append(f"role must be one of {', '.join(ROLES)}")
    if not problems and find_user_by_email(email):
        problems.append(f"a user with email {email} already exists")
    if problems:
        raise UserError("; ".join(problems))
    user = User(email=email, name=name.strip(), role=role)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return user


def ensure_admin(email: str, password: str, name: str) -> tuple[User | None, str | None]:
    """Create the first admin when none exists; return (new admin, generated password)."""
    if db.session.scalar(select(func.count(User.id)).where(User.role == "admin")):
        return None, None
    generated = None
    if not password:
        generated = password = secrets.token_urlsafe(16)
    user = create_user(email or DEFAULT_ADMIN_EMAIL, name or "Admin", password, role="admin")
    return user, generated
