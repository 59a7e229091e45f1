"""Application factory: settings, extensions, blueprints, CLI. No routes live here."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from blueprints.form_fields import use_fast_html_params
from cli.ingress import ingress_group, relay_command_requested
from config import PROJECT_ROOT, ConfigError, Settings, load_env_file
from extensions import csrf, db, login_manager, migrate
from models.base import secret_box
from runtime.flask_dotenv import drop_flask_cli_dotenv
from runtime.logs import configure_logging

# Flask settings that tests (or an embedding program) may pass through create_app(config).
FLASK_PASSTHROUGH = ("TESTING", "WTF_CSRF_ENABLED", "SERVER_NAME", "PROPAGATE_EXCEPTIONS")


def create_app(config: Mapping[str, object] | None = None) -> Flask:
    """Build the app; refuse to start with every configuration problem listed at once."""
    if config is None and relay_command_requested():
        return create_relay_app()
    env_problems = load_env_file()
    settings = Settings.from_env(overrides=config)
    problems = env_problems + settings.validate()
    if problems:
        raise ConfigError(problems)

    app = Flask(__name__, instance_path=settings.instance_path)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        # A pooled server connection may have been dropped: tested before each checkout. A
        # SQLite file connection cannot be (the test would be a statement per request).
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": not settings.database_url.startswith("sqlite")},
        MAX_CONTENT_LENGTH=settings.inbound_max_bytes + 1024 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=settings.session_cookie_secure,
        REMEMBER_COOKIE_DURATION=timedelta(days=settings.remember_me_days),
        WTF_CSRF_TIME_LIMIT=None,  # tied to the session instead; long-open tabs keep working
    )
    for key in FLASK_PASSTHROUGH:
        if config and key in config:
            app.config[key] = config[key]
    app.extensions["threadline.settings"] = settings
    configure_logging(settings.log_level, settings.log_format)
    register_request_ids(app)

    if settings.trusted_proxies:
        # Behind nginx/Caddy every request comes from the proxy's address over plain http.
        # Trust exactly that many hops of X-Forwarded-For/-Proto/-Host, so the sign-in
        # throttle sees the client (not the proxy everybody shares), redirects and cookies
        # know the request was https, and URLs use the public host. Never more: a client
        # could otherwise forge its address by sending the headers itself.
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)
    _ensure_local_dirs(settings)
    secret_box.configure(settings.fernet_keys())
    register_extensions(app)
    register_blueprints(app)
    register_cli(app)
    return app


def create_relay_app() -> Flask:
    """What `flask ingress <flavour>` loads: that command group, no settings, no extensions.

    Relaying posts stdin over HTTP; like Action Mailbox's relayer it needs the URL and the
    password (URL and INGRESS_PASSWORD) and nothing else, so a mail host that has only those,
    or a server whose SECRET_KEY is missing, still relays. Without them the command reads
    APP_URL and INBOUND_EMAIL_PASSWORD from the env file itself (cli/ingress.py).
    """
    drop_flask_cli_dotenv()  # URL and INGRESS_PASSWORD from the real environment only
    app = Flask(__name__)
    app.cli.add_command(ingress_group)
    return app


def _ensure_local_dirs(settings: Settings) -> None:
    # 0700 whatever the umask: the database, stored mail and Redis' files live inside.
    # An existing folder is left as it is; `flask doctor` warns when it is open to others.
    os.makedirs(settings.instance_path, mode=0o700, exist_ok=True)


def register_extensions(app: Flask) -> None:
    import models  # noqa: F401  (every model registered before migrations look)
    import services.list_version  # noqa: F401  (session events that let the list poll cheaply)

    db.init_app(app)
    migrate.init_app(app, db, directory=_migrations_dir())
    csrf.init_app(app)
    use_fast_html_params()  # every form's attributes, WTForms' output at a fraction of the cost
    login_manager.init_app(app)


def _migrations_dir() -> str:
    return str(PROJECT_ROOT / "migrations")


def register_request_ids(app: Flask) -> None:
    from blueprints.request_ids import register

    register(app)


def register_blueprints(app: Flask) -> None:
    from blueprints import register_all

    register_all(app)


def register_cli(app: Flask) -> None:
    from cli import register_commands

    register_commands(app)
