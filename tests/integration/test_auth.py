"""Sign-in and sign-out through the real forms, with CSRF enforced."""

import pytest

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


def attempt(client, email: str, password: str, address: str, headers=None):
    """One sign-in through the real form, from a given client address. Each request gets a
    fresh app context, as real requests do (Flask-WTF and Flask-Login cache in `g`)."""
    environ = {"REMOTE_ADDR": address}
    with client.application.app_context():
        page = client.get("/login", environ_base=environ, headers=headers)
    token = csrf_token_from(page.get_data(as_text=True))
    with client.application.app_context():
        return client.post(
            "/login",
            data={"email": email, "password": password, "csrf_token": token},
            environ_base=environ,
            headers=headers,
        )


def time_passes(email: str, seconds: float) -> None:
    """Move the account's last failure back, as if `seconds` had passed."""
    from extensions import get_redis
    from services.throttle import _key

    key = _key("account", email)
    last = float(get_redis().hget(key, "last"))
    get_redis().hset(key, "last", f"{last - seconds:.3f}")


def test_one_address_failing_across_many_accounts_is_stopped(app, make_user):
    from services.throttle import ADDRESS_MAX

    accounts = [make_user() for _ in range(25)]
    client = app.test_client()
    for user in accounts[:ADDRESS_MAX]:
        assert attempt(client, user.email, "wrong password", "198.51.100.7").status_code == 401
    response = attempt(client, accounts[ADDRESS_MAX].email, "wrong password", "198.51.100.7")
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= 15 * 60
    assert "Too many failed sign-ins. Try again in 15 minute(s)." in response.get_data(as_text=True)
    # Even the right password from that address waits now, for any account.
    last = accounts[-1]
    assert attempt(client, last.email, last.plain_password, "198.51.100.7").status_code == 429
    # The owner of that account, from their own address, is not affected.
    owner = app.test_client()
    assert attempt(owner, last.email, last.plain_password, "192.0.2.44").status_code == 302


def test_one_address_guessing_one_password_is_stopped(app, make_user):
    from services.throttle import PAIR_MAX

    user = make_user()
    client = app.test_client()
    for _ in range(PAIR_MAX):
        time_passes(user.email, 3600) if _ > 0 else None  # only the pair limit counts here
        assert attempt(client, user.email, "wrong password", "198.51.100.8").status_code == 401
    time_passes(user.email, 3600)
    response = attempt(client, user.email, user.plain_password, "198.51.100.8")
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 14 * 60
    # The owner elsewhere signs in.
    assert (
        attempt(app.test_client(), user.email, user.plain_password, "192.0.2.9").status_code == 302
    )


def test_an_account_attacked_from_many_addresses_is_slowed_never_locked(app, make_user):
    from services.throttle import ACCOUNT_FREE, ACCOUNT_MAX_DELAY

    owner = make_user(email="owner@example.com")
    # The owner signed in on their laptop yesterday: that browser is a known device.
    laptop = app.test_client()
    assert attempt(laptop, owner.email, owner.plain_password, "192.0.2.10").status_code == 302
    assert (
        laptop.post(
            "/logout", data={"csrf_token": csrf_token_from(laptop.get("/").get_data(as_text=True))}
        ).status_code
        == 302
    )

    attacker = app.test_client()
    waits, statuses = [], []
    for n in range(40):
        response = attempt(attacker, owner.email, f"guess {n}", f"203.0.113.{n + 1}")
        statuses.append(response.status_code)
        if response.status_code == 429:
            waits.append(int(response.headers["Retry-After"]))
            time_passes(owner.email, waits[-1])  # the attacker waits as told
    # Free guesses first, then every guess waits, doubling up to the cap: never a lock.
    assert statuses[:ACCOUNT_FREE] == [401] * ACCOUNT_FREE
    assert statuses[ACCOUNT_FREE:] == [429, 401] * 17 + [429]
    assert waits[:4] == [1, 2, 4, 8] and max(waits) == ACCOUNT_MAX_DELAY
    assert waits == sorted(waits)

    # The known device skips the slow-down entirely, from a new address too.
    assert attempt(laptop, owner.email, owner.plain_password, "192.0.2.200").status_code == 302

    # A brand-new browser is slowed (told how long), never locked: after the wait it gets in.
    attempt(attacker, owner.email, "one more guess", "203.0.113.99")
    phone = app.test_client()
    response = attempt(phone, owner.email, owner.plain_password, "192.0.2.77")
    assert response.status_code == 429
    wait = int(response.headers["Retry-After"])
    assert wait <= ACCOUNT_MAX_DELAY
    assert "Try again in" in response.get_data(as_text=True)
    time_passes(owner.email, wait)
    assert attempt(phone, owner.email, owner.plain_password, "192.0.2.77").status_code == 302


def test_a_successful_sign_in_resets_the_pair_count_not_the_accounts(app, make_user):
    from services.throttle import ACCOUNT_FREE, PAIR_MAX

    user = make_user()
    client = app.test_client()
    for _ in range(PAIR_MAX - 1):
        assert attempt(client, user.email, "wrong password", "198.51.100.20").status_code == 401
        time_passes(user.email, 3600)
    assert attempt(client, user.email, user.plain_password, "198.51.100.20").status_code == 302
    token = csrf_token_from(client.get("/").get_data(as_text=True))
    client.post("/logout", data={"csrf_token": token})
    # The pair starts afresh: PAIR_MAX - 1 more failures from there are still answered.
    for _ in range(PAIR_MAX - 1):
        time_passes(user.email, 3600)
        assert attempt(client, user.email, "wrong password", "198.51.100.20").status_code == 401
    # The account's count did not restart: a new browser right away is slowed.
    assert PAIR_MAX - 1 > ACCOUNT_FREE
    fresh = app.test_client()
    assert attempt(fresh, user.email, user.plain_password, "198.51.100.21").status_code == 429


@pytest.mark.parametrize("extra_settings", [{"TRUSTED_PROXIES": "1"}], indirect=True)
def test_behind_a_proxy_clients_are_told_apart(app_config, extra_settings, make_user):
    """Every request arrives from the proxy; with TRUSTED_PROXIES the throttle counts the
    client from X-Forwarded-For, so one client's guessing does not lock out everybody."""
    from app import create_app
    from services.throttle import ADDRESS_MAX

    app = create_app({**app_config, **extra_settings})
    user = make_user()
    guesser, colleague = app.test_client(), app.test_client()
    for n in range(ADDRESS_MAX):
        response = attempt(
            guesser,
            f"nobody{n}@example.com",
            "x",
            "10.0.0.1",
            headers={"X-Forwarded-For": "203.0.113.50"},
        )
        assert response.status_code == 401
    response = attempt(
        guesser, "nobody@example.com", "x", "10.0.0.1", headers={"X-Forwarded-For": "203.0.113.50"}
    )
    assert response.status_code == 429
    ok = attempt(
        colleague,
        user.email,
        user.plain_password,
        "10.0.0.1",
        headers={"X-Forwarded-For": "192.0.2.61"},
    )
    assert ok.status_code == 302


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
