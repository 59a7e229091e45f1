"""CHECK constraints on every status, direction and choice column (models/enums.py)

The values are written out here, not imported: a migration is a snapshot, and the enums may
grow after it. A row holding a value outside these would stop the upgrade; Threadline never
wrote one.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 09:00:00

"""
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

CHECKS = [
    ("conversations", "status", "'open', 'pending', 'resolved', 'snoozed'"),
    ("messages", "direction", "'incoming', 'outgoing', 'note', 'activity'"),
    ("messages", "delivery_status", "'received', 'queued', 'sending', 'sent', 'failed', 'unknown'"),
    ("messages", "threaded_by", "'new', 'reply_token', 'in_reply_to', 'references', 'subject', 'manual'"),
    ("inbound_emails", "status", "'pending', 'processing', 'delivered', 'failed', 'bounced'"),
    ("inboxes", "mode", "'forwarding', 'imap'"),
    ("inboxes", "sender_name_style", "'agent_from_inbox', 'inbox'"),
    ("inboxes", "reply_to_style", "'continuity', 'inbox'"),
    ("inbox_imap_settings", "security", "'ssl', 'starttls', 'none'"),
    ("inbox_imap_settings", "after_import", "'leave', 'mark', 'move', 'delete'"),
    ("inbox_smtp_settings", "security", "'ssl', 'starttls', 'none'"),
    ("inbox_smtp_settings", "auth_method", "'login', 'plain', 'none'"),
    ("users", "role", "'admin', 'agent'"),
    ("users", "availability", "'online', 'busy', 'offline'"),
]


def _tables():
    tables = {}
    for table, column, values in CHECKS:
        tables.setdefault(table, []).append((column, values))
    return tables


def upgrade():
    for table, columns in _tables().items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column, values in columns:
                batch_op.create_check_constraint(
                    f"ck_{table}_{column}", f"{column} IN ({values})"
                )


def downgrade():
    for table, columns in _tables().items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column, _ in columns:
                batch_op.drop_constraint(f"ck_{table}_{column}", type_="check")
