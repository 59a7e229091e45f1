"""Bad requests get a clear page with the right status, never a traceback."""

from flask import abort


def test_unknown_page_is_a_friendly_404(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    body = response.get_data(as_text=True)
    assert "Not Found" in body and "Back to Threadline" in body
    assert "Traceback" not in body


def test_htmx_requests_get_the_error_fragment_only(client):
    response = client.get("/no-such-page", headers={"HX-Request": "true"})
    assert response.status_code == 404
    assert "<html" not in response.get_data(as_text=True)


def test_unexpected_error_is_logged_and_shown_as_500_without_traceback(app, client, caplog):
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def explode():
        raise RuntimeError("secret internals")

    app.add_url_rule("/explode", "explode", explode)
    response = client.get("/explode")
    assert response.status_code == 500
    body = response.get_data(as_text=True)
    assert "Something went wrong" in body
    assert "secret internals" not in body and "Traceback" not in body
    assert "secret internals" in caplog.text  # the admin still finds it in the log


def test_agents_get_403_on_admin_pages(client, auth, make_user):
    agent = make_user(role="agent")
    auth.login(agent.email, agent.plain_password)
    response = client.get("/admin/system")
    assert response.status_code == 403
    assert "Only admins can open this page." in response.get_data(as_text=True)


def test_abort_messages_reach_the_page(app, client):
    app.add_url_rule("/gone", "gone", lambda: abort(410, "This link expired."))
    response = client.get("/gone")
    assert response.status_code == 410
    assert "This link expired." in response.get_data(as_text=True)


def test_security_headers_of_session_cookie(client, auth, make_user):
    user = make_user()
    response = auth.login(user.email, user.plain_password)
    cookie = response.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_https_app_url_makes_cookies_secure(app_config, make_user):
    from app import create_app
    from tests.conftest import AuthActions

    app_config["APP_URL"] = "https://help.example.com"
    secure_app = create_app(app_config)
    with secure_app.app_context():
        user = make_user()
        response = AuthActions(secure_app.test_client()).login(user.email, user.plain_password)
    assert "Secure" in response.headers.get("Set-Cookie", "")
