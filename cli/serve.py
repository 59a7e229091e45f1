"""`flask serve`: the process set `make run` starts."""

import sys

import click
from flask.cli import with_appcontext

from extensions import get_settings
from runtime.file_modes import use_owner_only_umask
from runtime.process_set import run_process_set


@click.command("serve")
@with_appcontext
def serve_command() -> None:
    """Run web, worker and scheduler (and the embedded Redis) until Ctrl-C."""
    use_owner_only_umask()  # inherited by Redis, gunicorn, the worker and the scheduler
    try:
        code = run_process_set(get_settings())
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from exc
    sys.exit(code)
