"""What the `flask` command copied into the environment on its own, for config/ to undo.

With python-dotenv installed, Flask's CLI reads `.flaskenv` and `.env` (each found by walking
up from the working folder) into os.environ before it imports the app, setting only names
that are not set yet. Threadline reads one env file (ENV_FILE, else the project's .env) and
real environment variables win over it. Flask's copies are neither, and left in place they
would win over ENV_FILE: `flask` run from a folder holding some other .env would use that
file's SECRET_KEY and DATABASE_URL while gunicorn and the worker used ENV_FILE's.

FLASK_SKIP_DOTENV=1 stops the copying, but only when whoever runs `flask` sets it (an
operator's shell, an MTA's pipe command). Undoing the copies works whoever runs it, from any
folder. The `threadline` command (cli/main.py) does not copy anything in the first place.
"""

from __future__ import annotations

import os

import click
from click.core import ParameterSource
from dotenv import dotenv_values, find_dotenv
from flask.cli import ScriptInfo

# .flaskenv's FLASK_APP (and FLASK_DEBUG...) configure the flask command itself: they stay.
FLASK_OWN_PREFIX = "FLASK_"


def flask_cli_loading_the_app() -> click.Context | None:
    """The flask command's context while it imports the app; None in gunicorn, worker.py or
    an app built by the tests, where Flask's CLI copied nothing."""
    ctx = click.get_current_context(silent=True)
    if ctx is None or ctx.find_object(ScriptInfo) is None:
        return None
    return ctx


def env_file_option_used() -> bool:
    """`flask --env-file FILE` (or FLASK_ENV_FILE): a second env file Flask loaded itself."""
    ctx = flask_cli_loading_the_app()
    if ctx is None:
        return False
    source = ctx.find_root().get_parameter_source("env_file")
    return source not in (None, ParameterSource.DEFAULT)


def _started_with() -> set[str] | None:
    """The names this process was started with (Linux keeps them in /proc), else None."""
    try:
        with open("/proc/self/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    return {os.fsdecode(entry.partition(b"=")[0]) for entry in raw.split(b"\0") if entry}


def flask_cli_dotenv_names() -> set[str]:
    """Names whose value Flask's CLI copied from its default dotenv files into os.environ."""
    ctx = flask_cli_loading_the_app()
    if ctx is None or not ctx.find_object(ScriptInfo).load_dotenv_defaults:
        return set()
    copied: dict[str, str | None] = {}
    for name in (".flaskenv", ".env"):  # flask.cli.load_dotenv's order: .env wins
        path = find_dotenv(name, usecwd=True)
        try:
            copied |= dotenv_values(path, encoding="utf-8") if path else {}
        except (OSError, UnicodeDecodeError):
            continue  # Flask could not have read it either
    real = _started_with()
    return {
        name
        for name, value in copied.items()
        if not name.startswith(FLASK_OWN_PREFIX)
        and value is not None
        and os.environ.get(name) == value  # still the file's value: nothing set it since
        # An exported variable equal to the file's value was not copied: it stays (Linux
        # tells them apart; elsewhere such a variable gives way to the env file's value).
        and (real is None or name not in real)
    }


def drop_flask_cli_dotenv() -> None:
    """Remove what Flask's CLI copied from its own .env/.flaskenv; a no-op anywhere else."""
    for name in flask_cli_dotenv_names():
        del os.environ[name]
