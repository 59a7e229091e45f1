"""the workspace: reply drafts, saved replies, contact notes, archived inboxes

reply_drafts: the composer as each agent left it (one per agent and conversation).
saved_replies: canned answers, shared per inbox or by all (admins), or personal.
contacts.notes: the team's notes about a customer; inboxes.archived_at: receives no more.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 11:00:00

"""
from alembic import op
import sqlalchemy as sa

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('saved_replies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('inbox_id', sa.Integer(), nullable=True),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('inbox_id IS NULL OR owner_id IS NULL', name=op.f('ck_saved_replies_shared_or_personal')),
    sa.ForeignKeyConstraint(['inbox_id'], ['inboxes.id'], name=op.f('fk_saved_replies_inbox_id_inboxes'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_saved_replies_owner_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_saved_replies'))
    )
    with op.batch_alter_table('saved_replies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_saved_replies_inbox_id'), ['inbox_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_saved_replies_owner_id'), ['owner_id'], unique=False)

    op.create_table('reply_drafts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('to_addresses', sa.Text(), nullable=False),
    sa.Column('cc', sa.Text(), nullable=False),
    sa.Column('bcc', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('reply', 'note')", name=op.f('ck_reply_drafts_kind')),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_reply_drafts_conversation_id_conversations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_reply_drafts_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reply_drafts')),
    sa.UniqueConstraint('conversation_id', 'user_id', name=op.f('uq_reply_drafts_conversation_id_user_id'))
    )
    with op.batch_alter_table('reply_drafts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reply_drafts_conversation_id'), ['conversation_id'], unique=False)

    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notes', sa.Text(), server_default='', nullable=False))

    with op.batch_alter_table('inboxes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True))



def downgrade():
    with op.batch_alter_table('inboxes', schema=None) as batch_op:
        batch_op.drop_column('archived_at')

    with op.batch_alter_table('contacts', schema=None) as batch_op:
        batch_op.drop_column('notes')

    with op.batch_alter_table('reply_drafts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reply_drafts_conversation_id'))

    op.drop_table('reply_drafts')
    with op.batch_alter_table('saved_replies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_saved_replies_owner_id'))
        batch_op.drop_index(batch_op.f('ix_saved_replies_inbox_id'))

    op.drop_table('saved_replies')
