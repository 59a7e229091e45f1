"""`flask inbound list|show|reprocess`: the operator's view of received raw email."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from extensions import db
from models import InboundEmail, Message
from models.inbound import INBOUND_STATUSES, STATUS_MEANINGS
from services.inbound_reprocess import NotQueued, ReprocessError, reprocess


def _describe(row: InboundEmail) -> dict:
    conversation_id = db.session.scalar(
        select(Message.conversation_id).where(Message.inbound_email_id == row.id).limit(1)
    )
    return {
        "id": row.id,
        "received": row.created_at.isoformat(timespec="seconds"),
        "source": row.source,
        "status": row.status,
        "reason": row.reason,
        "message_id": row.message_id,
        "inbox_id": row.inbox_id,
        "conversation_id": conversation_id,
        "size": row.size,
        "checksum": row.checksum,
        "storage_key": row.storage_key,
        "attempts": row.attempts,
    }


def _get(inbound_id: int) -> InboundEmail:
    row = db.session.get(InboundEmail, inbound_id)
    if row is None:
        raise click.ClickException(f"no inbound email #{inbound_id}; see: flask inbound list")
    return row


@click.group("inbound", help="Inspect and reprocess received raw email.")
def inbound_group() -> None:
    pass


@inbound_group.command("list")
@click.option(
    "--status",
    type=click.Choice(INBOUND_STATUSES),
    help="Only this status: "
    + "; ".join(f"{status}: {meaning}" for status, meaning in STATUS_MEANINGS.items()),
)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
@click.option("--json", "as_json", is_flag=True, help="One JSON array, for scripts.")
@with_appcontext
def list_command(status: str | None, limit: int, as_json: bool) -> None:
    """Newest first."""
    query = select(InboundEmail).order_by(InboundEmail.id.desc()).limit(limit)
    if status:
        query = query.where(InboundEmail.status == status)
    rows = [_describe(row) for row in db.session.scalars(query)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No inbound email" + (f" with status {status}." if status else " yet."))
        return
    for r in rows:
        where = f"conversation {r['conversation_id']}" if r["conversation_id"] else "-"
        click.echo(
            f"#{r['id']:<6} {r['received']}  {r['source']:<9} {r['status']:<10} "
            f"{r['message_id']}  {where}" + (f"  ({r['reason']})" if r["reason"] else "")
        )


@inbound_group.command("show")
@click.argument("inbound_id", type=int)
@with_appcontext
def show_command(inbound_id: int) -> None:
    """Everything recorded about one inbound email."""
    for key, value in _describe(_get(inbound_id)).items():
        click.echo(f"{key:>15}: {'-' if value is None else value}")


@inbound_group.command("reprocess")
@click.argument("inbound_id", type=int)
@with_appcontext
def reprocess_command(inbound_id: int) -> None:
    """Run processing again (idempotent: a delivered message is never duplicated)."""
    try:
        reprocess(_get(inbound_id))
    except (ReprocessError, NotQueued) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Inbound email #{inbound_id} queued for processing.")
