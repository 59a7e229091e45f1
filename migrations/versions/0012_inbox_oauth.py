"""inbox_oauth: an inbox's OAuth 2.0 sign-in to Microsoft 365 or Google (XOAUTH2)

Refresh and access tokens are stored encrypted (EncryptedText, like passwords). A
connection made in the setup wizard belongs to its draft (draft_id) until the inbox exists.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 18:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "inbox_oauth",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("inbox_id", sa.Integer(), nullable=True),
        sa.Column("draft_id", sa.String(length=64), nullable=True),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("mailbox", sa.String(length=320), nullable=False),
        sa.Column("refresh_token", sa.Text(), nullable=False),
        sa.Column("access_token", sa.Text(), nullable=True),
        sa.Column("access_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_refresh_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "provider IN ('microsoft', 'google')", name=op.f("ck_inbox_oauth_provider")
        ),
        sa.ForeignKeyConstraint(
            ["inbox_id"],
            ["inboxes.id"],
            name=op.f("fk_inbox_oauth_inbox_id_inboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_oauth")),
        sa.UniqueConstraint("inbox_id", name=op.f("uq_inbox_oauth_inbox_id")),
        sa.UniqueConstraint("draft_id", name=op.f("uq_inbox_oauth_draft_id")),
    )


def downgrade():
    op.drop_table("inbox_oauth")
