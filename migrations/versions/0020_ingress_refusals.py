"""ingress refusals: every post an ingress refused, with its reason (issue 22)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05 09:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingress_refusals",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("ingress", sa.String(32), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("client_address", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("from_address", sa.Text(), nullable=True),
        sa.Column("to_addresses", sa.Text(), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("message_id", sa.String(998), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
    )
    op.create_index("ix_ingress_refusals_last_at", "ingress_refusals", ["last_at"])


def downgrade() -> None:
    op.drop_index("ix_ingress_refusals_last_at", table_name="ingress_refusals")
    op.drop_table("ingress_refusals")
