"""inbound headers: From, To and Subject stored on inbound_emails

The Inbound log lists and searches them for every email, also mail that became no message
(bounced, failed). Rows accepted before this revision keep NULL: the processing job fills
them if it runs again, and the log reads their raw header block meanwhile.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 14:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("inbound_emails", schema=None) as batch_op:
        batch_op.add_column(sa.Column("from_address", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("to_addresses", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("subject", sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table("inbound_emails", schema=None) as batch_op:
        batch_op.drop_column("subject")
        batch_op.drop_column("to_addresses")
        batch_op.drop_column("from_address")
