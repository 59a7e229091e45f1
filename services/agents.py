"""What admins change about accounts: role, active, password and inbox membership.

The rules that keep a deployment administrable live here, not in the views: nobody
deactivates or demotes themself, and the last active admin stays an active admin.
A change of password or role and a deactivation end every session of that user
(services/sessions.py), so a browser signed in before never carries the old rights.
Each change checks everything before it changes anything and commits itself: a UserError
leaves nothing behind for the views to roll back.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import delete, func, select

from extensions import db
from models import Inbox, InboxMember, User
from models.users import ROLES
from services.passwords import password_problem
from services.sessions import end_sessions
from services.users import UserError, create_user


@dataclass
class AgentRow:
    user: User
    inboxes: list[Inbox]


def generate_password() -> str:
    """About 128 random bits, readable enough to pass on once by hand."""
    return secrets.token_urlsafe(16)


def list_agents() -> list[AgentRow]:
    """Everyone, active first, with their inboxes (two queries whatever the team size)."""
    users = db.session.scalars(select(User).order_by(User.active.desc(), User.name, User.id)).all()
    inboxes = {inbox.id: inbox for inbox in db.session.scalars(select(Inbox))}
    member_of: dict[int, list[Inbox]] = {}
    for inbox_id, user_id in db.session.execute(select(InboxMember.inbox_id, InboxMember.user_id)):
        member_of.setdefault(user_id, []).append(inboxes[inbox_id])
    return [
        AgentRow(user, sorted(member_of.get(user.id, []), key=lambda i: i.name.lower()))
        for user in users
    ]


def create_agent(name: str, email: str, role: str, password: str) -> tuple[User, str | None]:
    """Create an account; an empty password means "generate one" (returned to show once)."""
    generated = None
    if not (password or "").strip():
        generated = password = generate_password()
    return create_user(email, name, password, role=role), generated


def _other_active_admins(user: User) -> int:
    return db.session.scalar(
        select(func.count(User.id)).where(User.role == "admin", User.active, User.id != user.id)
    )


def set_active(actor: User, user: User, active: bool) -> None:
    if not active:
        if user.id == actor.id:
            raise UserError("you cannot deactivate your own account; another admin has to do that")
        if user.is_admin and user.active and not _other_active_admins(user):
            raise UserError(
                f"{user.name} is the last active admin; make someone else an admin first"
            )
    if not active:
        # Reactivation must not revive anything: sessions and the API token go for good.
        end_sessions(user)
        user.api_token_hash = None
    user.active = active
    db.session.commit()


def set_role(actor: User, user: User, role: str) -> None:
    if role not in ROLES:
        raise UserError(f"choose a role: {' or '.join(ROLES)}")
    if user.is_admin and role != "admin":
        if user.id == actor.id:
            raise UserError("you cannot remove your own admin role; another admin has to do that")
        if user.active and not _other_active_admins(user):
            raise UserError(
                f"{user.name} is the last active admin; make someone else an admin first"
            )
    if role != user.role:
        end_sessions(user)
    user.role = role
    db.session.commit()


def reset_password(user: User, password: str, revoke_api_token: bool = True) -> str | None:
    """Set the given password, or generate one when it is empty (returned to show once).
    Every session of the user ends; their API token too unless the admin keeps it."""
    generated = None
    if not password:
        generated = password = generate_password()
    elif weak := password_problem(password, user.email, user.name):
        raise UserError(f"{weak}, or leave the field empty to generate one")
    user.set_password(password)
    end_sessions(user)
    if revoke_api_token:
        user.api_token_hash = None
    db.session.commit()
    return generated


def set_memberships(user: User, inbox_ids: set[int]) -> None:
    """Make `user` a member of exactly these inboxes; unknown ids are an error, not ignored."""
    known = set(db.session.scalars(select(Inbox.id).where(Inbox.id.in_(inbox_ids))))
    if unknown := inbox_ids - known:
        raise UserError(
            f"inbox {', '.join(map(str, sorted(unknown)))} no longer exists; reload the page"
        )
    current = set(
        db.session.scalars(select(InboxMember.inbox_id).where(InboxMember.user_id == user.id))
    )
    if removed := current - inbox_ids:
        db.session.execute(
            delete(InboxMember).where(
                InboxMember.user_id == user.id, InboxMember.inbox_id.in_(removed)
            )
        )
    for inbox_id in sorted(inbox_ids - current):
        db.session.add(InboxMember(inbox_id=inbox_id, user_id=user.id))
    db.session.commit()


def member_inbox_ids(user: User) -> set[int]:
    return set(
        db.session.scalars(select(InboxMember.inbox_id).where(InboxMember.user_id == user.id))
    )
