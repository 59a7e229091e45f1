"""IMAP IDLE on by default: inbox_imap_settings.use_idle now means "watch with IDLE when the
server offers it" (jobs/imap_idle.py). Nothing watched before this revision, so every inbox
starts with it on; an admin unticks it to leave an inbox to polling alone.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 15:35:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(sa.text("UPDATE inbox_imap_settings SET use_idle = :on").bindparams(on=True))
    with op.batch_alter_table("inbox_imap_settings", schema=None) as batch_op:
        batch_op.alter_column(
            "use_idle", existing_type=sa.Boolean(), server_default=sa.true(), nullable=False
        )


def downgrade():
    with op.batch_alter_table("inbox_imap_settings", schema=None) as batch_op:
        batch_op.alter_column(
            "use_idle", existing_type=sa.Boolean(), server_default=None, nullable=False
        )
