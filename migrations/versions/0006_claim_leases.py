"""claim leases for inbound processing and outgoing sends

A job renews its row's lease while it runs; when a worker dies, the lease runs out and the
sweep hands the row to another worker within a minute (services/leases.py). Rows left
`processing` or `sending` by the previous version have no lease: they count as expired.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 08:00:00

"""
from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("inbound_emails", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("handed_over_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("handed_over_at")
        batch_op.drop_column("lease_expires_at")
    with op.batch_alter_table("inbound_emails", schema=None) as batch_op:
        batch_op.drop_column("lease_expires_at")
