"""Saved replies in a real headless Chromium: the management page (create, edit, delete) and
the composer's picker (the button with its filter box, and "/" typed in the text), which
inserts a reply with its variables filled in at the caret.

Screenshots (1280 and 390 px, with the no-sideways-scroll and axe checks), in $TEST_ARTIFACTS
or the test's tmp_path: saved-replies-*.png (the management page), saved-replies-edit-*.png
and saved-replies-picker-*.png (the picker open in the composer).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from extensions import db
from models import SavedReply
from tests.support.screens import check_both_widths
from tests.support.workspace import make_team, quick_conversation

pytestmark = pytest.mark.e2e


@pytest.fixture
def team(app, make_user):
    from models import Inbox

    support = Inbox(name="Support", support_address="support@example.com")
    db.session.add(support)
    db.session.commit()
    return make_team(support, make_user)


def add(name, body, inbox=None, owner=None):
    reply = SavedReply(
        name=name,
        body=body,
        inbox_id=inbox.id if inbox else None,
        owner_id=owner.id if owner else None,
    )
    db.session.add(reply)
    db.session.commit()
    return reply


@pytest.fixture
def library(team):
    return {
        "thanks": add("Thanks for writing", "Hi {{contact.first_name}},\n\nThanks for writing!"),
        "refund": add(
            "Refund started",
            "Hi {{contact.name}}, the refund for #{{conversation.number}} "
            "({{conversation.subject}}) is on its way.\n\n{{agent.first_name}}, {{inbox.name}}",
            inbox=team.support,
        ),
        "invoice": add("Invoice copy", "Your invoice is attached.", inbox=team.billing),
        "signoff": add("Sign-off", "Cheers,\n{{agent.name}}", owner=team.bob),
    }


def test_admin_creates_edits_and_deletes_saved_replies(page, sign_in, team, library, tmp_path):
    sign_in(team.ana.email, team.ana.plain_password)
    page.goto("/saved-replies")
    expect(page.get_by_role("heading", level=1)).to_have_text("Saved replies")
    expect(page.get_by_role("heading", name=re.compile("For everyone"))).to_be_visible()
    expect(page.get_by_role("heading", name=re.compile("Billing inbox"))).to_be_visible()
    expect(page.locator(".sr-item", has_text="Refund started")).to_be_visible()

    # Create, shared with the Support inbox.
    page.get_by_label("Name").fill("Password reset")
    page.get_by_label("Text").fill("Hi {{contact.first_name}}, use the link to reset it.")
    page.get_by_label("Who can use it").select_option(label="Members of the Support inbox")
    page.get_by_role("button", name="Create saved reply").click()
    expect(page.locator(".flash")).to_contain_text("Saved “Password reset”")
    support_group = page.locator(".sr-group", has_text="Support inbox")
    expect(support_group.locator(".sr-item", has_text="Password reset")).to_be_visible()
    check_both_widths(page, tmp_path, "saved-replies")

    # Edit it: a new name and text, moved to everyone.
    page.get_by_role("link", name="Edit Password reset").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Password reset")
    check_both_widths(page, tmp_path, "saved-replies-edit")
    page.get_by_label("Name").fill("Reset your password")
    page.get_by_label("Text").fill("Hi {{contact.first_name}}, here is how.")
    page.get_by_label("Who can use it").select_option(label="Everyone, in every inbox")
    page.get_by_role("button", name="Save changes").click()
    everyone = page.locator(".sr-group", has_text="For everyone")
    expect(everyone.locator(".sr-item", has_text="Reset your password")).to_contain_text(
        "here is how"
    )
    expect(page.locator(".sr-item", has_text="Password reset")).to_have_count(0)

    # A form with mistakes says what to fix, at the field.
    page.get_by_role("button", name="Create saved reply").click()
    expect(page.get_by_text("the name is empty")).to_be_visible()
    expect(page.get_by_label("Name")).to_have_attribute("aria-invalid", "true")

    # Delete asks first.
    page.goto("/saved-replies")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete Reset your password").click()
    expect(page.locator(".flash")).to_contain_text("Deleted “Reset your password”")
    expect(page.locator(".sr-item", has_text="Reset your password")).to_have_count(0)
    assert db.session.scalar(select(SavedReply).where(SavedReply.name.like("Reset%"))) is None


def test_agent_manages_only_their_own(page, sign_in, team, library):
    sign_in(team.bob.email, team.bob.plain_password)
    page.goto("/saved-replies")
    expect(page.locator(".sr-item", has_text="Refund started")).to_be_visible()
    expect(page.get_by_role("link", name="Edit Refund started")).to_have_count(0)
    expect(page.locator(".sr-item", has_text="Invoice copy")).to_have_count(0)
    expect(page.get_by_label("Who can use it")).to_have_count(0)
    page.get_by_label("Name").fill("Follow-up")
    page.get_by_label("Text").fill("Any news, {{contact.first_name}}?")
    page.get_by_role("button", name="Create saved reply").click()
    mine = page.locator(".sr-group", has_text="Yours alone")
    expect(mine.locator(".sr-item", has_text="Follow-up")).to_be_visible()
    expect(mine.get_by_role("link", name="Edit Follow-up")).to_be_visible()


def open_conversation(page, sign_in, team):
    conversation = quick_conversation(
        team.support, "Refund for order 1042", email="carla@customer.example", name="Carla Jones"
    )
    sign_in(team.bob.email, team.bob.plain_password)
    page.goto(f"/conversations/{conversation.id}")
    text = page.locator("textarea[data-composer-text]")
    expect(text).to_be_visible()
    return conversation, text


def test_picker_inserts_a_reply_with_variables_filled(page, sign_in, team, library, tmp_path):
    conversation, text = open_conversation(page, sign_in, team)
    text.fill("Hello.\n")
    text.press("End")

    toggle = page.get_by_role("button", name="Saved replies")
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    listbox = page.get_by_role("listbox", name="Saved replies")
    expect(listbox.get_by_role("option")).to_have_count(3)  # everyone + Support + Bob's own
    expect(listbox).not_to_contain_text("Invoice copy")
    filter_box = page.get_by_role("combobox", name="Find a saved reply")
    expect(filter_box).to_be_focused()
    filter_box.fill("refund")
    expect(listbox.get_by_role("option")).to_have_count(1)
    expect(listbox.get_by_role("option")).to_have_attribute("aria-selected", "true")
    check_both_widths(page, tmp_path, "saved-replies-picker")

    filter_box.press("Enter")
    expected = (
        f"Hello.\nHi Carla Jones, the refund for #{conversation.display_number} "
        "(Refund for order 1042) is on its way.\n\nBob, Support"
    )
    expect(text).to_have_value(expected)
    expect(page.locator("[data-sr-popup]")).to_be_hidden()
    expect(page.locator("[data-sr-status]")).to_have_text("Inserted “Refund started”.")

    # A click on an option inserts at the caret too; the keyboard alone closes with Escape.
    text.press("Control+End")
    text.type("\n\n")
    toggle.click()
    page.get_by_role("option", name=re.compile("Sign-off")).click()
    expect(text).to_have_value(expected + "\n\nCheers,\nBob Agent")
    toggle.click()
    expect(filter_box).to_be_focused()
    filter_box.press("Escape")
    expect(page.locator("[data-sr-popup]")).to_be_hidden()
    expect(toggle).to_be_focused()
    assert text.input_value() == expected + "\n\nCheers,\nBob Agent", "the form was not sent"


def test_slash_in_the_composer_opens_the_picker_and_enter_inserts(page, sign_in, team, library):
    _, text = open_conversation(page, sign_in, team)
    text.click()
    text.type("Dear customer,\n/tha")
    popup = page.locator("[data-sr-popup]")
    expect(popup).to_be_visible()
    options = page.get_by_role("listbox", name="Saved replies").get_by_role("option")
    expect(options).to_have_count(1)
    expect(options.first).to_contain_text("Thanks for writing")
    expect(text).to_be_focused()
    expect(text).to_have_attribute("aria-activedescendant", re.compile(r"sr-option-"))
    text.press("Enter")
    expect(text).to_have_value("Dear customer,\nHi Carla,\n\nThanks for writing!")
    expect(popup).to_be_hidden()

    # "/" inside a word (a date, and/or) does nothing; Escape closes and keeps what was typed.
    text.type(" and/or")
    expect(popup).to_be_hidden()
    text.type(" /s")
    expect(popup).to_be_visible()
    expect(options.first).to_contain_text("Sign-off")  # names starting so come first
    text.type("ig")
    expect(options).to_have_count(1)
    text.press("ArrowDown")  # wraps around the one option
    text.press("Escape")
    expect(popup).to_be_hidden()
    text.type("n")  # typing on after Escape does not reopen it
    expect(popup).to_be_hidden()
    expect(text).to_have_value("Dear customer,\nHi Carla,\n\nThanks for writing! and/or /sign")
    # No match: it says so, and Enter is a new line as usual.
    text.type(" /zz")
    expect(popup).to_be_visible()
    expect(options).to_have_count(0)
    expect(popup).to_contain_text("No saved reply matches “zz”")
    text.press("Enter")
    expect(popup).to_be_hidden()
    expect(text).to_have_value(
        "Dear customer,\nHi Carla,\n\nThanks for writing! and/or /sign /zz\n"
    )
