"""The people of a header as the database keeps them: JSON `[{"name", "address"}]`.

Before migration 0018 a message's To, Cc and Bcc were its people's display strings joined by
", " and split again on read, so `"Bounine, Alexandre" <a@idt.com>` came back as two people.
Now they are stored structured (models/base.py PeopleType) and read back as they were
written; `legacy_people` reads the old joined strings once, for the migration.
"""

from __future__ import annotations

import json
import re

from mail.addresses import parse_addresses
from mail.model import People, Person

# One entry of the old ", "-joined format: a bare address, or `Name <address>` (the name
# unquoted, so it may hold commas), up to the next ", " that follows an address.
_LEGACY_ENTRY = re.compile(
    r"\s*(?:(?P<bare>[^\s,<>]+@[^\s,<>]+)|(?P<name>[^<>]*?)\s*<(?P<angle>[^<>]*)>)\s*(?:,|$)"
)


def people_of(value) -> People:
    """People from what code hands a column: People or a list of Person (kept), a list of
    strings (each an address or `Name <address>`), or one string read as an RFC 5322
    address list (quoted commas respected); None or "" is nobody."""
    if value is None or value == "":
        return People()
    if isinstance(value, str):
        return People(_from_header(value))
    people = People()
    for item in value:
        people.extend([item] if isinstance(item, Person) else _from_header(str(item)))
    return people


def _from_header(value: str) -> list[Person]:
    return [Person(address, name) for name, address in parse_addresses([value])]


def dumps(people: People) -> str:
    return json.dumps(people.as_json(), ensure_ascii=False, separators=(",", ":"))


def loads(text: str | None) -> People:
    """The stored JSON; a value that is not JSON (a row written by hand, or by code that
    predates the migration) is read the old way rather than lost."""
    if not text:
        return People()
    if text.startswith("["):
        try:
            return People(
                Person(str(p.get("address") or ""), str(p.get("name") or ""))
                for p in json.loads(text)
                if isinstance(p, dict)
            )
        except ValueError:
            pass
    return legacy_people(text)


def legacy_people(text: str) -> People:
    """The old stored format: `Name <address>` or `address` entries joined by ", ", names
    unquoted (a name's own comma stays with it: an entry ends only after its address)."""
    people = People()
    for match in _LEGACY_ENTRY.finditer(text or ""):
        if match.group("angle") is not None:
            name = match.group("name").strip().strip('"').strip()
            address = match.group("angle").strip()
        else:
            name, address = "", (match.group("bare") or "").strip()
        if address:
            people.append(Person(address, name))
    return people
