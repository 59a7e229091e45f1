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
