"""`threadline`: the installed package's command, the same as `flask --app app` in a checkout.

`threadline serve`, `threadline doctor`, `threadline db upgrade`, `threadline admin ensure`...
Every file it creates is owner-only (umask 077). Flask's own dotenv loading is off: settings
come from the one env file config/settings.py reads (ENV_FILE), never from a `.env` or `.flaskenv`
that happens to sit in the working folder.
"""

from __future__ import annotations

from flask import Flask
from flask.cli import FlaskGroup


def _create_app() -> Flask:
    from app import create_app

    return create_app()


cli = FlaskGroup(
    name="threadline",
    help="Threadline's commands (the `flask --app app` commands of a source checkout).",
    create_app=_create_app,
    load_dotenv=False,
)


def main() -> None:
    from runtime.file_modes import use_owner_only_umask

    # Like the Makefile's `umask 077 &&`: `threadline db upgrade` run by hand creates the
    # SQLite database (and serve everything else) readable by Threadline's user alone.
    use_owner_only_umask()
    cli.main(prog_name="threadline")
