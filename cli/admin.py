"""`flask admin create` and `flask admin ensure`."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from extensions import get_settings
from services.users import UserError, create_user, ensure_admin


@click.group("admin", help="Manage admin and agent accounts.")
def admin_group() -> None:
    pass


@admin_group.command("create")
@click.option("--email", required=True, help="Sign-in email address.")
@click.option("--password", required=True, help="At least 12 characters, not a common password.")
@click.option("--name", required=True, help="Name shown to colleagues and customers.")
@click.option("--role", type=click.Choice(["admin", "agent"]), default="admin", show_default=True)
@with_appcontext
def create_command(email: str, password: str, name: str, role: str) -> None:
    """Create a user who can sign in."""
    try:
        user = create_user(email, name, password, role=role)
    except UserError as exc:
        raise click.ClickException(f"cannot create the user: {exc}") from exc
    click.echo(f"Created {user.role} {user.email}.")


@admin_group.command("ensure")
@with_appcontext
def ensure_command() -> None:
    """Create the first admin from ADMIN_EMAIL/ADMIN_PASSWORD if there is no admin yet."""
    settings = get_settings()
    try:
        user, generated = ensure_admin(
            settings.admin_email, settings.admin_password, settings.admin_name
        )
    except UserError as exc:
        raise click.ClickException(f"cannot create the first admin: {exc}") from exc
    if user is None:
        return
    click.echo(f"Created the first admin: {user.email}")
    if generated:
        # Printed once, never stored in clear or logged elsewhere.
        click.echo(f"Generated password (shown only now): {generated}")
