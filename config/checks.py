"""The checks on Settings: every problem at once, each with its fix, so one start-up
attempt lists all that is wrong instead of failing on the first."""

from __future__ import annotations

import base64
import ipaddress
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import click

from mail.addresses import is_email_address
from services.passwords import password_problem

if TYPE_CHECKING:
    from config.settings import Settings

INGRESSES = (
    "relay",
    "postmark",
    "sendgrid",
    "mailgun",
    "mandrill",
    "ses",
    "postal",
    "sparkpost",
    "mailersend",
    "mailjet",
    "brevo",
    "resend",
)
PASSWORD_INGRESSES = ("relay", "postmark", "sendgrid", "mailjet", "brevo")
# The secret each signed ingress needs: (ingress, setting, attribute, where to find it)
INGRESS_SECRETS = (
    (
        "mailgun",
        "MAILGUN_INGRESS_SIGNING_KEY",
        "mailgun_signing_key",
        "copy the HTTP webhook signing key from Mailgun's dashboard",
    ),
    (
        "mandrill",
        "MANDRILL_INGRESS_API_KEY",
        "mandrill_api_key",
        "copy the webhook key from Mandrill's inbound settings",
    ),
    (
        "ses",
        "SES_TOPIC_ARNS",
        "ses_topic_arns",
        "list the ARN of the SNS topic your SES receipt rule notifies "
        "(arn:aws:sns:<region>:<account>:<topic>), comma-separated",
    ),
    (
        "postal",
        "POSTAL_INGRESS_PUBLIC_KEY",
        "postal_public_key",
        "copy the server's public key: run `postal default-dkim-record` on the Postal host "
        "and take the p= value",
    ),
    (
        "sparkpost",
        "SPARKPOST_INGRESS_TOKEN",
        "sparkpost_webhook_token",
        "choose a token and give it as auth_token when you create the relay webhook",
    ),
    (
        "mailersend",
        "MAILERSEND_INGRESS_SIGNING_SECRET",
        "mailersend_signing_secret",
        "copy the signing secret from the inbound route's webhook in MailerSend",
    ),
    (
        "resend",
        "RESEND_INGRESS_SIGNING_SECRET",
        "resend_webhook_secret",
        "copy the webhook's signing secret (whsec_...) from Resend's Webhooks page",
    ),
    (
        "resend",
        "RESEND_API_KEY",
        "resend_api_key",
        "create an API key in Resend with access to received emails",
    ),
)
SMTP_AUTH_METHODS = ("plain", "login", "cram_md5")
SMTP_VERIFY_MODES = ("peer", "none")
STORAGE_BACKENDS = ("local", "minio")
LOG_FORMATS = ("text", "json")

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", re.I)


@dataclass(frozen=True)
class Problem:
    """One configuration problem: which setting, what is wrong, how to fix it."""

    setting: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.setting}: {self.message}. Fix: {self.fix}"


class ConfigError(click.ClickException):
    """Start-up refused: every configuration problem, each with its fix."""

    exit_code = 2

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        lines = [f"Threadline cannot start: {len(problems)} configuration problem(s)."]
        lines += [f"  - {p}" for p in problems]
        lines.append("Edit your .env (see .env.example), then start again.")
        super().__init__("\n".join(lines))


def find_problems(s: Settings) -> list[Problem]:
    """The cross-field checks of what was read, in a stable order."""
    checks = (
        _check_core,
        _check_database_and_redis,
        _check_storage,
        _check_ingress,
        _check_smtp,
        _check_oauth,
        _check_dns_resolver,
    )
    return [problem for check in checks for problem in check(s)]


def _check_core(s: Settings) -> list[Problem]:
    out = []
    if not s.secret_key:
        out.append(
            Problem(
                "SECRET_KEY",
                "is empty",
                'generate one with: python3 -c "import secrets; print(secrets.token_hex(32))"',
            )
        )
    elif len(s.secret_key) < 16:
        out.append(Problem("SECRET_KEY", "is shorter than 16 characters", "use 64 random hex"))
    for key in s.encryption_keys:
        try:
            ok = len(base64.urlsafe_b64decode(key.encode())) == 32
        except ValueError:
            ok = False
        if not ok:
            out.append(
                Problem(
                    "ENCRYPTION_KEY",
                    "is not a Fernet key (32 url-safe base64-encoded bytes)",
                    "generate one with: python3 -c "
                    '"import base64,os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())"',
                )
            )
            break
    parts = urlsplit(s.app_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        out.append(
            Problem(
                "APP_URL", f"{s.app_url!r} is not an http(s) URL", "e.g. https://help.example.com"
            )
        )
    if s.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        out.append(
            Problem("LOG_LEVEL", f"{s.log_level!r} is unknown", "use DEBUG, INFO or WARNING")
        )
    if s.log_format not in LOG_FORMATS:
        out.append(
            Problem(
                "LOG_FORMAT",
                f"{s.log_format!r} is unknown",
                "use text (lines for a terminal) or json (one JSON object per line)",
            )
        )
    if s.admin_email and not is_email_address(s.admin_email):
        out.append(Problem("ADMIN_EMAIL", f"{s.admin_email!r} is not an email address", "fix it"))
    if s.admin_password and (weak := password_problem(s.admin_password, s.admin_email)):
        out.append(Problem("ADMIN_PASSWORD", weak, "choose another one, or leave it empty"))
    return out


def _check_database_and_redis(s: Settings) -> list[Problem]:
    out = []
    scheme = urlsplit(s.database_url).scheme
    if scheme not in ("sqlite", "postgresql+psycopg"):
        out.append(
            Problem(
                "DATABASE_URL",
                f"scheme {scheme or '(none)'!r} is not supported",
                "use postgresql://user:password@host:5432/dbname, or unset it for SQLite",
            )
        )
    elif scheme.startswith("postgresql") and not urlsplit(s.database_url).hostname:
        out.append(Problem("DATABASE_URL", "names no host", "e.g. postgresql://u:p@db:5432/app"))
    if s.redis_url:
        redis_parts = urlsplit(s.redis_url)
        if redis_parts.scheme not in ("redis", "rediss", "unix"):
            out.append(
                Problem(
                    "REDIS_URL",
                    f"scheme {redis_parts.scheme or '(none)'!r} is not redis://, rediss:// or unix://",
                    "e.g. redis://127.0.0.1:6379/0, or unset it for the embedded Redis",
                )
            )
        elif redis_parts.scheme != "unix" and not redis_parts.hostname:
            out.append(Problem("REDIS_URL", "names no host", "e.g. redis://127.0.0.1:6379/0"))
    return out


def _check_storage(s: Settings) -> list[Problem]:
    if s.storage_backend not in STORAGE_BACKENDS:
        return [
            Problem(
                "STORAGE_BACKEND",
                f"{s.storage_backend!r} is unknown",
                "use local (files in instance/) or minio (any S3 service)",
            )
        ]
    if s.storage_backend != "minio":
        return []
    return [
        Problem(name, "is empty but STORAGE_BACKEND=minio", f"set {name} for your S3 service")
        for name, value in (
            ("MINIO_ENDPOINT", s.minio_endpoint),
            ("MINIO_ACCESS_KEY", s.minio_access_key),
            ("MINIO_SECRET_KEY", s.minio_secret_key),
            ("MINIO_BUCKET", s.minio_bucket),
        )
        if not value
    ]


def _check_ingress(s: Settings) -> list[Problem]:
    out = []
    unknown = [name for name in s.inbound_services if name not in INGRESSES]
    if unknown or not s.inbound_services:
        out.append(
            Problem(
                "INBOUND_EMAIL_SERVICE",
                f"{', '.join(unknown) or '(empty)'} is not an ingress",
                f"use one or more of {', '.join(INGRESSES)} (comma-separated); "
                "Postfix, Exim and Qmail use relay",
            )
        )
    enabled = ",".join(s.inbound_services)
    needs_password = [name for name in s.inbound_services if name in PASSWORD_INGRESSES]
    if needs_password and not s.inbound_email_password:
        out.append(
            Problem(
                "INBOUND_EMAIL_PASSWORD",
                f"is empty but INBOUND_EMAIL_SERVICE={enabled} needs it",
                'generate one with: python3 -c "import secrets; print(secrets.token_hex(24))"',
            )
        )
    for name, setting, attribute, fix in INGRESS_SECRETS:
        if name in s.inbound_services and not getattr(s, attribute):
            out.append(Problem(setting, f"is empty but INBOUND_EMAIL_SERVICE={enabled}", fix))
    if "postal" in s.inbound_services:
        from ingress.postal import postal_key_problem  # here: ingress/ reads config/

        problem = postal_key_problem(s.postal_public_key)
        if problem:
            fix = "paste the p= value of `postal default-dkim-record` (or the key's PEM)"
            out.append(Problem("POSTAL_INGRESS_PUBLIC_KEY", problem, fix))
    if s.inbound_domain and not _DOMAIN.match(s.inbound_domain):
        out.append(
            Problem(
                "MAILER_INBOUND_EMAIL_DOMAIN",
                f"{s.inbound_domain!r} is not a domain name",
                "use the domain whose MX records point at your ingress, e.g. reply.example.com",
            )
        )
    return out


def _check_smtp(s: Settings) -> list[Problem]:
    out = []
    if s.smtp_authentication and s.smtp_authentication not in SMTP_AUTH_METHODS:
        out.append(
            Problem(
                "SMTP_AUTHENTICATION",
                f"{s.smtp_authentication!r} is unknown",
                f"use one of {', '.join(SMTP_AUTH_METHODS)}, or leave it empty for no AUTH",
            )
        )
    if s.smtp_username and not s.smtp_password:
        out.append(
            Problem(
                "SMTP_PASSWORD",
                "is empty but SMTP_USERNAME is set",
                "set SMTP_PASSWORD, or remove SMTP_USERNAME to send without AUTH",
            )
        )
    if s.smtp_verify_mode not in SMTP_VERIFY_MODES:
        out.append(
            Problem(
                "SMTP_OPENSSL_VERIFY_MODE",
                f"{s.smtp_verify_mode!r} is unknown",
                "use peer (verify the certificate) or none",
            )
        )
    if s.mailer_sender_email:
        address = s.mailer_sender_email
        if "<" in address:
            address = address.rsplit("<", 1)[1].rstrip(">").strip()
        if not is_email_address(address):
            out.append(
                Problem(
                    "MAILER_SENDER_EMAIL",
                    f"{s.mailer_sender_email!r} is not an email address",
                    "e.g. Support <support@example.com>",
                )
            )
    return out


_TENANT = re.compile(r"^[A-Za-z0-9.-]{1,100}$")


def _check_oauth(s: Settings) -> list[Problem]:
    """A provider is either off (no client id) or whole: id and secret, and endpoints that
    are URLs (http only for a local stand-in)."""
    out = []
    for name, client_id, secret in (
        ("MICROSOFT", s.microsoft_client_id, s.microsoft_client_secret),
        ("GOOGLE", s.google_client_id, s.google_client_secret),
    ):
        if client_id and not secret:
            out.append(
                Problem(
                    f"{name}_CLIENT_SECRET",
                    f"is empty but {name}_CLIENT_ID is set",
                    "copy the client secret of the same app registration, or remove "
                    f"{name}_CLIENT_ID to turn Connect with {name.title()} off",
                )
            )
        if secret and not client_id:
            out.append(
                Problem(
                    f"{name}_CLIENT_ID",
                    f"is empty but {name}_CLIENT_SECRET is set",
                    "copy the application (client) id of the same app registration",
                )
            )
    if not _TENANT.match(s.microsoft_tenant):
        out.append(
            Problem(
                "MICROSOFT_TENANT",
                f"{s.microsoft_tenant!r} is not a tenant",
                "use common, organizations, your directory (tenant) id or your domain",
            )
        )
    for setting, url in (
        ("MICROSOFT_LOGIN_URL", s.microsoft_login_url),
        ("GOOGLE_AUTHORIZE_URL", s.google_authorize_url),
        ("GOOGLE_TOKEN_URL", s.google_token_url),
    ):
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            out.append(
                Problem(setting, f"{url!r} is not a URL", "leave it unset for the real default")
            )
    return out


def parse_nameserver(value: str) -> tuple[str, int] | None:
    """DNS_RESOLVER as (ip, port): "" = None (the system's resolver), "ip", "ip:port" or
    "[ipv6]:port". An IP, not a host name: dnspython sends to addresses, and looking a
    resolver's own name up would need a resolver. Raises ValueError on anything else."""
    value = value.strip()
    if not value:
        return None
    host, port = value, "53"
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest.removeprefix(":") if rest else port
    elif value.count(":") == 1:
        host, port = value.split(":")
    number = int(port) if port.isdigit() else 0
    if not 1 <= number <= 65535:
        raise ValueError(f"{port!r} is not a port")
    return str(ipaddress.ip_address(host)), number


def _check_dns_resolver(s: Settings) -> list[Problem]:
    try:
        parse_nameserver(s.dns_resolver)
    except ValueError:
        return [
            Problem(
                "DNS_RESOLVER",
                f"{s.dns_resolver!r} is not an IP address with an optional :port",
                "e.g. 127.0.0.1:5353 or [::1]:53, or leave it empty for the system's resolver",
            )
        ]
    return []
