"""The signature editors in a real headless Chromium under the app's CSP: typing redraws the
preview (htmx, no inline script) with the variables filled in and scripts gone, for the
agent's own signature on the profile and the inbox's on its Identity tab; Save keeps the
sanitised HTML."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from extensions import db
from models import Inbox, InboxMember, User

pytestmark = pytest.mark.e2e


def test_typing_a_signature_previews_it_filled_in_and_saving_keeps_it_sanitised(
    app, page, sign_in, make_user, support, live_server
):
    rita = make_user(email="rita@example.com", name="Rita Admin", role="admin")
    db.session.add(InboxMember(inbox_id=support.id, user_id=rita.id))
    db.session.commit()
    sign_in(rita.email, rita.plain_password)

    page.goto("/profile")
    editor = page.locator("#signature")
    editor.get_by_label("Signature").fill(
        "<b>{{ agent.name }}</b> of {{inbox.name}}<script>document.title='x'</script>"
    )
    preview = editor.locator("#agent-signature-preview")
    expect(preview.locator("b")).to_have_text("Rita Admin")
    expect(preview).to_contain_text("of Support")
    editor.get_by_role("button", name="Save signature").click()
    expect(page.get_by_text("Your signature is saved.")).to_be_visible()
    db.session.expire_all()
    assert db.session.get(User, rita.id).signature == "<b>{{ agent.name }}</b> of {{inbox.name}}"

    page.goto(f"/admin/inboxes/{support.id}/settings?section=identity")
    page.get_by_label("Signature").fill("<i>The {{inbox.name}} team</i> <u>{{inbox.address}}</u>")
    expect(page.locator("#signature-preview i")).to_have_text("The Support team")
    expect(page.locator("#signature-preview u")).to_have_text("support@example.com")
    db.session.expire_all()
    assert db.session.get(Inbox, support.id).signature == ""  # a preview writes nothing
