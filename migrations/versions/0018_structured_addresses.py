"""structured addresses and sender verdicts (issue 21)

Until now a message's To, Cc and Bcc were display strings joined by ", " and split again on
read, so `"Bounine, Alexandre" <a@idt.com>` came back as two people, and an incoming
message's From was stored as `Name <address>` with the name unquoted. Now:
- to_addresses, cc_addresses, bcc_addresses hold JSON `[{"name", "address"}]`
  (models/base.py PeopleType), and a new reply_to column holds the Reply-To the same way;
- from_address is always a bare address, its display name in the new from_name column;
- an automation's note, which named its rule in from_address, names it in from_name.
- sender_verdict (JSON) holds what vouches for an incoming message's sender
  (mail/sender_trust.py); NULL for mail delivered before: it was never checked.
Existing rows are converted here, read the old way (mail/people.py legacy_people: an entry
ends only after its address, so a name's own comma stays with it).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 09:00:00

"""

import sqlalchemy as sa
from alembic import op

from mail.model import Person
from mail.people import dumps, legacy_people, loads

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

BATCH = 5000
HEADERS = ("to_addresses", "cc_addresses", "bcc_addresses")
_MESSAGES = sa.table(
    "messages",
    sa.column("id", sa.Integer),
    sa.column("direction", sa.String),
    sa.column("from_address", sa.String),
    sa.column("from_name", sa.String),
    *(sa.column(name, sa.Text) for name in HEADERS),
)


def upgrade():
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("from_name", sa.String(255), nullable=False, server_default=""))
        batch.add_column(sa.Column("reply_to", sa.Text(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("sender_verdict", sa.JSON(), nullable=True))
    _convert(_to_structured)


def downgrade():
    _convert(_to_joined)
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("sender_verdict")
        batch.drop_column("reply_to")
        batch.drop_column("from_name")


def _to_structured(row) -> dict:
    # "" stays "" (nobody, as PeopleType reads it): most rows need no write.
    values = {name: _structured(getattr(row, name)) for name in HEADERS}
    sender, name = row.from_address or "", row.from_name or ""
    if row.direction == "incoming" and "<" in sender:
        found = legacy_people(sender)
        if found:
            sender, name = found[0].address, found[0].name
    elif row.direction == "note" and sender and "@" not in sender:
        sender, name = "", sender  # the rule's name (services/automations/engine.py)
    return {**values, "from_address": sender, "from_name": name}


def _structured(old: str | None) -> str:
    return dumps(legacy_people(old)) if old and not old.startswith("[") else old or ""


def _to_joined(row) -> dict:
    values = {name: ", ".join(_old(p) for p in loads(getattr(row, name))) for name in HEADERS}
    sender, name = row.from_address or "", row.from_name or ""
    if row.direction == "incoming" and name and sender:
        sender = _old(Person(sender, name))
    elif row.direction == "note" and name and not sender:
        sender = name
    return {**values, "from_address": sender, "from_name": ""}


def _old(person: Person) -> str:
    return f"{person.name} <{person.address}>" if person.name else person.address


def _convert(change) -> None:
    """Every message row through `change`, in batches of BATCH ids (a big mailbox holds
    millions); only the rows whose values change are written."""
    connection = op.get_bind()
    columns = [_MESSAGES.c[name] for name in ("id", "direction", "from_address", "from_name")]
    query = sa.select(*columns, *(_MESSAGES.c[name] for name in HEADERS)).order_by(_MESSAGES.c.id)
    update = (
        _MESSAGES.update()
        .where(_MESSAGES.c.id == sa.bindparam("row_id"))
        .values({name: sa.bindparam(f"new_{name}") for name in (*HEADERS, "from_address")})
        .values(from_name=sa.bindparam("new_from_name"))
    )
    last = 0
    while True:
        rows = connection.execute(query.where(_MESSAGES.c.id > last).limit(BATCH)).all()
        if not rows:
            return
        changed = []
        for row in rows:
            new = change(row)
            if any(new[name] != (getattr(row, name) or "") for name in new):
                changed.append({"row_id": row.id, **{f"new_{k}": v for k, v in new.items()}})
        if changed:
            connection.execute(update, changed)
        last = rows[-1].id
