"""participants, forwards, inbox aliases and HTML signatures (issue 19)

- conversation_participants: people on a conversation besides its contact: those the
  customer copied (cc, reply-all includes them) and third parties an agent forwarded it to
  (third_party, each with its own reply+<token>@ continuity address).
- messages.participant_id (whose thread a message belongs to) and messages.forward.
- inbox_addresses: an inbox's aliases, routed to it and replied from, verified by a test email.
- users.signature, and inboxes.signature becomes sanitised HTML: an existing plain-text
  signature is escaped, its line breaks kept as <br>.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 12:00:00

"""

import html

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "conversation_participants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "role IN ('cc', 'third_party')", name=op.f("ck_conversation_participants_role")
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_participants_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_participants")),
        sa.UniqueConstraint(
            "conversation_id", "email", name=op.f("uq_conversation_participants_conversation_id")
        ),
        sa.UniqueConstraint("token", name=op.f("uq_conversation_participants_token")),
    )
    with op.batch_alter_table("conversation_participants", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_conversation_participants_conversation_id"), ["conversation_id"]
        )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("participant_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("forward", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.create_index(batch_op.f("ix_messages_participant_id"), ["participant_id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_messages_participant_id_conversation_participants"),
            "conversation_participants",
            ["participant_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.create_table(
        "inbox_addresses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("inbox_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("test_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["inbox_id"],
            ["inboxes.id"],
            name=op.f("fk_inbox_addresses_inbox_id_inboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_addresses")),
        sa.UniqueConstraint("address", name=op.f("uq_inbox_addresses_address")),
    )
    with op.batch_alter_table("inbox_addresses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inbox_addresses_inbox_id"), ["inbox_id"])
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signature", sa.Text(), server_default="", nullable=False))
    _signatures(lambda text: html.escape(text).replace("\n", "<br>\n"))


def downgrade():
    _signatures(_text_of)
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("signature")
    with op.batch_alter_table("inbox_addresses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbox_addresses_inbox_id"))
    op.drop_table("inbox_addresses")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_messages_participant_id_conversation_participants"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_messages_participant_id"))
        batch_op.drop_column("forward")
        batch_op.drop_column("participant_id")
    with op.batch_alter_table("conversation_participants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversation_participants_conversation_id"))
    op.drop_table("conversation_participants")


def _text_of(markup: str) -> str:
    """The older version shows the signature as text: tags go, line breaks stay."""
    import re

    text = re.sub(r"<br\s*/?>\n?|</p>|</div>", "\n", markup, flags=re.I)
    return html.unescape(re.sub(r"<[^>]+>", "", text)).strip()


def _signatures(convert) -> None:
    connection = op.get_bind()
    inboxes = sa.table("inboxes", sa.column("id", sa.Integer), sa.column("signature", sa.Text))
    rows = connection.execute(sa.select(inboxes.c.id, inboxes.c.signature)).all()
    for inbox_id, signature in rows:
        if signature and signature.strip():
            connection.execute(
                inboxes.update()
                .where(inboxes.c.id == inbox_id)
                .values(signature=convert(signature.strip()))
            )
