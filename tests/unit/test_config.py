"""Settings.from_env: defaults, every validation problem with its fix, aliases, start-up refusal."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from dotenv import dotenv_values

from config import PROJECT_ROOT, ConfigError, Problem, Settings

SECRET = "0123456789abcdef0123456789abcdef"
VALID = {"SECRET_KEY": SECRET, "INBOUND_EMAIL_PASSWORD": "ingress-password"}
MINIO = {
    "STORAGE_BACKEND": "minio",
    "MINIO_ENDPOINT": "127.0.0.1:9000",
    "MINIO_ACCESS_KEY": "access",
    "MINIO_SECRET_KEY": "secret",
}
FLASK = PROJECT_ROOT / ".venv" / "bin" / "flask"


def settings(**env: str) -> Settings:
    return Settings.from_env(environ={**VALID, **env})


def problems(**env: str) -> list[Problem]:
    return settings(**env).validate()


def only_problem(**env: str) -> Problem:
    found = problems(**env)
    assert len(found) == 1, [str(p) for p in found]
    return found[0]


def fernet_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


# --- defaults -------------------------------------------------------------------------------


def test_defaults_are_the_embedded_deployment():
    s = Settings.from_env(environ=VALID)
    instance = str(PROJECT_ROOT / "instance")
    assert s.validate() == []
    assert s.instance_path == instance
    assert s.database_url == f"sqlite:///{instance}/threadline.db"
    assert s.redis_url == ""
    assert s.embedded_redis
    assert s.effective_redis_url == f"unix://{instance}/redis.sock"
    assert s.storage_backend == "local"
    assert s.storage_local_path == f"{instance}/storage"
    assert s.inbound_services == ["relay"]
    assert s.app_url == "http://127.0.0.1:5000"
    assert (s.host, s.port) == ("127.0.0.1", 5000)
    assert s.log_level == "INFO"
    assert s.inbound_max_bytes == 40 * 1024 * 1024
    assert s.attachment_max_bytes == 25 * 1024 * 1024
    assert s.inbound_retention_days == 30
    assert (s.smtp_address, s.smtp_port, s.smtp_ssl, s.smtp_starttls_auto) == ("", 587, False, True)
    assert s.smtp_verify_mode == "peer"
    assert s.session_cookie_secure is False


def test_instance_path_moves_every_embedded_default(tmp_path):
    s = settings(INSTANCE_PATH=str(tmp_path))
    assert s.database_url == f"sqlite:///{tmp_path}/threadline.db"
    assert s.effective_redis_url == f"unix://{tmp_path}/redis.sock"
    assert s.storage_local_path == f"{tmp_path}/storage"


def test_empty_values_mean_the_default():
    s = settings(
        DATABASE_URL="",
        REDIS_URL=" ",
        STORAGE_BACKEND="",
        INBOUND_EMAIL_SERVICE="",
        PORT="",
        SMTP_SSL="",
        MINIO_BUCKET="",
    )
    assert s.validate() == []
    assert s.database_url.startswith("sqlite:///")
    assert s.embedded_redis
    assert s.storage_backend == "local"
    assert s.inbound_services == ["relay"]
    assert s.port == 5000
    assert s.smtp_ssl is False
    assert s.minio_bucket == "threadline"


def test_minio_endpoint_alone_selects_s3_storage():
    env = {k: v for k, v in MINIO.items() if k != "STORAGE_BACKEND"}
    s = settings(**env)
    assert s.validate() == []
    assert s.storage_backend == "minio"
    assert s.minio_secure is False
    assert settings(**{**env, "MINIO_ENDPOINT": "https://s3.example.com"}).minio_secure is True


def test_https_app_url_makes_cookies_secure_and_trailing_slash_is_dropped():
    s = settings(APP_URL="https://help.example.com/")
    assert s.app_url == "https://help.example.com"
    assert s.session_cookie_secure is True


def test_values_are_parsed():
    s = settings(
        PORT="8080",
        SMTP_PORT="465",
        SMTP_SSL="yes",
        SMTP_ENABLE_STARTTLS_AUTO="off",
        INBOUND_EMAIL_MAX_BYTES="5242880",
        LOG_LEVEL="debug",
        INBOUND_EMAIL_SERVICE="Relay, Mailgun",
        MAILGUN_INGRESS_SIGNING_KEY="key",
        ADMIN_EMAIL="Boss@Example.COM",
        MAILER_INBOUND_EMAIL_DOMAIN="Reply.Example.com",
    )
    assert s.validate() == []
    assert (s.port, s.smtp_port, s.smtp_ssl, s.smtp_starttls_auto) == (8080, 465, True, False)
    assert s.inbound_max_bytes == 5 * 1024 * 1024
    assert s.log_level == "DEBUG"
    assert s.inbound_services == ["relay", "mailgun"]
    assert s.admin_email == "boss@example.com"
    assert s.inbound_domain == "reply.example.com"


# --- every validation problem ---------------------------------------------------------------


def test_missing_secret_key():
    problem = only_problem(SECRET_KEY="")
    assert problem.setting == "SECRET_KEY"
    assert "is empty" in problem.message
    assert "secrets.token_hex(32)" in problem.fix


def test_secret_key_absent_from_environment():
    found = Settings.from_env(environ={"INBOUND_EMAIL_PASSWORD": "x"}).validate()
    assert [p.setting for p in found] == ["SECRET_KEY"]


def test_short_secret_key():
    problem = only_problem(SECRET_KEY="short-secret")
    assert problem.setting == "SECRET_KEY"
    assert "shorter than 16" in problem.message


@pytest.mark.parametrize(
    "value",
    [
        "not-a-fernet-key",
        base64.urlsafe_b64encode(os.urandom(16)).decode(),  # valid base64, wrong length
        f"{base64.urlsafe_b64encode(os.urandom(32)).decode()},broken",  # second key bad
    ],
)
def test_bad_encryption_key(value):
    problem = only_problem(ENCRYPTION_KEY=value)
    assert problem.setting == "ENCRYPTION_KEY"
    assert "Fernet" in problem.message
    assert "urlsafe_b64encode(os.urandom(32))" in problem.fix


@pytest.mark.parametrize("value", ["help.example.com", "ftp://help.example.com", "http://"])
def test_bad_app_url(value):
    problem = only_problem(APP_URL=value)
    assert problem.setting == "APP_URL"
    assert "not an http(s) URL" in problem.message


def test_bad_log_level():
    problem = only_problem(LOG_LEVEL="verbose")
    assert (problem.setting, problem.message) == ("LOG_LEVEL", "'VERBOSE' is unknown")
    assert "DEBUG" in problem.fix


def test_log_format_is_text_unless_json_is_asked_for():
    assert settings().log_format == "text"
    assert settings(LOG_FORMAT="JSON").log_format == "json"
    assert settings(LOG_FORMAT=" text ").log_format == "text"


def test_bad_log_format():
    problem = only_problem(LOG_FORMAT="logfmt")
    assert (problem.setting, problem.message) == ("LOG_FORMAT", "'logfmt' is unknown")
    assert "text" in problem.fix and "json" in problem.fix


@pytest.mark.parametrize("value", ["admin", "admin@localhost", "a b@example.com"])
def test_bad_admin_email(value):
    problem = only_problem(ADMIN_EMAIL=value)
    assert problem.setting == "ADMIN_EMAIL"
    assert "is not an email address" in problem.message


def test_short_admin_password():
    problem = only_problem(ADMIN_PASSWORD="12345678901")
    assert problem.setting == "ADMIN_PASSWORD"
    assert "at least 12 characters" in problem.message
    assert settings(ADMIN_PASSWORD="lemon tree 1234").validate() == []


@pytest.mark.parametrize(
    ("setting", "value", "bound"),
    [("REMEMBER_ME_DAYS", "90", "from 1 to 30"), ("TRUSTED_PROXIES", "-1", "from 0 to 5")],
)
def test_account_settings_are_bounded(setting, value, bound):
    problem = only_problem(**{setting: value})
    assert problem.setting == setting and bound in problem.message


def test_undo_send_waits_ten_seconds_unless_set_and_zero_turns_it_off():
    assert settings().send_undo_seconds == 10
    assert settings(SEND_UNDO_SECONDS="0").send_undo_seconds == 0
    assert settings(SEND_UNDO_SECONDS="301").send_undo_seconds == 10  # and a problem, below


@pytest.mark.parametrize(
    ("value", "nameserver"),
    [
        ("", None),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("10.0.0.2", ("10.0.0.2", 53)),
        ("[::1]:5353", ("::1", 5353)),
        ("::1", ("::1", 53)),
    ],
)
def test_dns_resolver_is_an_ip_with_an_optional_port(value, nameserver):
    s = settings(DNS_RESOLVER=value)
    assert s.validate() == []
    assert s.dns_nameserver == nameserver


@pytest.mark.parametrize("value", ["resolver.internal:53", "127.0.0.1:0", "127.0.0.1:dns"])
def test_a_dns_resolver_that_is_not_ip_and_port_is_a_problem(value):
    problem = only_problem(DNS_RESOLVER=value)
    assert problem.setting == "DNS_RESOLVER" and "127.0.0.1:5353" in problem.fix
    assert settings(DNS_RESOLVER=value).dns_nameserver is None  # the system's, meanwhile


def test_trusted_authserv_ids_are_a_lower_case_set_and_none_by_default():
    assert settings().trusted_authserv_ids == frozenset()
    found = settings(
        TRUSTED_AUTHSERV_IDS=" MX.Example.com, filter.example.com,,"
    ).trusted_authserv_ids
    assert found == {"mx.example.com", "filter.example.com"}


def test_spam_score_threshold_is_a_number_and_none_by_default():
    assert settings().spam_score_threshold is None
    assert settings(SPAM_SCORE_THRESHOLD=" ").spam_score_threshold is None
    assert settings(SPAM_SCORE_THRESHOLD="6").spam_score_threshold == 6.0
    assert settings(SPAM_SCORE_THRESHOLD="7.5").spam_score_threshold == 7.5


@pytest.mark.parametrize("value", ["high", "-1", "nan", "inf"])
def test_a_spam_score_threshold_that_is_not_a_score_is_a_problem(value):
    found = problems(SPAM_SCORE_THRESHOLD=value)
    assert [p.setting for p in found] == ["SPAM_SCORE_THRESHOLD"]
    assert "leave it empty" in found[0].fix


def test_common_admin_password():
    problem = only_problem(ADMIN_PASSWORD="Password1234")
    assert problem.setting == "ADMIN_PASSWORD"
    assert "passwords attackers try first" in problem.message


@pytest.mark.parametrize(
    ("value", "scheme"),
    [
        ("mysql://user:pw@db/app", "'mysql'"),
        ("postgresql+psycopg2://user:pw@db/app", "'postgresql+psycopg2'"),
        ("just-a-file.db", "'(none)'"),
    ],
)
def test_unsupported_database_url(value, scheme):
    problem = only_problem(DATABASE_URL=value)
    assert problem.setting == "DATABASE_URL"
    assert problem.message == f"scheme {scheme} is not supported"
    assert "postgresql://user:password@host:5432/dbname" in problem.fix


@pytest.mark.parametrize("value", ["postgresql:///threadline", "postgres://:5432/threadline"])
def test_postgres_url_without_host(value):
    problem = only_problem(DATABASE_URL=value)
    assert (problem.setting, problem.message) == ("DATABASE_URL", "names no host")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("http://127.0.0.1:6379/0", "scheme 'http' is not redis://, rediss:// or unix://"),
        ("127.0.0.1:6379", "scheme '(none)' is not redis://, rediss:// or unix://"),
        ("redis:///0", "names no host"),
        ("rediss://:6380/0", "names no host"),
    ],
)
def test_bad_redis_url(value, message):
    problem = only_problem(REDIS_URL=value)
    assert (problem.setting, problem.message) == ("REDIS_URL", message)


@pytest.mark.parametrize("value", ["redis://redis:6379/0", "rediss://h:6380", "unix:///r.sock"])
def test_good_redis_urls(value):
    s = settings(REDIS_URL=value)
    assert s.validate() == []
    assert s.effective_redis_url == value
    assert not s.embedded_redis


def test_unknown_storage_backend():
    problem = only_problem(STORAGE_BACKEND="s3")
    assert (problem.setting, problem.message) == ("STORAGE_BACKEND", "'s3' is unknown")
    assert "local" in problem.fix and "minio" in problem.fix


def test_complete_minio_settings_are_valid():
    assert settings(**MINIO).validate() == []


@pytest.mark.parametrize("missing", ["MINIO_ENDPOINT", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY"])
def test_minio_backend_missing_a_setting(missing):
    problem = only_problem(**{**MINIO, missing: ""})
    assert problem.setting == missing
    assert problem.message == "is empty but STORAGE_BACKEND=minio"
    assert problem.fix == f"set {missing} for your S3 service"


def test_minio_backend_missing_everything_reports_each_setting():
    found = problems(STORAGE_BACKEND="minio")
    assert [p.setting for p in found] == ["MINIO_ENDPOINT", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY"]


@pytest.mark.parametrize(
    ("value", "named"),
    [("smtp", "smtp"), ("relay,imap", "imap"), (",", "(empty)"), (" , ", "(empty)")],
)
def test_unknown_or_empty_inbound_email_service(value, named):
    problem = only_problem(INBOUND_EMAIL_SERVICE=value)
    assert problem.setting == "INBOUND_EMAIL_SERVICE"
    assert problem.message == f"{named} is not an ingress"
    assert "relay, postmark, sendgrid, mailgun, mandrill" in problem.fix


@pytest.mark.parametrize(
    "service", ["relay", "postmark", "sendgrid", "mailjet", "brevo", "mandrill,sendgrid"]
)
def test_password_ingress_without_password(service):
    env = {"INBOUND_EMAIL_SERVICE": service, "INBOUND_EMAIL_PASSWORD": ""}
    if "mandrill" in service:
        env["MANDRILL_INGRESS_API_KEY"] = "mandrill-key"
    problem = only_problem(**env)
    assert problem.setting == "INBOUND_EMAIL_PASSWORD"
    assert problem.message == f"is empty but INBOUND_EMAIL_SERVICE={service} needs it"
    assert "secrets.token_hex(24)" in problem.fix


@pytest.mark.parametrize(
    ("service", "setting", "fix_words"),
    [
        ("mailgun", "MAILGUN_INGRESS_SIGNING_KEY", "Mailgun's dashboard"),
        ("mandrill", "MANDRILL_INGRESS_API_KEY", "Mandrill's inbound settings"),
        ("ses", "SES_TOPIC_ARNS", "arn:aws:sns:<region>:<account>:<topic>"),
        ("postal", "POSTAL_INGRESS_PUBLIC_KEY", "postal default-dkim-record"),
        ("sparkpost", "SPARKPOST_INGRESS_TOKEN", "auth_token"),
        ("mailersend", "MAILERSEND_INGRESS_SIGNING_SECRET", "inbound route's webhook"),
    ],
)
def test_signed_ingress_without_key(service, setting, fix_words):
    # These ingresses sign requests instead of using the Basic-auth password.
    problem = only_problem(INBOUND_EMAIL_SERVICE=service, INBOUND_EMAIL_PASSWORD="")
    assert problem.setting == setting
    assert problem.message == f"is empty but INBOUND_EMAIL_SERVICE={service}"
    assert fix_words in problem.fix


def test_resend_needs_its_signing_secret_and_an_api_key():
    found = problems(INBOUND_EMAIL_SERVICE="resend", INBOUND_EMAIL_PASSWORD="")
    assert [p.setting for p in found] == ["RESEND_INGRESS_SIGNING_SECRET", "RESEND_API_KEY"]
    assert all(p.message == "is empty but INBOUND_EMAIL_SERVICE=resend" for p in found)


@pytest.mark.parametrize(
    ("value", "words"),
    [("not a key", "is not a public key"), ("-----BEGIN PUBLIC KEY-----\nAAAA", "PEM")],
)
def test_a_postal_key_that_is_not_a_key(value, words):
    problem = only_problem(INBOUND_EMAIL_SERVICE="postal", POSTAL_INGRESS_PUBLIC_KEY=value)
    assert problem.setting == "POSTAL_INGRESS_PUBLIC_KEY"
    assert words in problem.message
    assert "postal default-dkim-record" in problem.fix


@pytest.mark.parametrize(
    "value", ["not a domain", "localhost", "-bad.example.com", "reply@example.com", "example.c0m"]
)
def test_bad_inbound_domain(value):
    problem = only_problem(MAILER_INBOUND_EMAIL_DOMAIN=value)
    assert problem.setting == "MAILER_INBOUND_EMAIL_DOMAIN"
    assert "is not a domain name" in problem.message
    assert "reply.example.com" in problem.fix


def test_bad_smtp_authentication():
    problem = only_problem(SMTP_AUTHENTICATION="xoauth2")
    assert (problem.setting, problem.message) == ("SMTP_AUTHENTICATION", "'xoauth2' is unknown")
    assert "plain, login, cram_md5" in problem.fix


@pytest.mark.parametrize("method", ["plain", "LOGIN", "cram_md5"])
def test_known_smtp_authentication(method):
    assert settings(SMTP_AUTHENTICATION=method).validate() == []


def test_smtp_username_without_password():
    problem = only_problem(SMTP_USERNAME="mailer")
    assert problem.setting == "SMTP_PASSWORD"
    assert problem.message == "is empty but SMTP_USERNAME is set"
    assert settings(SMTP_USERNAME="mailer", SMTP_PASSWORD="pw").validate() == []


def test_oauth_providers_are_off_by_default_with_the_real_endpoints():
    s = settings()
    assert (s.microsoft_client_id, s.google_client_id) == ("", "")
    assert s.microsoft_tenant == "common"
    assert s.microsoft_login_url == "https://login.microsoftonline.com"
    assert s.google_authorize_url == "https://accounts.google.com/o/oauth2/v2/auth"
    assert s.google_token_url == "https://oauth2.googleapis.com/token"


@pytest.mark.parametrize("provider", ["MICROSOFT", "GOOGLE"])
def test_oauth_client_id_without_secret_and_secret_without_id(provider):
    problem = only_problem(**{f"{provider}_CLIENT_ID": "app-id"})
    assert problem.setting == f"{provider}_CLIENT_SECRET"
    assert problem.message == f"is empty but {provider}_CLIENT_ID is set"
    problem = only_problem(**{f"{provider}_CLIENT_SECRET": "s3cret"})
    assert problem.setting == f"{provider}_CLIENT_ID"
    both = {f"{provider}_CLIENT_ID": "app-id", f"{provider}_CLIENT_SECRET": "s3cret"}
    assert problems(**both) == []


def test_oauth_bad_tenant_and_endpoints_are_named():
    found = problems(
        MICROSOFT_TENANT="contoso/../x",
        MICROSOFT_LOGIN_URL="login.microsoftonline.com",
        GOOGLE_TOKEN_URL="ftp://x",
    )
    assert [p.setting for p in found] == [
        "MICROSOFT_TENANT",
        "MICROSOFT_LOGIN_URL",
        "GOOGLE_TOKEN_URL",
    ]
    assert settings(MICROSOFT_LOGIN_URL="http://127.0.0.1:8000/ms/").microsoft_login_url == (
        "http://127.0.0.1:8000/ms"
    )


def test_bad_smtp_openssl_verify_mode():
    problem = only_problem(SMTP_OPENSSL_VERIFY_MODE="client_once")
    assert problem.setting == "SMTP_OPENSSL_VERIFY_MODE"
    assert problem.message == "'client_once' is unknown"


@pytest.mark.parametrize("value", ["support", "Support <support>", "Support <a b@example.com>"])
def test_bad_mailer_sender_email(value):
    problem = only_problem(MAILER_SENDER_EMAIL=value)
    assert problem.setting == "MAILER_SENDER_EMAIL"
    assert "is not an email address" in problem.message


@pytest.mark.parametrize("value", ["support@example.com", "Support <support@example.com>"])
def test_good_mailer_sender_email(value):
    assert settings(MAILER_SENDER_EMAIL=value).validate() == []


@pytest.mark.parametrize(
    ("name", "value", "bound", "default"),
    [
        ("PORT", "http", "from 1 to 65535", 5000),
        ("PORT", "0", "from 1 to 65535", 5000),
        ("PORT", "65536", "from 1 to 65535", 5000),
        ("SMTP_PORT", "25.5", "from 1 to 65535", 587),
        ("SMTP_PORT", "-25", "from 1 to 65535", 587),
        ("SMTP_PORT", "100000", "from 1 to 65535", 587),
        ("INBOUND_EMAIL_MAX_BYTES", "ten", "from 1024 to 2147483648", 41943040),
        ("INBOUND_EMAIL_MAX_BYTES", "1023", "from 1024 to 2147483648", 41943040),
        ("ATTACHMENT_MAX_BYTES", "25MB", "from 1024 to 2147483648", 26214400),
        ("SEND_UNDO_SECONDS", "-1", "from 0 to 300", 10),
        ("SEND_UNDO_SECONDS", "301", "from 0 to 300", 10),
        ("SEND_UNDO_SECONDS", "10s", "from 0 to 300", 10),
    ],
)
def test_bad_whole_numbers(name, value, bound, default):
    problem = only_problem(**{name: value})
    assert problem.setting == name
    assert problem.message == f"{value!r} is not a whole number {bound}"
    assert problem.fix == f"set {name}={default}"


@pytest.mark.parametrize(
    ("name", "value"),
    [("PORT", "65535"), ("INBOUND_EMAIL_MAX_BYTES", "2147483648"), ("SEND_UNDO_SECONDS", "300")],
)
def test_whole_numbers_at_the_limit_are_accepted(name, value):
    assert settings(**{name: value}).validate() == []


@pytest.mark.parametrize("value", ["maybe", "2", "enabled"])
def test_non_boolean_smtp_ssl(value):
    problem = only_problem(SMTP_SSL=value)
    assert problem.setting == "SMTP_SSL"
    assert problem.message == f"{value!r} is not true or false"
    assert problem.fix == "set SMTP_SSL=true or SMTP_SSL=false"


def test_every_problem_is_reported_at_once():
    found = Settings.from_env(
        environ={
            "SECRET_KEY": "",
            "PORT": "lots",
            "LOG_LEVEL": "chatty",
            "DATABASE_URL": "mysql://db/app",
            "REDIS_URL": "memcached://cache",
            "STORAGE_BACKEND": "minio",
            "INBOUND_EMAIL_SERVICE": "relay,mailgun",
            "SMTP_SSL": "sometimes",
            "SMTP_USERNAME": "mailer",
        }
    ).validate()
    assert [p.setting for p in found] == [
        "PORT",
        "SMTP_SSL",
        "SECRET_KEY",
        "LOG_LEVEL",
        "DATABASE_URL",
        "REDIS_URL",
        "MINIO_ENDPOINT",
        "MINIO_ACCESS_KEY",
        "MINIO_SECRET_KEY",
        "INBOUND_EMAIL_PASSWORD",
        "MAILGUN_INGRESS_SIGNING_KEY",
        "SMTP_PASSWORD",
    ]


def test_config_error_lists_each_problem_with_its_fix():
    found = problems(SECRET_KEY="", LOG_LEVEL="loud", SMTP_PORT="x")
    error = ConfigError(found)
    text = error.format_message()
    lines = text.splitlines()
    assert lines[0] == "Threadline cannot start: 3 configuration problem(s)."
    assert lines[-1] == "Edit your .env (see .env.example), then start again."
    assert lines[1:-1] == [f"  - {p.setting}: {p.message}. Fix: {p.fix}" for p in found]
    assert all("Fix: " in line for line in lines[1:-1])
    assert error.exit_code == 2
    assert error.problems == found


# --- aliases, normalisation, overrides ------------------------------------------------------


def test_rails_aliases_are_accepted():
    s = Settings.from_env(
        environ={
            "SECRET_KEY": SECRET,
            "RAILS_INBOUND_EMAIL_SERVICE": "relay,mailgun",
            "RAILS_INBOUND_EMAIL_PASSWORD": "rails-password",
            "MAILGUN_INGRESS_API_KEY": "mailgun-key",
        }
    )
    assert s.validate() == []
    assert s.inbound_services == ["relay", "mailgun"]
    assert s.inbound_email_password == "rails-password"
    assert s.mailgun_signing_key == "mailgun-key"


def test_new_names_win_over_rails_aliases():
    s = Settings.from_env(
        environ={
            "SECRET_KEY": SECRET,
            "INBOUND_EMAIL_SERVICE": "mailgun",
            "RAILS_INBOUND_EMAIL_SERVICE": "postmark",
            "INBOUND_EMAIL_PASSWORD": "new-password",
            "RAILS_INBOUND_EMAIL_PASSWORD": "old-password",
            "MAILGUN_INGRESS_SIGNING_KEY": "new-key",
            "MAILGUN_INGRESS_API_KEY": "old-key",
        }
    )
    assert s.inbound_services == ["mailgun"]
    assert s.inbound_email_password == "new-password"
    assert s.mailgun_signing_key == "new-key"


def test_empty_new_name_does_not_hide_the_alias():
    # .env.example leaves MAILGUN_INGRESS_SIGNING_KEY= empty; a key pasted from a Rails
    # guide under its old name must still count.
    s = Settings.from_env(
        environ={
            "SECRET_KEY": SECRET,
            "INBOUND_EMAIL_SERVICE": "mailgun",
            "MAILGUN_INGRESS_SIGNING_KEY": "",
            "MAILGUN_INGRESS_API_KEY": "mailgun-key",
            "INBOUND_EMAIL_PASSWORD": " ",
            "RAILS_INBOUND_EMAIL_PASSWORD": "rails-password",
        }
    )
    assert s.validate() == []
    assert s.mailgun_signing_key == "mailgun-key"
    assert s.inbound_email_password == "rails-password"


def test_a_problem_found_through_an_alias_names_the_new_setting():
    found = Settings.from_env(
        environ={"SECRET_KEY": SECRET, "RAILS_INBOUND_EMAIL_SERVICE": "mandrill"}
    ).validate()
    assert [p.setting for p in found] == ["MANDRILL_INGRESS_API_KEY"]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db:5432/app", "postgresql+psycopg://u:p@db:5432/app"),
        ("postgresql://u:p@db/app", "postgresql+psycopg://u:p@db/app"),
        ("postgresql+psycopg://u:p@db/app", "postgresql+psycopg://u:p@db/app"),
    ],
)
def test_postgres_urls_use_psycopg3(given, expected):
    s = settings(DATABASE_URL=given)
    assert s.validate() == []
    assert s.database_url == expected


def test_overrides_win_over_the_environment():
    s = Settings.from_env(
        environ={**VALID, "PORT": "1234", "LOG_LEVEL": "DEBUG", "SMTP_SSL": "false"},
        overrides={"PORT": 8080, "LOG_LEVEL": "warning", "SMTP_SSL": True, "APP_URL": None},
    )
    assert s.validate() == []
    assert (s.port, s.log_level, s.smtp_ssl) == (8080, "WARNING", True)
    assert s.app_url == "http://127.0.0.1:5000"  # None = the default


def test_overrides_can_hide_an_alias():
    s = Settings.from_env(
        environ={**VALID, "RAILS_INBOUND_EMAIL_SERVICE": "mailgun"},
        overrides={"INBOUND_EMAIL_SERVICE": "relay"},
    )
    assert s.validate() == []
    assert s.inbound_services == ["relay"]


def test_overrides_are_validated_too():
    found = Settings.from_env(environ=VALID, overrides={"SECRET_KEY": "tiny"}).validate()
    assert [p.setting for p in found] == ["SECRET_KEY"]


# --- secrets at rest ------------------------------------------------------------------------


def test_fernet_key_is_derived_from_secret_key_and_stable():
    first = settings().fernet_keys()
    again = settings().fernet_keys()
    other = settings(SECRET_KEY="another-secret-key-0123456789").fernet_keys()
    assert len(first) == 1
    assert first == again
    assert other != first
    token = Fernet(first[0]).encrypt(b"imap password")
    assert Fernet(again[0]).decrypt(token) == b"imap password"


def test_encryption_keys_are_used_newest_first():
    newest, older = fernet_key(), fernet_key()
    s = settings(ENCRYPTION_KEY=f" {newest} , {older} ")
    assert s.validate() == []
    assert s.fernet_keys() == [newest.encode(), older.encode()]
    assert s.fernet_keys() != settings().fernet_keys()


# --- start-up refuses a bad configuration ---------------------------------------------------


def test_create_app_refuses_a_bad_configuration(tmp_path):
    from app import create_app

    instance = tmp_path / "instance"
    with pytest.raises(ConfigError) as caught:
        create_app(
            {"SECRET_KEY": "", "INBOUND_EMAIL_SERVICE": "mailgun", "INSTANCE_PATH": instance}
        )
    assert [p.setting for p in caught.value.problems] == [
        "SECRET_KEY",
        "MAILGUN_INGRESS_SIGNING_KEY",
    ]
    assert not instance.exists()  # refused before touching anything


def _cli_env(tmp_path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)  # conftest removed every Threadline setting from os.environ
    env.update(ENV_FILE="/dev/null", INSTANCE_PATH=str(tmp_path / "instance"), **extra)
    return env


@pytest.mark.parametrize("command", [["admin", "ensure"], ["doctor"]])
def test_cli_lists_every_problem_with_its_fix_and_no_traceback(tmp_path, command):
    env = _cli_env(tmp_path, SECRET_KEY="", INBOUND_EMAIL_SERVICE="mailgun")
    result = subprocess.run(
        [str(FLASK), "--app", "app", *command],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "Threadline cannot start: 2 configuration problem(s)." in result.stderr
    assert "  - SECRET_KEY: is empty. Fix: generate one with: python3 -c" in result.stderr
    assert (
        "  - MAILGUN_INGRESS_SIGNING_KEY: is empty but INBOUND_EMAIL_SERVICE=mailgun. "
        "Fix: copy the HTTP webhook signing key" in result.stderr
    )
    assert not (tmp_path / "instance").exists()


def test_an_env_file_that_is_not_text_is_a_clear_problem(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_bytes(b"SECRET_KEY=\xff\xfe not utf-8\n")
    result = subprocess.run(
        [str(FLASK), "--app", "app", "inbound", "list"],
        cwd=PROJECT_ROOT,
        env={**_cli_env(tmp_path), "ENV_FILE": str(env_file)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"ENV_FILE: {env_file} cannot be read (it is not UTF-8 text)" in result.stderr
    assert "Traceback" not in result.stderr


# --- scripts/init_env.py --------------------------------------------------------------------


def _init_env(target) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "init_env.py"), str(target)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_init_env_creates_a_private_file_whose_secrets_pass_validation(tmp_path):
    target = tmp_path / ".env"
    result = _init_env(target)
    assert result.returncode == 0, result.stderr
    assert f"Created {target}" in result.stdout
    assert stat.S_IMODE(target.stat().st_mode) == 0o600

    values = {k: v or "" for k, v in dotenv_values(target).items()}
    assert len(values["SECRET_KEY"]) == 64
    assert len(values["INBOUND_EMAIL_PASSWORD"]) == 48
    assert values["ENCRYPTION_KEY"]
    s = Settings.from_env(environ=values)
    assert s.validate() == []
    assert s.fernet_keys() == [values["ENCRYPTION_KEY"].encode()]
    Fernet(s.fernet_keys()[0])  # a usable key, not just the right shape

    # Every other line is the example's, so the comments that explain settings survive.
    example = (PROJECT_ROOT / ".env.example").read_text().splitlines()
    written = target.read_text().splitlines()
    assert len(written) == len(example)
    generated = ("SECRET_KEY=", "ENCRYPTION_KEY=", "INBOUND_EMAIL_PASSWORD=")
    assert [line for line in written if not line.startswith(generated)] == [
        line for line in example if not line.startswith(generated)
    ]


def test_init_env_generates_different_secrets_each_time(tmp_path):
    assert _init_env(tmp_path / "a.env").returncode == 0
    assert _init_env(tmp_path / "b.env").returncode == 0
    first, second = dotenv_values(tmp_path / "a.env"), dotenv_values(tmp_path / "b.env")
    for name in ("SECRET_KEY", "ENCRYPTION_KEY", "INBOUND_EMAIL_PASSWORD"):
        assert first[name] != second[name]


def test_init_env_leaves_an_existing_file_alone(tmp_path):
    target = tmp_path / ".env"
    target.write_text("SECRET_KEY=mine-and-nobody-elses\n")
    target.chmod(0o640)
    result = _init_env(target)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert target.read_text() == "SECRET_KEY=mine-and-nobody-elses\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_a_broken_env_file_stops_every_process_with_the_same_list(tmp_path):
    """Web (wsgi.py, as gunicorn loads it), worker, scheduler and a flask command, all on
    one broken env file: each stops with exit 2 and the same problems, no traceback."""
    env_file = tmp_path / "broken.env"
    env_file.write_text("SECRET_KEY=\nINBOUND_EMAIL_SERVICE=mailgun\nSMTP_PORT=seventy\n")
    env = {**_cli_env(tmp_path), "ENV_FILE": str(env_file)}
    python = str(FLASK.parent / "python")
    commands = {
        "web": [python, "-c", "import wsgi"],
        "worker": [python, "worker.py", "--burst"],
        "scheduler": [python, "worker.py", "--cron"],
        "flask": [str(FLASK), "doctor"],
    }
    listed = {}
    for name, command in commands.items():
        result = subprocess.run(
            command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        output = result.stdout + result.stderr
        assert result.returncode == 2, (name, output)
        assert "Traceback" not in output, (name, output)
        listed[name] = sorted(line for line in output.splitlines() if line.startswith("  - "))
    assert len(listed["web"]) == 3
    assert all(lines == listed["web"] for lines in listed.values()), listed
