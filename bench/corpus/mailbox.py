"""The agent UI benchmark's mailbox: 100,000 conversations, 1,000,000 messages, as row dicts.

Seeded, so every run builds the same mailbox (bar tokens and password salt). `tables()`
hands the rows over table by table and lazily, so the million message dicts never exist
at once and each table's build lands where the loader times it.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

CONVERSATIONS = 100_000
MESSAGES = 1_000_000
CONTACTS = 30_000
AGENTS = 20
INBOXES = 5
BIG_THREAD = 500
BIG_ID = CONVERSATIONS // 2  # the conversation with BIG_THREAD messages
SEARCH_WORD = "chargeback"  # in 1% of subjects (and those threads' first message)
SEARCH_SHARE = 0.01

STATUS_WEIGHTS = (("resolved", 60), ("open", 25), ("pending", 10), ("snoozed", 5))
FIRST = "Ana Ben Carla Dev Elif Femi Greta Hiro Ines Jon Kai Lena Mo Nora Omar Pia Raj Sara Tom Uma"
LAST = "Silva Okafor Jensen Novak Rossi Tanaka Meyer Haddad Kowalski Brown Garcia Lindqvist"
TOPICS = (
    "password reset not working",
    "invoice question",
    "cannot log in",
    "shipping delay",
    "refund request",
    "update billing address",
    "export to CSV fails",
    "two-factor code never arrives",
    "order arrived damaged",
    "plan upgrade",
    "API rate limit",
    "cancel my subscription",
    "wrong item delivered",
    "receipt for last month",
    "feature request: dark mode",
    "webhook retries",
)
OPENERS = ("Hi there,", "Hello,", "Hi team,", "Good morning,", "Hey,")
SENTENCES = (
    "I tried again this morning and it still does not work.",
    "Could you have a look at my account when you have a moment?",
    "The order number is in the attachment I sent last week.",
    "Thanks for the quick answer yesterday.",
    "Is there any update on this?",
    "We are on the team plan with twelve seats.",
    "The error says something about an expired token.",
    "I cleared the cache and used another browser, same result.",
    "Please send the corrected invoice to our accounts address.",
    "It worked for a while and then stopped again.",
)
REPLIES = (
    "Thanks for reaching out, I have looked into this for you.",
    "I have reset it on our side; could you try once more?",
    "The refund is on its way and should arrive within five working days.",
    "I have forwarded this to our billing team and will get back to you.",
    "Sorry for the trouble, the fix is now live.",
)
NOTES = ("Customer is on the legacy plan.", "Checked logs, looks like a sync issue.")


@dataclass
class _Threads:
    """What each message repeats from its conversation (indexed by conversation id, so
    index 0 is a placeholder) and every message's (epoch seconds, conversation id, position)."""

    inbox: list[int] = field(default_factory=lambda: [0])
    contact: list[int] = field(default_factory=lambda: [0])
    assignee: list[int | None] = field(default_factory=lambda: [None])
    subject: list[str] = field(default_factory=lambda: [""])
    search: list[bool] = field(default_factory=lambda: [False])
    events: list[tuple[float, int, int]] = field(default_factory=list)


def tables() -> Iterator[tuple[str, Iterable[dict]]]:
    """(table name, rows) in insert order; each step runs when the loader asks for it."""
    from werkzeug.security import generate_password_hash

    rng = random.Random(6)
    now = datetime.now(UTC)
    hashed = generate_password_hash("bench password 123")
    yield (
        "inboxes",
        (
            {
                "id": i,
                "name": name,
                "support_address": f"{name.lower()}@bench.example.com",
                "forward_token": secrets.token_hex(16),
                "created_at": now,
                "updated_at": now,
            }
            for i, name in enumerate(("Support", "Billing", "Sales", "Partners", "Press"), 1)
        ),
    )
    firsts, lasts = FIRST.split(), LAST.split()
    admin = {
        "id": 1,
        "email": "admin@bench.example.com",
        "name": "Bench Admin",
        "role": "admin",
        "password_hash": hashed,
        "availability": "online",
        "active": True,
        "created_at": now,
        "updated_at": now,
    }
    agents = [
        {
            **admin,
            "id": n + 2,
            "email": f"agent{n}@bench.example.com",
            "name": f"{firsts[n % len(firsts)]} {lasts[n % len(lasts)]}",
            "role": "agent",
        }
        for n in range(AGENTS)
    ]
    yield "users", [admin, *agents]
    members: dict[int, list[int]] = {i: [] for i in range(1, INBOXES + 1)}
    for agent_id in range(2, AGENTS + 2):
        for inbox_id in rng.sample(range(1, INBOXES + 1), rng.randint(1, 3)):
            members[inbox_id].append(agent_id)
    for ids in members.values():
        if not ids:
            ids.append(2)
    yield (
        "inbox_members",
        (
            {"inbox_id": i, "user_id": u, "created_at": now}
            for i, ids in members.items()
            for u in ids
        ),
    )
    contact_names = [f"{rng.choice(firsts)} {rng.choice(lasts)}" for _ in range(CONTACTS)]
    yield (
        "contacts",
        (
            {
                "id": i + 1,
                "email": f"{name.replace(' ', '.').lower()}.{i}@customer{i % 97}.example.org",
                "name": name,
                "created_at": now,
                "updated_at": now,
            }
            for i, name in enumerate(contact_names)
        ),
    )
    threads = _Threads()
    yield "conversations", _conversations(rng, now, members, threads)
    threads.events.sort()
    yield "messages", _messages(rng, threads, members, contact_names)
    threads.events.clear()


def _message_counts(rng: random.Random) -> list[int]:
    """Messages per conversation: 10 on average, BIG_THREAD for BIG_ID, MESSAGES in all."""
    counts = [rng.randint(1, 19) for _ in range(CONVERSATIONS)]
    counts[BIG_ID - 1] = BIG_THREAD
    diff = MESSAGES - sum(counts)
    while diff:
        i = rng.randrange(CONVERSATIONS)
        if i == BIG_ID - 1:
            continue
        step = 1 if diff > 0 else -1
        if counts[i] + step >= 1:
            counts[i] += step
            diff -= step
    return counts


def _conversations(
    rng: random.Random, now: datetime, members: dict[int, list[int]], threads: _Threads
) -> list[dict]:
    """The conversation rows, recording in `threads` what their messages need."""
    counts = _message_counts(rng)
    statuses, weights = zip(*STATUS_WEIGHTS, strict=True)
    year = timedelta(days=365).total_seconds()
    start_of_year = now.timestamp() - year
    conversations = []
    for cid in range(1, CONVERSATIONS + 1):
        inbox_id = rng.randint(1, INBOXES)
        count = counts[cid - 1]
        status = "open" if cid == BIG_ID else rng.choices(statuses, weights)[0]
        assignee = None if rng.random() < 0.3 else rng.choice(members[inbox_id])
        with_word = rng.random() < SEARCH_SHARE
        subject = rng.choice(TOPICS)
        if with_word:
            subject = f"{SEARCH_WORD} on order {rng.randint(10000, 99999)}: {subject}"
        elif rng.random() < 0.5:
            subject = f"{subject} (order {rng.randint(10000, 99999)})"
        if cid == BIG_ID:
            stamp, gap = now.timestamp() - 120 * 86400, 120 * 86400 / BIG_THREAD
        else:
            stamp, gap = start_of_year + rng.random() * year, 6 * 3600
        first = stamp
        for pos in range(count):
            threads.events.append((stamp, cid, pos))
            last = stamp
            stamp = min(stamp + rng.expovariate(1 / gap), now.timestamp())
        threads.inbox.append(inbox_id)
        threads.contact.append(rng.randint(1, CONTACTS))
        threads.assignee.append(assignee)
        threads.subject.append(subject)
        threads.search.append(with_word)
        conversations.append(
            {
                "id": cid,
                "token": secrets.token_hex(16),
                "display_number": cid,
                "inbox_id": inbox_id,
                "contact_id": threads.contact[cid],
                "assignee_id": assignee,
                "status": status,
                "subject": subject,
                "snoozed_until": now + timedelta(days=rng.randint(1, 14))
                if status == "snoozed"
                else None,
                "last_activity_at": datetime.fromtimestamp(last, UTC),
                "created_at": datetime.fromtimestamp(first, UTC),
                "updated_at": datetime.fromtimestamp(last, UTC),
            }
        )
    return conversations


def _messages(
    rng: random.Random,
    threads: _Threads,
    members: dict[int, list[int]],
    contact_names: list[str],
) -> Iterator[dict]:
    """The message rows in time order: half incoming, then replies, notes and activity."""
    for mid, (stamp, cid, pos) in enumerate(threads.events, 1):
        at = datetime.fromtimestamp(stamp, UTC)
        r = rng.random()
        direction = (
            "incoming"
            if pos == 0 or r < 0.5
            else "outgoing"
            if r < 0.88
            else "note"
            if r < 0.95
            else "activity"
        )
        inbox_id, contact_id = threads.inbox[cid], threads.contact[cid]
        agent = threads.assignee[cid] or rng.choice(members[inbox_id])
        if direction == "incoming":
            body = f"{rng.choice(OPENERS)}\n\n" + " ".join(rng.sample(SENTENCES, 2))
            if pos == 0 and threads.search[cid]:
                body += f" This is about the {SEARCH_WORD} on my card."
            body += f"\n\n{contact_names[contact_id - 1]}"
        elif direction == "outgoing":
            body = f"Hi,\n\n{rng.choice(REPLIES)}\n\nBest regards"
        elif direction == "note":
            body = rng.choice(NOTES)
        else:
            body = "assigned this conversation"
        mail = direction in ("incoming", "outgoing")
        subject = threads.subject[cid]
        yield {
            "id": mid,
            "conversation_id": cid,
            "inbox_id": inbox_id,
            "direction": direction,
            "sender_user_id": None if direction == "incoming" else agent,
            "contact_id": contact_id if direction == "incoming" else None,
            "message_id": f"{mid}.{cid}@mail.bench.example.com" if mail else None,
            "subject": subject if pos == 0 else f"Re: {subject}",
            "from_address": f"c{contact_id}@customer.example.org"
            if direction == "incoming"
            else "",
            "to_addresses": "",
            "text_body": body,
            "html_body": None,
            "delivery_status": "received"
            if direction == "incoming"
            else "sent"
            if direction == "outgoing"
            else None,
            "delivery_attempts": 1 if direction == "outgoing" else 0,
            "sent_at": at if direction == "outgoing" else None,
            "threaded_by": ("new" if pos == 0 else "reply_token")
            if direction == "incoming"
            else None,
            "created_at": at,
            "updated_at": at,
        }
