"""merge: conversations.merged_into_id, the conversation one was merged into

A merged conversation keeps its row (its number, reply address and URL stay valid) with its
messages moved into the survivor; mail that still names it is routed on to the survivor
(services/routing.py). SET NULL if the survivor is ever deleted: the merged one is then a
plain resolved conversation again.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 09:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("merged_into_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_conversations_merged_into_id"), ["merged_into_id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_conversations_merged_into_id_conversations"),
            "conversations",
            ["merged_into_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade():
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_conversations_merged_into_id_conversations"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_conversations_merged_into_id"))
        batch_op.drop_column("merged_into_id")
