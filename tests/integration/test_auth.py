"""Sign-in and sign-out through the real forms, with CSRF enforced."""

from tests.conftest import csrf_token_from


def test_login_page_renders_with_csrf_token(client):
    page = client.get("/login")
    assert page.status_code == 200
    assert csrf_token_from(page.get_data(as_text=True))


def test_pages_require_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302
    assert "/login?next=%2F" in response.headers["Location"]


def test_login_then_logout(client, auth, make_user):
    user = make_user(email="ana@example.com")
    response = auth.login("ANA@example.com ", user.plain_password)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    home = client.get("/")
    assert home.status_code == 200
    assert "Ana Agent" in home.get_data(as_text=True)

    response = auth.logout()
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_wrong_password_is_refused_with_a_clear_message(client, auth, make_user):
    user = make_user()
    response = auth.login(user.email, "not the password")
    assert response.status_code == 401
    assert "The email or password is wrong." in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_unknown_email_gets_the_same_message(auth):
    response = auth.login("nobody@example.com", "whatever123")
    assert response.status_code == 401
    assert "The email or password is wrong." in response.get_data(as_text=True)


def test_login_without_csrf_token_is_refused(client, make_user):
    user = make_user()
    response = client.post("/login", data={"email": user.email, "password": user.plain_password})
    assert response.status_code == 400
    assert "Reload the page" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_logout_without_csrf_token_is_refused(client, auth, make_user):
    user = make_user()
    auth.login(user.email, user.plain_password)
    assert client.post("/logout").status_code == 400
    assert client.get("/").status_code == 200  # still signed in


def test_logout_is_not_a_get(client, auth, make_user):
    user = make_user()
    auth.login(user.email, user.plain_password)
    assert client.get("/logout").status_code == 405
    assert client.get("/").status_code == 200


def test_next_never_redirects_off_site(client, make_user):
    user = make_user()
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        response = client.post(
            f"/login?next={target}",
            data={"email": user.email, "password": user.plain_password, "csrf_token": token},
        )
        assert response.headers["Location"] == "/"
        client.post("/logout", data={"csrf_token": token})
        token = csrf_token_from(client.get("/login").get_data(as_text=True))


def test_deactivated_user_cannot_sign_in(client, auth, make_user, app):
    from extensions import db

    user = make_user()
    user.active = False
    db.session.commit()
    assert auth.login(user.email, user.plain_password).status_code == 401


def test_empty_form_says_what_is_missing(client):
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"csrf_token": token})
    assert response.status_code == 422
    assert "This field is required." in response.get_data(as_text=True)


def test_repeated_failures_lock_out_that_email_for_a_while(client, auth, make_user):
    from services.throttle import MAX_FAILURES

    user = make_user()
    for _ in range(MAX_FAILURES):
        assert auth.login(user.email, "wrong password").status_code == 401
    # Even the right password waits now: a guesser cannot tell when it found it.
    response = auth.login(user.email, user.plain_password)
    assert response.status_code == 429
    assert "Too many failed attempts. Try again in 15 minute(s)." in response.get_data(as_text=True)
    assert client.get("/").status_code == 302
    # Another account from the same address is not affected.
    other = make_user()
    assert auth.login(other.email, other.plain_password).status_code == 302


def test_a_successful_sign_in_resets_the_failure_count(auth, make_user):
    from services.throttle import MAX_FAILURES

    user = make_user()
    for _ in range(MAX_FAILURES - 1):
        auth.login(user.email, "wrong password")
    assert auth.login(user.email, user.plain_password).status_code == 302
    auth.logout()
    for _ in range(MAX_FAILURES - 1):
        auth.login(user.email, "wrong password")
    assert auth.login(user.email, user.plain_password).status_code == 302


def test_deactivating_ends_open_sessions_at_the_next_request(app, client, auth, make_user):
    from extensions import db

    user = make_user(email="leaver@example.com")
    auth.login(user.email, user.plain_password)
    with app.app_context():  # a fresh context, as each real request has
        assert client.get("/").status_code == 200
    user.active = False
    db.session.commit()
    with app.app_context():
        response = client.get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
