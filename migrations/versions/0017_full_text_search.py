"""full-text search (issue 20): the list's search stops scanning every message

SQLite: three FTS5 tables over the rows they index (external content, so the text is stored
once and snippet() reads it back from the row):
- messages_fts (unicode61: words and word prefixes) over messages.text_body, for every
  message but activity lines (the search never looked at those);
- conversations_fts and contacts_fts (trigram: any substring of 3 characters or more, as the
  LIKE search matched) over conversations.subject and contacts.name/email.
Triggers keep them in step inside the very transaction that writes the row, whoever writes
it (the inbound job, a reply, a merge, a move, a bulk import, a cleanup): no service
has to remember, and a rolled-back write rolls its index entries back with it. A move or a
merge changes messages.conversation_id, which the index does not hold (the search joins
back to messages), so it needs nothing.

PostgreSQL: the index is part of the row, so nothing has to be kept in step:
- a GIN expression index on the words of messages.text_body ('simple' configuration, no
  stemming; punctuation, ASCII and the common typographic marks, read as a space so words
  split as SQLite's unicode61 splits them and an address or a hyphenated word is not one
  token; the first 100,000 characters, which keeps a giant body under tsvector's 1 MB
  limit instead of failing its insert), partial: activity lines are not searched;
- pg_trgm GIN indexes on conversations.subject and contacts.name/email, which the existing
  ILIKE '%…%' uses as it stands.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 12:00:00

"""

import string

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

# The same expression as services/search.py's pg_message_words("text_body") (a test holds
# them equal): the planner uses the index only for a query on this very expression. The
# punctuation is spelled in Unicode escapes so that no percent sign or colon reaches a layer
# that would read it as a placeholder.
PUNCTUATION = string.punctuation + "‘’‚‛“”„‟«»‹›–—―‐…·•¡¿§¶†‡′″\u00a0\u2009\u200b\u202f\u3000"


def _pg_string(value: str) -> str:
    return "U&'" + "".join(f"\\{ord(c):04x}" for c in value) + "'"


PG_MESSAGE_WORDS = (
    "to_tsvector('simple'::regconfig, translate(left(coalesce(text_body, ''), 100000), "
    f"{_pg_string(PUNCTUATION)}, {_pg_string(' ' * len(PUNCTUATION))}))"
)

SQLITE_UP = [
    # --- messages: words of the text, every message but activity lines ---------------------
    "CREATE VIRTUAL TABLE messages_fts USING fts5("
    "text_body, content='messages', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages "
    "WHEN new.direction != 'activity' BEGIN "
    "INSERT INTO messages_fts(rowid, text_body) VALUES (new.id, new.text_body); END",
    "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages "
    "WHEN old.direction != 'activity' BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, text_body) "
    "VALUES ('delete', old.id, old.text_body); END",
    # One trigger, its two steps in this order (two triggers on one event fire in an order
    # SQLite does not promise: the delete must not come after the insert).
    "CREATE TRIGGER messages_fts_update AFTER UPDATE OF text_body, direction ON messages BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, text_body) "
    "SELECT 'delete', old.id, old.text_body WHERE old.direction != 'activity'; "
    "INSERT INTO messages_fts(rowid, text_body) "
    "SELECT new.id, new.text_body WHERE new.direction != 'activity'; END",
    "INSERT INTO messages_fts(rowid, text_body) "
    "SELECT id, text_body FROM messages WHERE direction != 'activity'",
    # --- conversations: substrings of the subject -------------------------------------------
    "CREATE VIRTUAL TABLE conversations_fts USING fts5("
    "subject, content='conversations', content_rowid='id', tokenize='trigram')",
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
    # --- contacts: substrings of the name and the address -----------------------------------
    "CREATE VIRTUAL TABLE contacts_fts USING fts5("
    "name, email, content='contacts', content_rowid='id', tokenize='trigram')",
    "CREATE TRIGGER contacts_fts_insert AFTER INSERT ON contacts BEGIN "
    "INSERT INTO contacts_fts(rowid, name, email) VALUES (new.id, new.name, new.email); END",
    "CREATE TRIGGER contacts_fts_delete AFTER DELETE ON contacts BEGIN "
    "INSERT INTO contacts_fts(contacts_fts, rowid, name, email) "
    "VALUES ('delete', old.id, old.name, old.email); END",
    "CREATE TRIGGER contacts_fts_update AFTER UPDATE OF name, email ON contacts BEGIN "
    "INSERT INTO contacts_fts(contacts_fts, rowid, name, email) "
    "VALUES ('delete', old.id, old.name, old.email); "
    "INSERT INTO contacts_fts(rowid, name, email) VALUES (new.id, new.name, new.email); END",
    "INSERT INTO contacts_fts(contacts_fts) VALUES ('rebuild')",
]

SQLITE_DOWN = [
    *(
        f"DROP TRIGGER IF EXISTS {name}"
        for name in (
            "messages_fts_insert",
            "messages_fts_delete",
            "messages_fts_update",
            "conversations_fts_insert",
            "conversations_fts_delete",
            "conversations_fts_update",
            "contacts_fts_insert",
            "contacts_fts_delete",
            "contacts_fts_update",
        )
    ),
    "DROP TABLE IF EXISTS messages_fts",
    "DROP TABLE IF EXISTS conversations_fts",
    "DROP TABLE IF EXISTS contacts_fts",
]

POSTGRES_UP = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    f"CREATE INDEX ix_messages_text_words ON messages USING gin ({PG_MESSAGE_WORDS}) "
    "WHERE direction <> 'activity'",
    "CREATE INDEX ix_conversations_subject_trgm ON conversations USING gin (subject gin_trgm_ops)",
    "CREATE INDEX ix_contacts_email_trgm ON contacts USING gin (email gin_trgm_ops)",
    "CREATE INDEX ix_contacts_name_trgm ON contacts USING gin (name gin_trgm_ops)",
]

POSTGRES_DOWN = [
    "DROP INDEX IF EXISTS ix_messages_text_words",
    "DROP INDEX IF EXISTS ix_conversations_subject_trgm",
    "DROP INDEX IF EXISTS ix_contacts_email_trgm",
    "DROP INDEX IF EXISTS ix_contacts_name_trgm",
    # pg_trgm stays: another schema object of the database may have come to use it.
]


def _run(statements):
    for statement in statements:
        op.execute(statement)


def upgrade():
    _run(SQLITE_UP if op.get_bind().dialect.name == "sqlite" else POSTGRES_UP)


def downgrade():
    _run(SQLITE_DOWN if op.get_bind().dialect.name == "sqlite" else POSTGRES_DOWN)
