"""relay connection: the SMTP client's address, HELO name and MAIL FROM on inbound_emails

The relay command passes them when the MTA does (--client-address, --helo, --sender), so
the worker can check SPF itself (mail/spf.py) when no trusted server wrote an
Authentication-Results header. NULL for every other ingress and for older rows.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 09:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbound_emails", schema=None) as batch_op:
        batch_op.add_column(sa.Column("client_address", sa.String(64), nullable=True))
        batch_op.add_column(sa.Column("helo", sa.String(255), nullable=True))
        batch_op.add_column(sa.Column("mail_from", sa.String(512), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inbound_emails", schema=None) as batch_op:
        batch_op.drop_column("mail_from")
        batch_op.drop_column("helo")
        batch_op.drop_column("client_address")
