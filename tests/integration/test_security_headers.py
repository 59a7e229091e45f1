"""Security headers on every response, the mail frame's own policy, and trusted proxies."""

from __future__ import annotations

import re
from email.message import EmailMessage

import pytest
from flask import request
from sqlalchemy import select

from extensions import db
from models import Attachment
from tests.support.inbound import post_relay, work_inbound
from tests.support.workspace import Browser, deliver, make_team

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'"
)
TRACKED_HTML = (
    '<p style="color: red">Hello <b>there</b></p>'
    '<img src="https://tracker.example/pixel.png" alt="pixel">'
)


@pytest.fixture
def team(app, inbox, make_user):
    return make_team(inbox, make_user)


@pytest.fixture
def browser(client, auth):
    return Browser(client, auth)


def assert_page_headers(response, what: str) -> None:
    assert response.mimetype == "text/html", what
    headers = response.headers
    assert headers.get("Content-Security-Policy") == PAGE_CSP, what
    assert headers.get("X-Frame-Options") == "DENY", what
    assert headers.get("X-Content-Type-Options") == "nosniff", what
    assert headers.get("Referrer-Policy") == "same-origin", what
    assert "Strict-Transport-Security" not in headers, what  # APP_URL is http in tests


def test_the_page_policy_allows_no_inline_code_or_eval():
    for directive in ("script-src", "style-src"):
        sources = re.search(rf"{directive} ([^;]*)", PAGE_CSP).group(1).split()
        assert sources == ["'self'"], directive


def test_every_html_page_has_the_headers(app, client, team, browser):
    conv = deliver(app, client, "m1@customer.example", "Help", html=TRACKED_HTML)
    assert_page_headers(client.get("/login"), "/login")
    assert_page_headers(client.get("/no-such-page"), "404 page")

    browser.login(team.bob)
    for path in ("/conversations", f"/conversations/{conv.id}", "/profile"):
        response = browser.get(path)
        assert response.status_code == 200, path
        assert_page_headers(response, path)
    fragment = browser.get(f"/conversations/{conv.id}/messages", htmx=True)
    assert_page_headers(fragment, "htmx fragment")

    browser.login(team.ana)
    admin_pages = (
        "/admin/agents",
        f"/admin/agents/{team.bob.id}",
        "/admin/inboxes",
        f"/admin/inboxes/{team.support.id}/settings",
        "/admin/inbound",
        f"/admin/inboxes/{team.support.id}/health",
        "/admin/system",
    )
    for path in admin_pages:
        response = browser.get(path)
        assert response.status_code == 200, path
        assert_page_headers(response, path)


def test_other_responses_are_not_sniffed_and_keep_their_own_policy(app, client, team, browser):
    script = client.get("/static/app.js")
    assert script.status_code == 200
    assert script.headers["X-Content-Type-Options"] == "nosniff"
    assert script.headers["Referrer-Policy"] == "same-origin"
    assert "X-Frame-Options" not in script.headers
    script.close()

    api = client.get("/api/v1/conversations", headers={"Authorization": f"Bearer {team.bob.token}"})
    assert api.status_code == 200 and api.headers["X-Content-Type-Options"] == "nosniff"

    # An attachment keeps the sandbox policy attachments.py sets on purpose.
    message = EmailMessage()
    message["From"], message["To"] = "carla@customer.example", "support@example.com"
    message["Subject"], message["Message-ID"] = "File", "<file@customer.example>"
    message.set_content("Attached.")
    message.add_attachment(b"<html>hi</html>", maintype="text", subtype="html", filename="a.html")
    post_relay(client, message.as_bytes())
    work_inbound(app)
    attachment = db.session.scalars(select(Attachment)).one()
    browser.login(team.bob)
    download = browser.get(f"/attachments/{attachment.id}")
    assert download.status_code == 200 and download.data == b"<html>hi</html>"
    assert download.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert "X-Frame-Options" not in download.headers  # not served as HTML


def test_no_hsts_when_app_url_is_http(app, client):
    assert "Strict-Transport-Security" not in client.get("/login").headers


class TestHttps:
    @pytest.fixture
    def app_config(self, app_config):
        return {**app_config, "APP_URL": "https://support.example.com"}

    def test_hsts_on_every_response(self, client):
        for path in ("/login", "/static/app.css"):
            response = client.get(path, base_url="https://support.example.com")
            assert response.headers["Strict-Transport-Security"] == (
                "max-age=31536000; includeSubDomains"
            ), path
            response.close()


# --- the mail frame ------------------------------------------------------------------------


def frame_url(html: str) -> str:
    iframe = re.search(r"<iframe([^>]*)></iframe>", html, re.S).group(1)
    assert 'referrerpolicy="no-referrer"' in iframe
    assert re.search(r'\ssandbox="(?![^"]*allow-scripts)[^"]*allow-same-origin', iframe)
    return re.search(r'\ssrc="([^"]+)"', iframe).group(1).replace("&amp;", "&")


def test_the_mail_frame_has_its_own_policy_and_sends_no_referrer(app, client, team, browser):
    conv = deliver(app, client, "m1@customer.example", "Hello", html=TRACKED_HTML)
    browser.login(team.bob)
    url = frame_url(browser.get(f"/conversations/{conv.id}").get_data(as_text=True))
    assert re.fullmatch(rf"/conversations/{conv.id}/messages/\d+/body", url)

    body = browser.get(url)
    assert body.status_code == 200 and body.mimetype == "text/html"
    csp = body.headers["Content-Security-Policy"]
    assert "style-src 'unsafe-inline'" in csp and "default-src 'none'" in csp
    assert "script-src" not in csp  # default-src 'none': no scripts at all
    assert "img-src 'self' data:;" in csp  # no remote images until asked
    assert "frame-ancestors 'self'" in csp
    assert body.headers["Referrer-Policy"] == "no-referrer"
    assert body.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert body.headers["X-Content-Type-Options"] == "nosniff"
    text = body.get_data(as_text=True)
    assert "<b>there</b>" in text
    assert 'data-remote-src="https://tracker.example/pixel.png"' in text
    assert 'src="https://tracker' not in text.replace("data-remote-src", "")

    # "Load images": the thread re-renders with a frame URL that allows remote images.
    loaded = browser.get(f"/conversations/{conv.id}/messages?images=1", htmx=True)
    images_url = frame_url(loaded.get_data(as_text=True))
    assert images_url == url + "?images=1"
    with_images = browser.get(images_url)
    assert "img-src 'self' data: https: http:;" in with_images.headers["Content-Security-Policy"]
    assert with_images.headers["Referrer-Policy"] == "no-referrer"
    assert 'src="https://tracker.example/pixel.png"' in with_images.get_data(as_text=True)


def test_the_mail_frame_is_404_outside_the_users_inboxes(app, client, team, browser):
    conv = deliver(app, client, "m1@customer.example", "Hello", html=TRACKED_HTML)
    browser.login(team.bob)
    url = frame_url(browser.get(f"/conversations/{conv.id}").get_data(as_text=True))
    message_id = int(url.split("/")[-2])

    browser.login(team.olga)  # member of Billing only
    assert browser.get(url).status_code == 404
    assert browser.get(url + "?images=1").status_code == 404
    # The message's id under another conversation does not reach it either.
    other = deliver(
        app, client, "b1@customer.example", "Billing", html="<p>x</p>", to="billing@example.com"
    )
    assert browser.get(f"/conversations/{other.id}/messages/{message_id}/body").status_code == 404

    browser.auth.logout()
    signed_out = client.get(url)
    assert signed_out.status_code in (302, 303) and "/login" in signed_out.headers["Location"]


# --- behind a proxy ------------------------------------------------------------------------

FORWARDED = {
    "X-Forwarded-For": "203.0.113.9",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "support.example.com",
}


def add_probe(app) -> None:
    """What the app believes about the request, through the whole WSGI stack."""

    def probe():
        return {"addr": request.remote_addr, "scheme": request.scheme, "host": request.host}

    app.add_url_rule("/_probe", "probe", probe)


def probe(client, **headers) -> dict:
    return client.get(
        "/_probe", headers={**FORWARDED, **headers}, environ_overrides={"REMOTE_ADDR": "10.0.0.2"}
    ).get_json()


def test_one_trusted_proxy_gives_the_clients_address_scheme_and_host(app_config):
    from app import create_app

    app = create_app({**app_config, "TRUSTED_PROXIES": "1"})
    add_probe(app)
    seen = probe(app.test_client())
    assert seen == {"addr": "203.0.113.9", "scheme": "https", "host": "support.example.com"}
    # A client's own X-Forwarded-For comes before what nginx appends: only the last hop counts.
    forged = probe(app.test_client(), **{"X-Forwarded-For": "198.51.100.66, 203.0.113.9"})
    assert forged["addr"] == "203.0.113.9"


def test_without_trusted_proxies_forwarded_headers_are_ignored(app):
    add_probe(app)
    seen = probe(app.test_client())
    assert seen == {"addr": "10.0.0.2", "scheme": "http", "host": "localhost"}
