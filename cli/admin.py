"""`flask admin create`, `flask admin ensure` and `flask admin reset-2fa`."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from extensions import get_settings
from services.two_factor import reset_by_operator
from services.users import UserError, create_user, ensure_admin, find_user_by_email


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


@admin_group.command("reset-2fa")
@click.argument("email")
@with_appcontext
def reset_two_factor_command(email: str) -> None:
    """Turn two-factor sign-in off for EMAIL (lost phone and recovery codes)."""
    user = find_user_by_email(email)
    if user is None:
        raise click.ClickException(f"no user has the email {email.strip().lower()}")
    if not user.has_two_factor and not user.totp_secret:
        click.echo(f"{user.email} has no two-factor sign-in; nothing changed.")
        return
    reset_by_operator(user)
    click.echo(
        f"Two-factor sign-in is off for {user.email} and every session of theirs ended. "
        "They sign in with their password and can set it up again on their profile."
    )
