"""Fixtures shared by the integration tests."""

import pytest


@pytest.fixture
def extra_settings(request):
    """Settings a test adds through `@pytest.mark.parametrize(..., indirect=True)`."""
    return getattr(request, "param", {})


@pytest.fixture
def agent(inbox, make_user):
    """An agent who is a member of `inbox`."""
    from extensions import db
    from models import InboxMember

    user = make_user(name="Ana Agent")
    db.session.add(InboxMember(inbox_id=inbox.id, user_id=user.id))
    db.session.commit()
    return user


@pytest.fixture
def team(app, inbox, make_user):
    """Support (Bob's inbox) and Billing (Olga's), Ana the admin: tests/support/workspace.py's
    make_team. Files whose people differ define their own `team`, which wins."""
    from tests.support.workspace import make_team

    return make_team(inbox, make_user)


@pytest.fixture
def bob(client, auth, team):
    """Bob, signed in: a Browser (tests/support/workspace.py) on the shared client."""
    from tests.support.workspace import Browser

    return Browser(client, auth).login(team.bob)


def fresh(conversation):
    """The conversation as the database has it now (not the session's copy)."""
    from extensions import db
    from models import Conversation

    db.session.expire_all()
    return db.session.get(Conversation, conversation.id)
