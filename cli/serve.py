"""`flask serve`: the process set `make run` starts."""

import sys

import click
from flask.cli import with_appcontext

from extensions import get_settings
from runtime.process_set import run_process_set


@click.command("serve")
@with_appcontext
def serve_command() -> None:
    """Run web, worker and scheduler (and the embedded Redis) until Ctrl-C."""
    try:
        code = run_process_set(get_settings())
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from exc
    sys.exit(code)
