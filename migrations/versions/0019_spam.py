"""spam: a conversation status and per-inbox block lists (issue 21)

- conversations.status may be 'spam' (services/spam.py): the CHECK constraint is widened.
- inbox_blocked_senders: each inbox's block list, a full address (a@b.example) or a domain
  (b.example), lower-case; mail from them lands in the Spam view.

Downgrading moves spam conversations to resolved (the older version knows no 'spam'); the
activity lines still say why they were set aside.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 09:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

# Written out, not imported: a migration is a snapshot (0007's note).
STATUSES_BEFORE = "'open', 'pending', 'resolved', 'snoozed'"
STATUSES = STATUSES_BEFORE + ", 'spam'"


def _status_check(batch_op, values: str) -> None:
    batch_op.drop_constraint("ck_conversations_status", type_="check")
    batch_op.create_check_constraint("ck_conversations_status", f"status IN ({values})")


# SQLite changes a CHECK by copying the table, which drops its triggers: 0017's, that keep
# the subject search in step, are made again (the same statements, written out).
SQLITE_SEARCH_TRIGGERS = [
    "CREATE TRIGGER conversations_fts_insert AFTER INSERT ON conversations BEGIN "
    "INSERT INTO conversations_fts(rowid, subject) VALUES (new.id, new.subject); END",
    "CREATE TRIGGER conversations_fts_delete AFTER DELETE ON conversations BEGIN "
    "INSERT INTO conversations_fts(conversations_fts, rowid, subject) "
    "VALUES ('delete', old.id, old.subject); END",
    "CREATE TRIGGER conversations_fts_update AFTER UPDATE OF subject ON conversations BEGIN "
    "INSERT INTO conversations_fts(conversations_fts, rowid, subject) "
    "VALUES ('delete', old.id, old.subject); "
    "INSERT INTO conversations_fts(rowid, subject) VALUES (new.id, new.subject); END",
    "INSERT INTO conversations_fts(conversations_fts) VALUES ('rebuild')",
]


def _widen(values: str) -> None:
    """The status CHECK with these values. On SQLite the copy of the table must run without
    foreign keys: with them on, dropping the old table deletes its rows first, which cascades
    to every message (and the self-reference of merged_into_id makes SQLite refuse: "database
    table is locked"). The pragma only takes effect outside a transaction, as each migration
    here starts; the next connection has them on again (extensions.py)."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.execute("PRAGMA foreign_keys=OFF")
        if op.get_bind().exec_driver_sql("PRAGMA foreign_keys").scalar():
            raise RuntimeError(
                "cannot turn SQLite's foreign keys off inside a transaction; run this "
                "migration on its own: flask db upgrade 0019"
            )
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        _status_check(batch_op, values)
    if sqlite:
        broken = op.get_bind().exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"foreign keys broken by copying conversations: {broken[:5]}")
        for statement in SQLITE_SEARCH_TRIGGERS:
            op.execute(statement)


def upgrade():
    _widen(STATUSES)
    op.create_table(
        "inbox_blocked_senders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("inbox_id", sa.Integer(), nullable=False),
        sa.Column("pattern", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_user_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["inbox_id"],
            ["inboxes.id"],
            name=op.f("fk_inbox_blocked_senders_inbox_id_inboxes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"],
            ["users.id"],
            name=op.f("fk_inbox_blocked_senders_created_by_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_blocked_senders")),
        sa.UniqueConstraint(
            "inbox_id", "pattern", name=op.f("uq_inbox_blocked_senders_inbox_id_pattern")
        ),
    )


def downgrade():
    op.drop_table("inbox_blocked_senders")
    op.execute(sa.text("UPDATE conversations SET status = 'resolved' WHERE status = 'spam'"))
    _widen(STATUSES_BEFORE)
