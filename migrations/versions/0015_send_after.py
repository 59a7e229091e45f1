"""undo send and scheduled send: messages.send_after and messages.scheduled; delivery_status
gains "held" (a scheduled reply the customer wrote after: an agent decides)

No send job takes a reply before its send_after: the composer's undo window, or the time the
agent scheduled it for (services/send_later.py). The index serves the tick that sends them
when due (jobs/sweeps.py send_due_replies). Existing replies have neither: sent as before.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 10:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

STATUSES_BEFORE = "'received', 'queued', 'sending', 'sent', 'failed', 'unknown'"
STATUSES = STATUSES_BEFORE + ", 'held'"


def _status_check(batch_op, values: str) -> None:
    batch_op.drop_constraint("ck_messages_delivery_status", type_="check")
    batch_op.create_check_constraint(
        "ck_messages_delivery_status", f"delivery_status IN ({values})"
    )


def upgrade():
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("send_after", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("scheduled", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.create_index("ix_messages_delivery_send_after", ["delivery_status", "send_after"])
        _status_check(batch_op, STATUSES)


def downgrade():
    # The older version would send a scheduled reply at once (its sweep knows no send_after)
    # and knows no "held": both wait for an agent's "Retry" instead.
    op.execute(
        sa.text(
            "UPDATE messages SET delivery_status = 'failed', delivery_error = :why "
            "WHERE delivery_status = 'held' OR (delivery_status = 'queued' AND scheduled)"
        ).bindparams(why="Scheduled, not sent: Threadline was downgraded. Retry to send it now.")
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        _status_check(batch_op, STATUSES_BEFORE)
        batch_op.drop_index("ix_messages_delivery_send_after")
        batch_op.drop_column("scheduled")
        batch_op.drop_column("send_after")
