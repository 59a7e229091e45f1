"""An archived inbox in the workspace: not offered as a filter (sidebar or select), for agents
and admins alike, while its conversations stay in All, in search and on the contact page, and
a link filtering by it still works and says so."""

from __future__ import annotations

import re

import pytest

from extensions import db
from models import InboxMember, utcnow
from tests.support.workspace import Browser, make_team, quick_conversation


@pytest.fixture
def team(app, inbox, make_user):
    team = make_team(inbox, make_user)
    db.session.add(InboxMember(inbox_id=team.billing.id, user_id=team.bob.id))
    team.billing.archived_at = utcnow()
    db.session.commit()
    return team


@pytest.fixture
def conversations(team):
    support = quick_conversation(team.support, "Printer on fire", email="carla@customer.example")
    billing = quick_conversation(team.billing, "Invoice twice", email="carla@customer.example")
    return support, billing


def page(browser, path: str) -> str:
    response = browser.get(path)
    assert response.status_code == 200, path
    return response.get_data(as_text=True)


def inbox_options(html: str) -> list[str]:
    select = re.search(r'<select name="inbox_id"[^>]*>(.*?)</select>', html, re.S).group(1)
    return re.findall(r'<option value="(\d*)"[^>]*>([^<]*)</option>', select)


def sidebar_inboxes(html: str) -> list[str]:
    aside = re.search(r'<aside id="ws-sidebar".*?</aside>', html, re.S).group(0)
    return re.findall(r'href="/conversations\?inbox_id=(\d+)"', aside)


def listed(html: str) -> set[int]:
    return {int(i) for i in re.findall(r'href="/conversations/(\d+)[?"]', html)}


@pytest.mark.parametrize("who", ["bob", "ana"])  # a member of both inboxes, and an admin
def test_an_archived_inbox_is_no_filter_but_its_conversations_stay(
    client, auth, team, conversations, who
):
    browser = Browser(client, auth).login(getattr(team, who))
    support, billing = conversations

    html = page(browser, "/conversations")
    assert inbox_options(html) == [("", "All inboxes"), (str(team.support.id), "Support")]
    assert sidebar_inboxes(html) == [str(team.support.id)]
    assert listed(html) == {support.id, billing.id}  # All still shows the archived inbox's
    assert 'id="count-all">2<' in html and 'id="count-unassigned">2<' in html

    assert billing.id in listed(page(browser, "/conversations?q=invoice"))
    contact = page(browser, f"/contacts/{billing.contact_id}")
    assert f'href="/conversations/{billing.id}"' in contact

    # A link filtering by the archived inbox still works, and the filter shows it selected.
    html = page(browser, f"/conversations?inbox_id={team.billing.id}")
    assert listed(html) == {billing.id}
    assert inbox_options(html)[-1] == (str(team.billing.id), "Billing (archived)")
    assert f'<option value="{team.billing.id}" selected>Billing (archived)</option>' in html
    assert sidebar_inboxes(html) == [str(team.support.id)]


def test_with_only_archived_inboxes_the_sidebar_says_so(client, auth, team):
    team.support.archived_at = utcnow()
    db.session.commit()
    html = page(Browser(client, auth).login(team.bob), "/conversations")
    assert sidebar_inboxes(html) == [] and inbox_options(html) == [("", "All inboxes")]
    assert "Every inbox you can see is archived." in html
    assert "You are not a member of any inbox yet" not in html
