"""Settings read from the environment (.env via python-dotenv): defaults, aliases, parsing.

Reading never raises: a value it cannot parse becomes a Problem, and the checks in
config/checks.py add theirs, so start-up can list every problem at once.
"""

from __future__ import annotations

import base64
import hashlib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import load_dotenv

from config.checks import Problem, find_problems, parse_nameserver
from runtime.flask_dotenv import drop_flask_cli_dotenv, env_file_option_used

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# A checkout keeps .env and instance/ beside the code; an installed package (the code in
# site-packages) keeps them in the folder it runs in (systemd's WorkingDirectory).
DATA_ROOT = PROJECT_ROOT if (PROJECT_ROOT / "pyproject.toml").is_file() else Path.cwd()

# Names used by Rails/Chatwoot guides, accepted so existing env files keep working.
ALIASES = {
    "INBOUND_EMAIL_SERVICE": "RAILS_INBOUND_EMAIL_SERVICE",
    "INBOUND_EMAIL_PASSWORD": "RAILS_INBOUND_EMAIL_PASSWORD",
    "MAILGUN_INGRESS_SIGNING_KEY": "MAILGUN_INGRESS_API_KEY",
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def load_env_file() -> list[Problem]:
    """Load ENV_FILE (default .env in the project) without overriding real env vars.

    The one env file of every process: what the `flask` command copied from a .env or
    .flaskenv of its own finding is dropped first (runtime/flask_dotenv.py says why).
    """
    if env_file_option_used():
        return [
            Problem(
                "--env-file",
                "flask's --env-file would be a second env file; Threadline reads one, ENV_FILE",
                "run ENV_FILE=<that file> flask ... instead",
            )
        ]
    drop_flask_cli_dotenv()
    path = os.environ.get("ENV_FILE") or str(DATA_ROOT / ".env")
    if not os.path.isfile(path):
        return []
    try:
        load_dotenv(path, override=False)
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "it is not UTF-8 text"
        return [
            Problem(
                "ENV_FILE",
                f"{path} cannot be read ({reason})",
                "make it readable by "
                "the user running Threadline (e.g. the MTA's user for flask ingress)",
            )
        ]
    return []


class _Reader:
    """Reads raw values from env + overrides, collecting problems instead of raising."""

    def __init__(self, environ: Mapping[str, str], overrides: Mapping[str, object]):
        self.environ = environ
        self.overrides = overrides
        self.problems: list[Problem] = []

    def raw(self, name: str) -> str | None:
        if name in self.overrides:
            value = self.overrides[name]
            return None if value is None else str(value)
        value = self.environ.get(name)
        if value is not None and value.strip():
            return value
        # An empty new name (as .env.example leaves it) must not hide a Rails-era alias.
        alias = ALIASES.get(name)
        if alias and (self.environ.get(alias) or "").strip():
            return self.environ[alias]
        return value

    def str(self, name: str, default: str = "") -> str:
        value = self.raw(name)
        return default if value is None or value.strip() == "" else value.strip()

    def bool(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None or value.strip() == "":
            return default
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        self.problems.append(
            Problem(name, f"{value!r} is not true or false", f"set {name}=true or {name}=false")
        )
        return default

    def optional_float(self, name: str, minimum: float = 0.0) -> float | None:
        """A number (decimals allowed) of at least `minimum`, or None when unset."""
        value = self.raw(name)
        if value is None or value.strip() == "":
            return None
        try:
            number = float(value.strip())
        except ValueError:
            number = None
        if number is None or not math.isfinite(number) or number < minimum:
            self.problems.append(
                Problem(
                    name,
                    f"{value!r} is not a number >= {minimum:g}",
                    f"set {name} to a score such as 6.0, or leave it empty",
                )
            )
            return None
        return number

    def int(self, name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
        value = self.raw(name)
        if value is None or value.strip() == "":
            return default
        try:
            number = int(value.strip())
        except ValueError:
            number = None
        in_range = number is not None and number >= minimum
        if in_range and maximum is not None:
            in_range = number <= maximum
        if not in_range:
            bound = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
            self.problems.append(
                Problem(name, f"{value!r} is not a whole number {bound}", f"set {name}={default}")
            )
            return default
        return number


@dataclass
class Settings:
    """Every setting Threadline reads, with its default."""

    secret_key: str = ""
    encryption_keys: list[str] = field(default_factory=list)
    app_url: str = "http://127.0.0.1:5000"
    host: str = "127.0.0.1"
    port: int = 5000
    web_concurrency: int = 2
    scheduler_lock_seconds: int = 30
    log_level: str = "INFO"
    log_format: str = "text"
    instance_path: str = str(DATA_ROOT / "instance")
    database_url: str = ""
    redis_url: str = ""
    storage_backend: str = "local"
    storage_local_path: str = ""
    minio_endpoint: str = ""
    minio_access_key: str = ""
    minio_secret_key: str = ""
    minio_bucket: str = "threadline"
    minio_secure: bool = False
    minio_region: str = "us-east-1"
    inbound_services: list[str] = field(default_factory=lambda: ["relay"])
    inbound_email_password: str = ""
    mailgun_signing_key: str = ""
    mandrill_api_key: str = ""
    # Amazon SES through SNS (ingress/ses.py): the topics whose notifications are taken,
    # and the S3 server an S3 action's mail is read from ("" = AWS's, by the bucket's
    # region). SNS_CERTIFICATE_ORIGIN only for tests: where the signing certificate is
    # fetched from once its URL passed the sns.<region>.amazonaws.com check.
    ses_topic_arns: frozenset[str] = frozenset()
    ses_s3_endpoint: str = ""
    ses_s3_access_key: str = ""
    ses_s3_secret_key: str = ""
    sns_certificate_origin: str = ""
    postal_public_key: str = ""
    sparkpost_webhook_token: str = ""
    mailersend_signing_secret: str = ""
    brevo_api_key: str = ""
    brevo_api_url: str = "https://api.brevo.com/v3"
    resend_webhook_secret: str = ""
    resend_api_key: str = ""
    resend_api_url: str = "https://api.resend.com"
    inbound_domain: str = ""
    inbound_max_bytes: int = 40 * 1024 * 1024
    attachment_max_bytes: int = 25 * 1024 * 1024
    inbound_retention_days: int = 30
    smtp_address: str = ""
    smtp_port: int = 587
    smtp_domain: str = ""
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_authentication: str = ""
    smtp_starttls_auto: bool = True
    smtp_ssl: bool = False
    smtp_verify_mode: str = "peer"
    mailer_sender_email: str = ""
    admin_email: str = ""
    admin_password: str = ""
    admin_name: str = "Admin"
    remember_me_days: int = 30
    require_2fa_for_admins: bool = False
    trusted_proxies: int = 0
    send_undo_seconds: int = 10
    # Sender verdicts (mail/sender_trust.py): where DKIM/DMARC TXT lookups go, and the
    # mail servers whose Authentication-Results headers are believed.
    dns_resolver: str = ""
    trusted_authserv_ids: frozenset[str] = frozenset()
    # Spam (mail/spam_headers.py): the rspamd score from which mail counts as spam; None
    # trusts the filter's own yes or no.
    spam_score_threshold: float | None = None
    # OAuth 2.0 for Microsoft 365 / Google mailboxes (services/oauth.py); a provider is
    # offered once its client id and secret are set. The endpoints are settings so tests
    # can point them at a stand-in identity provider.
    microsoft_client_id: str = ""
    microsoft_client_secret: str = ""
    microsoft_tenant: str = "common"
    microsoft_login_url: str = "https://login.microsoftonline.com"
    google_client_id: str = ""
    google_client_secret: str = ""
    google_authorize_url: str = "https://accounts.google.com/o/oauth2/v2/auth"
    google_token_url: str = "https://oauth2.googleapis.com/token"
    problems: list[Problem] = field(default_factory=list)

    @property
    def embedded_redis(self) -> bool:
        """No REDIS_URL: make run starts a private Redis on a socket in instance/."""
        return not self.redis_url

    @property
    def embedded_redis_socket(self) -> str:
        return os.path.join(self.instance_path, "redis.sock")

    @property
    def effective_redis_url(self) -> str:
        return self.redis_url or f"unix://{self.embedded_redis_socket}"

    @property
    def session_cookie_secure(self) -> bool:
        return self.app_url.startswith("https://")

    @property
    def dns_nameserver(self) -> tuple[str, int] | None:
        """DNS_RESOLVER as (ip, port); None = the system's resolver (or a value
        validate() already reported, so lookups still go somewhere sensible)."""
        try:
            return parse_nameserver(self.dns_resolver)
        except ValueError:
            return None

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, overrides: Mapping[str, object] | None = None
    ) -> Settings:
        """Read every setting; problems are collected in .problems, never raised here."""
        r = _Reader(os.environ if environ is None else environ, overrides or {})
        s = cls()
        s.secret_key = r.str("SECRET_KEY")
        keys = r.str("ENCRYPTION_KEY")
        s.encryption_keys = [k.strip() for k in keys.split(",") if k.strip()]
        s.app_url = r.str("APP_URL", s.app_url).rstrip("/")
        s.host = r.str("HOST", s.host)
        s.port = r.int("PORT", s.port, 1, 65535)
        s.web_concurrency = r.int("WEB_CONCURRENCY", s.web_concurrency, 1, 64)
        # How soon a standby cron scheduler takes over from a dead one (runtime/single_scheduler).
        s.scheduler_lock_seconds = r.int("SCHEDULER_LOCK_SECONDS", s.scheduler_lock_seconds, 3, 600)
        s.log_level = r.str("LOG_LEVEL", s.log_level).upper()
        s.log_format = r.str("LOG_FORMAT", s.log_format).lower()
        s.instance_path = os.path.abspath(r.str("INSTANCE_PATH", s.instance_path))
        default_db = "sqlite:///" + os.path.join(s.instance_path, "threadline.db")
        s.database_url = _normalise_database_url(r.str("DATABASE_URL", default_db))
        s.redis_url = r.str("REDIS_URL")
        s.minio_endpoint = r.str("MINIO_ENDPOINT")
        s.storage_backend = r.str("STORAGE_BACKEND", "minio" if s.minio_endpoint else "local")
        s.storage_backend = s.storage_backend.lower()
        default_storage = os.path.join(s.instance_path, "storage")
        s.storage_local_path = os.path.abspath(r.str("STORAGE_LOCAL_PATH", default_storage))
        s.minio_access_key = r.str("MINIO_ACCESS_KEY")
        s.minio_secret_key = r.str("MINIO_SECRET_KEY")
        s.minio_bucket = r.str("MINIO_BUCKET", s.minio_bucket)
        s.minio_secure = r.bool("MINIO_SECURE", s.minio_endpoint.startswith("https://"))
        s.minio_region = r.str("MINIO_REGION", s.minio_region)
        services = r.str("INBOUND_EMAIL_SERVICE", "relay").lower()
        # dict.fromkeys: "relay,relay" enables relay once, order kept.
        s.inbound_services = list(
            dict.fromkeys(x.strip() for x in services.split(",") if x.strip())
        )
        s.inbound_email_password = r.str("INBOUND_EMAIL_PASSWORD")
        s.mailgun_signing_key = r.str("MAILGUN_INGRESS_SIGNING_KEY")
        s.mandrill_api_key = r.str("MANDRILL_INGRESS_API_KEY")
        arns = r.str("SES_TOPIC_ARNS")
        s.ses_topic_arns = frozenset(x.strip() for x in arns.split(",") if x.strip())
        s.ses_s3_endpoint = r.str("SES_S3_ENDPOINT")
        s.ses_s3_access_key = r.str("SES_S3_ACCESS_KEY")
        s.ses_s3_secret_key = r.str("SES_S3_SECRET_KEY")
        s.sns_certificate_origin = r.str("SNS_CERTIFICATE_ORIGIN").rstrip("/")
        s.postal_public_key = r.str("POSTAL_INGRESS_PUBLIC_KEY")
        s.sparkpost_webhook_token = r.str("SPARKPOST_INGRESS_TOKEN")
        s.mailersend_signing_secret = r.str("MAILERSEND_INGRESS_SIGNING_SECRET")
        s.brevo_api_key = r.str("BREVO_API_KEY")
        s.brevo_api_url = r.str("BREVO_API_URL", s.brevo_api_url).rstrip("/")
        s.resend_webhook_secret = r.str("RESEND_INGRESS_SIGNING_SECRET")
        s.resend_api_key = r.str("RESEND_API_KEY")
        s.resend_api_url = r.str("RESEND_API_URL", s.resend_api_url).rstrip("/")
        s.inbound_domain = r.str("MAILER_INBOUND_EMAIL_DOMAIN").lower()
        s.inbound_max_bytes = r.int("INBOUND_EMAIL_MAX_BYTES", s.inbound_max_bytes, 1024, 2**31)
        s.attachment_max_bytes = r.int("ATTACHMENT_MAX_BYTES", s.attachment_max_bytes, 1024, 2**31)
        s.inbound_retention_days = r.int("INBOUND_EMAIL_RETENTION_DAYS", 30, 1)
        s.smtp_address = r.str("SMTP_ADDRESS")
        s.smtp_port = r.int("SMTP_PORT", s.smtp_port, 1, 65535)
        s.smtp_domain = r.str("SMTP_DOMAIN")
        s.smtp_username = r.str("SMTP_USERNAME")
        s.smtp_password = r.str("SMTP_PASSWORD")
        s.smtp_authentication = r.str("SMTP_AUTHENTICATION").lower()
        s.smtp_starttls_auto = r.bool("SMTP_ENABLE_STARTTLS_AUTO", True)
        s.smtp_ssl = r.bool("SMTP_SSL", False)
        s.smtp_verify_mode = r.str("SMTP_OPENSSL_VERIFY_MODE", "peer").lower()
        s.mailer_sender_email = r.str("MAILER_SENDER_EMAIL")
        s.admin_email = r.str("ADMIN_EMAIL").lower()
        s.admin_password = r.str("ADMIN_PASSWORD")
        s.admin_name = r.str("ADMIN_NAME", s.admin_name)
        # "Keep me signed in" lasts at most 30 days, however it is configured.
        s.remember_me_days = r.int("REMEMBER_ME_DAYS", s.remember_me_days, 1, 30)
        s.require_2fa_for_admins = r.bool("REQUIRE_2FA_FOR_ADMINS", False)
        # How many reverse proxies in front set X-Forwarded-*; 0 trusts none of them.
        s.trusted_proxies = r.int("TRUSTED_PROXIES", s.trusted_proxies, 0, 5)
        # How long a reply sent from the composer waits for "Undo" (services/send_later.py).
        s.send_undo_seconds = r.int("SEND_UNDO_SECONDS", s.send_undo_seconds, 0, 300)
        s.dns_resolver = r.str("DNS_RESOLVER")
        ids = r.str("TRUSTED_AUTHSERV_IDS").lower()
        s.trusted_authserv_ids = frozenset(x.strip() for x in ids.split(",") if x.strip())
        s.spam_score_threshold = r.optional_float("SPAM_SCORE_THRESHOLD")
        s.microsoft_client_id = r.str("MICROSOFT_CLIENT_ID")
        s.microsoft_client_secret = r.str("MICROSOFT_CLIENT_SECRET")
        s.microsoft_tenant = r.str("MICROSOFT_TENANT", s.microsoft_tenant)
        s.microsoft_login_url = r.str("MICROSOFT_LOGIN_URL", s.microsoft_login_url).rstrip("/")
        s.google_client_id = r.str("GOOGLE_CLIENT_ID")
        s.google_client_secret = r.str("GOOGLE_CLIENT_SECRET")
        s.google_authorize_url = r.str("GOOGLE_AUTHORIZE_URL", s.google_authorize_url)
        s.google_token_url = r.str("GOOGLE_TOKEN_URL", s.google_token_url)
        s.problems = r.problems + find_problems(s)
        return s

    def validate(self) -> list[Problem]:
        """All problems found while reading and checking, in a stable order."""
        return list(self.problems)

    def fernet_keys(self) -> list[bytes]:
        """Keys for secrets at rest: ENCRYPTION_KEY(s), else one derived from SECRET_KEY."""
        if self.encryption_keys:
            return [k.encode() for k in self.encryption_keys]
        digest = hashlib.sha256(b"threadline-secrets:" + self.secret_key.encode()).digest()
        return [base64.urlsafe_b64encode(digest)]


def _normalise_database_url(url: str) -> str:
    """Accept the postgres:// form Heroku-style guides use; use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
