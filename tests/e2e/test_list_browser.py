"""The conversation list in Chromium: bulk assign and bulk resolve from the tick boxes, a
thread action redrawing its row at once (the poll blocked, so only the action's own answer
can), "resolve and open the next one", and the home page (the queue, the setup checklist).

Screenshots (1280 and 390 px, with the no-sideways-scroll and axe checks of
tests/support/screens.py): list, list-selected, home, home-setup."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from extensions import db
from models import Conversation, Inbox, InboxMember, utcnow
from tests.support.screens import check_both_widths
from tests.support.workspace import quick_conversation

pytestmark = pytest.mark.e2e
AT_ONCE = 1_000  # ms: well before the list's 5 s poll could have redrawn anything
POLL = 12_000  # ms: the list polls every 5 s


@pytest.fixture
def agent(support, make_user):
    user = make_user(email="ana@example.com", name="Ana Agent")
    colleague = make_user(email="cleo@example.com", name="Cleo Colleague")
    for member in (user, colleague):
        db.session.add(InboxMember(inbox_id=support.id, user_id=member.id))
    db.session.commit()
    user.colleague = colleague
    return user


def three(support):
    now = utcnow()
    subjects = ("Printer on fire", "Refund for order 1042", "Cannot log in")
    return [
        quick_conversation(
            support, subject, at=now - timedelta(minutes=n), text=f"About {subject.lower()}."
        )
        for n, subject in enumerate(subjects)
    ]


def statuses(*conversations) -> list[str]:
    db.session.expire_all()
    return [db.session.get(Conversation, c.id).status for c in conversations]


def no_poll(page) -> None:
    """The list's 5 s poll never answers: whatever the list shows came from the action."""
    page.route(re.compile(r".*/conversations/updates.*"), lambda route: route.abort())


def test_bulk_assign_and_bulk_resolve(page, sign_in, agent, support, tmp_path):
    printer, refund, login = three(support)
    sign_in(agent.email, agent.plain_password)
    page.goto("/conversations")
    no_poll(page)
    bar = page.locator("#bulk-form")
    expect(bar.get_by_role("button", name="Assign")).to_be_hidden()  # nothing ticked yet
    check_both_widths(page, tmp_path, "list")

    page.get_by_role("checkbox", name=re.compile("Printer on fire")).check()
    page.get_by_role("checkbox", name=re.compile("Refund for order")).check()
    expect(bar.locator("[data-selected-count]")).to_have_text("2 selected")
    bar.locator("summary", has_text="Assign").click()
    page.get_by_label("Assign the selected to").select_option(label="Ana Agent (me)")
    check_both_widths(page, tmp_path, "list-selected")
    bar.get_by_role("button", name="Assign", exact=True).click()
    expect(page.locator("#bulk-result")).to_have_text("Assigned 2 conversations.", timeout=AT_ONCE)
    for conversation in (printer, refund):
        assignee = page.locator(f"#row-{conversation.id} .conv-assignee")
        expect(assignee).to_contain_text("Assigned to Ana Agent")
        expect(assignee.locator(".avatar")).to_have_text("AA")
    expect(page.locator(f"#row-{login.id} .conv-assignee")).to_have_text("Unassigned")
    expect(page.locator("#count-mine")).to_have_text("2")
    expect(bar.locator("[data-selected-count]")).to_have_text("Select all")  # list redrawn

    # Select all, untick one, resolve the other two.
    bar.get_by_label("Select all").check()
    page.get_by_role("checkbox", name=re.compile("Cannot log in")).uncheck()
    expect(bar.locator("[data-selected-count]")).to_have_text("2 selected")
    bar.locator("summary", has_text="Status").click()
    bar.get_by_role("button", name="Resolve").click()
    expect(page.locator("#bulk-result")).to_have_text("Resolved 2 conversations.", timeout=AT_ONCE)
    expect(page.locator(".conv-row")).to_have_count(1)  # the open list keeps only the third
    expect(page.locator(f"#row-{login.id}")).to_be_visible()
    expect(page.locator("#count-all")).to_have_text("1")
    assert statuses(printer, refund, login) == ["resolved", "resolved", "open"]


def test_a_refused_bulk_action_says_which_conversation(page, sign_in, agent, support):
    other = Inbox(name="Billing", support_address="billing@example.com")
    db.session.add(other)
    db.session.commit()
    admin_only = quick_conversation(other, "Invoice question")
    ours = quick_conversation(support, "Our own")
    # As an admin, Ana sees both inboxes; Cleo is a member of Support only.
    agent.role = "admin"
    db.session.commit()
    sign_in(agent.email, agent.plain_password)
    page.goto("/conversations")
    page.locator(f"#row-{admin_only.id} .row-select").check()
    page.locator(f"#row-{ours.id} .row-select").check()
    bar = page.locator("#bulk-form")
    bar.locator("summary", has_text="Assign").click()
    page.get_by_label("Assign the selected to").select_option(label="Cleo Colleague")
    bar.get_by_role("button", name="Assign", exact=True).click()
    result = page.locator("#bulk-result .error")
    expect(result).to_contain_text(f"#{admin_only.display_number} “Invoice question”")
    expect(result).to_contain_text("Cleo Colleague is not a member")
    expect(result).to_contain_text("Nothing was changed.")
    expect(page.locator(f"#row-{ours.id} .conv-assignee")).to_have_text("Unassigned")


def test_a_thread_action_redraws_its_row_at_once(page, sign_in, agent, support):
    printer, refund, _ = three(support)
    sign_in(agent.email, agent.plain_password)
    page.goto(f"/conversations/{refund.id}")
    no_poll(page)
    row = page.locator(f"#row-{refund.id}")
    expect(row.locator("[data-row-status]")).to_have_text("Open")

    page.locator("#menu-status summary").click()
    page.locator("#menu-status").get_by_role("button", name="Pending", exact=True).click()
    expect(row.locator("[data-row-status]")).to_have_text("Pending", timeout=AT_ONCE)
    expect(row).to_have_class(re.compile(r"\bcurrent\b"))

    page.locator("#thread-controls summary", has_text="Assign").click()
    page.locator("#thread-controls").get_by_role("button", name="Ana Agent (me)").click()
    expect(row.locator(".conv-assignee .avatar")).to_have_text("AA", timeout=AT_ONCE)
    expect(page.locator(f"#row-{printer.id} .conv-assignee")).to_have_text("Unassigned")


def test_resolve_opens_the_next_conversation_of_the_list(page, sign_in, agent, support):
    printer, refund, login = three(support)
    sign_in(agent.email, agent.plain_password)
    page.goto(f"/conversations/{printer.id}")
    expect(page.locator("#open-conversation")).to_have_value(str(printer.id))
    page.locator("body").press("e")  # resolve, then on to the next one of the list
    expect(page.locator("#open-conversation")).to_have_value(str(refund.id), timeout=AT_ONCE)
    expect(page).to_have_url(re.compile(rf"/conversations/{refund.id}$"))
    expect(page.locator(f"#row-{printer.id}")).to_have_count(0)  # gone from the open list
    expect(page.locator(f"#row-{refund.id}")).to_have_class(re.compile(r"\bcurrent\b"))
    # The header's Resolve button does the same.
    page.locator("#thread-controls").get_by_role("button", name="Resolve", exact=True).click()
    expect(page.locator("#open-conversation")).to_have_value(str(login.id))
    page.locator("body").press("e")
    expect(page.locator("[data-no-thread]")).to_contain_text("All done here")
    expect(page).to_have_url(re.compile(r"/conversations$"))
    expect(page.locator(".conv-row")).to_have_count(0)
    assert statuses(printer, refund, login) == ["resolved"] * 3


def test_home_is_the_queue(page, sign_in, agent, support, tmp_path):
    mine = quick_conversation(support, "Printer on fire", assignee=agent)
    quick_conversation(support, "Waiting for someone")
    sign_in(agent.email, agent.plain_password)
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your queue")
    expect(page.locator("#queue-mine")).to_have_text("1")
    expect(page.locator("#queue-unassigned")).to_have_text("1")
    check_both_widths(page, tmp_path, "home")
    page.get_by_role("link", name=re.compile("Printer on fire")).click()
    expect(page).to_have_url(re.compile(rf"/conversations/{mine.id}\?assignee=me$"))


def test_a_fresh_install_shows_the_setup_checklist(page, sign_in, make_user, tmp_path):
    admin = make_user(email="root@example.com", name="Root Admin", role="admin")
    sign_in(admin.email, admin.plain_password)
    page.goto("/")
    checklist = page.get_by_role("list", name="Setup checklist")
    expect(checklist).to_be_visible()
    check_both_widths(page, tmp_path, "home-setup")
    checklist.get_by_role("link", name="Start the setup wizard").click()
    expect(page).to_have_url(re.compile(r"/admin/inboxes/new$"))


def test_ticked_rows_survive_the_list_being_redrawn(page, sign_in, agent, support):
    printer, refund, _ = three(support)
    sign_in(agent.email, agent.plain_password)
    page.goto("/conversations")
    page.locator(f"#row-{refund.id} .row-select").check()
    newcomer = quick_conversation(support, "Just arrived")  # the poll redraws the list
    expect(page.locator(f"#row-{newcomer.id}")).to_have_count(1, timeout=POLL)
    expect(page.locator(f"#row-{refund.id} .row-select")).to_be_checked()
    expect(page.locator(f"#row-{printer.id} .row-select")).not_to_be_checked()
    expect(page.locator("#bulk-form [data-selected-count]")).to_have_text("1 selected")
