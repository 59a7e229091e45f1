"""notifications: what agents are told about, their choices per event, and the state of the
notification emails per (person, conversation); inbound_emails.status gains "refused" (a
reply by email that was not posted: forged address, wrong sender, auto-reply, bounce)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 18:10:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

EVENTS = (
    "event IN ('new_conversation', 'assigned', 'customer_reply', 'unassigned_reply', "
    "'mention', 'send_failed')"
)
STATUSES_BEFORE = "'pending', 'processing', 'delivered', 'failed', 'bounced'"
STATUSES = STATUSES_BEFORE + ", 'refused'"


def _status_check(values: str) -> None:
    with op.batch_alter_table("inbound_emails", schema=None) as batch_op:
        batch_op.drop_constraint("ck_inbound_emails_status", type_="check")
        batch_op.create_check_constraint("ck_inbound_emails_status", f"status IN ({values})")


def upgrade():
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("in_app", sa.Boolean(), nullable=False),
        sa.Column("email", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(EVENTS, name=op.f("ck_notifications_event")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_notifications_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_notifications_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_notifications_message_id_messages"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["users.id"],
            name=op.f("fk_notifications_actor_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index("ix_notifications_user_read", ["user_id", "read_at"])
        batch_op.create_index("ix_notifications_user_conversation", ["user_id", "conversation_id"])
        batch_op.create_index(batch_op.f("ix_notifications_conversation_id"), ["conversation_id"])

    op.create_table(
        "notification_preferences",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("email", sa.Boolean(), nullable=False),
        sa.Column("in_app", sa.Boolean(), nullable=False),
        sa.CheckConstraint(EVENTS, name=op.f("ck_notification_preferences_event")),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_notification_preferences_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "event", name=op.f("pk_notification_preferences")),
    )

    op.create_table(
        "notification_threads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("emails_sent", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_shown_message_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_notification_threads_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_notification_threads_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_threads")),
        sa.UniqueConstraint(
            "user_id", "conversation_id", name=op.f("uq_notification_threads_user_id_conversation_id")
        ),
    )
    with op.batch_alter_table("notification_threads", schema=None) as batch_op:
        batch_op.create_index("ix_notification_threads_due_at", ["due_at"])

    _status_check(STATUSES)


def downgrade():
    op.execute(sa.text("UPDATE inbound_emails SET status = 'bounced' WHERE status = 'refused'"))
    _status_check(STATUSES_BEFORE)
    op.drop_table("notification_threads")
    op.drop_table("notification_preferences")
    op.drop_table("notifications")
