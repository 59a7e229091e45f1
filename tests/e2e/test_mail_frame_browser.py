"""An HTML email in Chromium: its own styles work inside the frame under the frame's own CSP
while the page's CSP stays strict, and remote images load only on request, without a
Referer. The `page` fixture fails the test on any CSP violation."""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from playwright.sync_api import expect

from extensions import db
from models import Inbox, InboxMember
from tests.support.inbound import post_relay, work_inbound

pytestmark = pytest.mark.e2e


@pytest.fixture
def agent(app, make_user):
    inbox = Inbox(name="Support", support_address="support@example.com")
    db.session.add(inbox)
    db.session.commit()
    user = make_user(email="ana@example.com", name="Ana Agent")
    db.session.add(InboxMember(inbox_id=inbox.id, user_id=user.id))
    db.session.commit()
    return user


def receive_html(app, html: str) -> None:
    message = EmailMessage()
    message["From"], message["To"] = "Carla <carla@customer.example>", "support@example.com"
    message["Subject"], message["Message-ID"] = "Newsletter", "<news@customer.example>"
    message.set_content("Plain version")
    message.add_alternative(html, subtype="html")
    post_relay(app.test_client(), message.as_bytes())
    work_inbound(app)


def test_html_mail_keeps_its_styles_and_remote_images_carry_no_referrer(
    app, page, sign_in, agent, live_server
):
    # Another origin than the page's (localhost vs 127.0.0.1): a "remote" image we can watch.
    remote = live_server.url.replace("127.0.0.1", "localhost") + "/static/app.css?as-image"
    receive_html(
        app,
        '<p style="color: rgb(200, 0, 0)">Styled text</p>'
        f'<img src="{remote}" width="40" height="40" alt="remote picture">',
    )
    remote_requests = []
    page.on("request", lambda r: remote_requests.append(r) if r.url == remote else None)

    sign_in(agent.email, agent.plain_password)
    page.goto("/conversations")
    page.locator(".conv-row", has_text="Newsletter").get_by_role("link").click()
    frame = page.frame_locator("iframe.msg-html")
    expect(frame.locator("p", has_text="Styled text")).to_have_css("color", "rgb(200, 0, 0)")
    expect(frame.locator("img")).not_to_have_attribute("src", remote)
    assert remote_requests == []  # deferred until asked

    with page.expect_request(lambda r: r.url == remote) as image_request:
        page.get_by_role("link", name="Load images").click()
    expect(frame.locator("img")).to_have_attribute("src", remote)
    headers = image_request.value.all_headers()
    assert "referer" not in headers, f"the tracker learnt where it was read: {headers['referer']}"
