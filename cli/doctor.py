"""`flask doctor`: every dependency checked live, each with OK or the problem and its fix."""

from __future__ import annotations

import logging
import sys

import click
from flask.cli import with_appcontext

from extensions import get_settings
from services.health import FAIL
from services.health_servers import run_all_checks


@click.command("doctor")
@with_appcontext
def doctor_command() -> None:
    """Check configuration, database, Redis, workers, storage, SMTP and ingresses."""
    # The checks' own words are the report; library chatter (retries, migrations) is noise.
    for noisy in ("alembic", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    checks = run_all_checks(get_settings())
    width = max(len(c.name) for c in checks)
    for check in checks:
        line = f"{check.state:<4}  {check.name:<{width}}  {check.detail}"
        for note in check.notes:
            line += f"\n      {'':<{width}}  {note}"
        if check.fix and check.state != "OK":
            line += f"\n      {'':<{width}}  fix: {check.fix}"
        click.echo(line)
    failed = [c.name for c in checks if c.state == FAIL]
    if failed:
        click.echo(f"\n{len(failed)} problem(s): {', '.join(failed)}.", err=True)
        sys.exit(1)
    click.echo("\nEverything Threadline needs is reachable.")
