"""The list's search on the full-text indexes (migration 0017, services/search.py): the same
conversations as the LIKE scan it replaced for words and word prefixes, the index in step
with new mail, moves, merges, edits and deletions, and the matched words highlighted
safely in the list."""

from __future__ import annotations

import random
import re
from datetime import timedelta

import pytest
from sqlalchemy import delete, select, text, update

from extensions import db
from models import Contact, Conversation, Message, utcnow
from services import conversation_list, merge, search
from services.conversation_list import _rows_query, list_conversations, next_in_list
from services.conversations import ConversationError
from services.message_moves import move_message
from tests.support.workspace import deliver, quick_conversation

VOCABULARY = (
    "parcel invoice refund zebra quartz mango velvet tundra orbit lantern cobalt fjord "
    "haiku wombat pixel nimbus saffron glacier ember falcon"
).split()
FIRST = "Ana Ben Carla Dev Elif Femi Greta Hiro".split()
LAST = "Silva Okafor Jensen Novak Rossi Tanaka".split()


def like_ids(q: str) -> set[int]:
    query = (
        select(Conversation.id)
        .join(Contact, Contact.id == Conversation.contact_id)
        .where(search.like_reference(q))
    )
    return set(db.session.scalars(query))


def found_ids(user, q: str) -> set[int]:
    page = list_conversations(user, q=q, limit=100)
    assert page.next_cursor is None
    return {row.conversation.id for row in page.rows}


def seed_corpus(inbox, rng: random.Random, bodies: list | None = None) -> list[str]:
    """60 conversations with 1 to 4 messages each of vocabulary words; returns every text
    the search reads (subjects, names, emails, message text but activity lines), and adds
    the message texts alone to `bodies`."""
    texts, bodies = [], [] if bodies is None else bodies
    statuses = ("open", "pending", "resolved", "snoozed")
    for n in range(60):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = f"{first.lower()}.{last.lower()}{n % 7}@customer{n % 5}.example"
        subject = " ".join(rng.sample(VOCABULARY, 2)).capitalize() + f" #{n}"
        body = " ".join(rng.choice(VOCABULARY) for _ in range(rng.randint(3, 8))) + "."
        conversation = quick_conversation(
            inbox,
            subject,
            text=body.upper() if n % 9 == 0 else body,
            email=email,
            name=f"{first} {last}",
            status=statuses[n % 4],
            commit=False,
        )
        texts += [subject, email, f"{first} {last}", body]
        bodies.append(body)
        for _ in range(rng.randint(0, 3)):
            direction = rng.choice(("outgoing", "note", "activity"))
            words = " ".join(rng.choice(VOCABULARY) for _ in range(rng.randint(2, 6)))
            if direction == "activity":
                words += " walrus"  # activity lines were never searched
            else:
                texts.append(words)
                bodies.append(words)
            db.session.add(
                Message(
                    conversation_id=conversation.id,
                    inbox_id=inbox.id,
                    direction=direction,
                    text_body=words,
                )
            )
    db.session.commit()
    return texts


def only_at_word_starts(q: str, texts: list[str]) -> bool:
    """Every place `q` occurs in the corpus starts a word: there a word search and a
    substring search must agree (in the middle of a word they differ by design)."""
    needle = q.lower()
    for t in (t.lower() for t in texts):
        start = t.find(needle)
        while start != -1:
            if start > 0 and t[start - 1].isalnum():
                return False
            start = t.find(needle, start + 1)
    return True


def test_the_index_finds_what_the_like_scan_found_for_words_and_prefixes(app, inbox, team):
    rng = random.Random(20)
    bodies = []
    texts = seed_corpus(inbox, rng, bodies)
    queries = set()
    for word in VOCABULARY:
        queries |= {word, word.upper(), word.capitalize()}
        queries |= {word[:n] for n in range(3, len(word))}
    phrases = [b.split() for b in bodies if " " in b]
    for words in rng.sample(phrases, 30):
        at = rng.randrange(len(words) - 1)
        queries.add(" ".join(words[at : at + 2]).strip("."))
        queries.add(" ".join(words[at : at + 2])[:-2])  # the second word a prefix
    queries |= {f"{name.lower()}" for name in FIRST + LAST}
    queries |= {"customer3.example", "@customer1", "silva0@", "jensen", "ana.s"}  # contacts
    queries |= {"walrus", "nowhere", "100%", "a_b"}
    checked = sorted(q for q in queries if only_at_word_starts(q, texts))
    assert len(checked) > 150, "the corpus no longer exercises the search"

    answered = 0
    for q in checked:
        expected = like_ids(q)
        assert found_ids(team.ana, q) == expected, q
        answered += bool(expected)
    assert answered > 120  # most queries find something, some find nothing


def lantern_conversations(inbox) -> dict:
    """Conversations that 'lantern' finds in different ways, newest the weakest match."""
    now, day = utcnow(), timedelta(days=1)
    filler = "and a great many other words about the weather the shop and the post"
    made = {
        "weak, newest": quick_conversation(
            inbox, "Question", text=f"One thing about a lantern {filler}.", at=now
        ),
        "weak, older": quick_conversation(
            inbox, "Question", text=f"One thing about a lantern {filler}.", at=now - 3 * day
        ),
        "strong": quick_conversation(
            inbox, "Question", text="Lantern, lantern, lantern.", at=now - 2 * day
        ),
        "subject": quick_conversation(
            inbox, "Lantern broken", text="It does not light.", at=now - 5 * day
        ),
        "contact": quick_conversation(
            inbox, "Hello", text="Nothing here.", name="Ada Lanternfield", at=now - 6 * day
        ),
    }
    quick_conversation(inbox, "Lamp", text="A candle, not the word.", at=now)  # no match
    db.session.commit()
    return made


RANKED = ["subject", "contact", "strong", "weak, newest", "weak, older"]


def test_a_search_lists_the_best_match_first_then_the_latest(app, team):
    """A subject or contact match first, then the message matching more, then ties on the
    rank by latest activity: not the plain newest-first of the unsearched list."""
    made = lantern_conversations(team.support)
    ids = [row.conversation.id for row in list_conversations(team.ana, q="lantern").rows]
    assert ids == [made[name].id for name in RANKED]
    assert [row.conversation.id for row in list_conversations(team.ana, q="lant").rows] == ids


# (HEAD_FEW, HEAD_WALK): subject and contact matches gathered by id; walked 3 conversations
# at a time then gathered; walked through every conversation.
HEAD_WAYS = [(conversation_list.HEAD_FEW, conversation_list.HEAD_WALK), (0, 3), (0, 1000)]


@pytest.mark.parametrize("head_few, head_walk", HEAD_WAYS)
@pytest.mark.parametrize(
    "window, spans", [(search.WINDOW, search.PG_SPANS), (3, search.PG_SPANS), (3, (4, 12))]
)
def test_paging_through_a_ranked_search_lists_every_match_once(
    app, inbox, team, window, spans, head_few, head_walk, monkeypatch
):
    """Also past a window of 3 messages: the ranked conversations, then the older matches.
    On PostgreSQL, also with the window looked for among the newest 4, then 12 messages
    first: the same list as looking among every message at once. The subject and contact
    matches come first however they are read (by id, walked, walked then gathered)."""
    monkeypatch.setattr(search, "WINDOW", window)
    monkeypatch.setattr(search, "PG_SPANS", spans)
    monkeypatch.setattr(conversation_list, "HEAD_FEW", head_few)
    monkeypatch.setattr(conversation_list, "HEAD_WALK", head_walk)
    seed_corpus(inbox, random.Random(11))
    queries = ("zebra", "par", "refund", "silva", "customer3.example", "okafor refund")
    for q, status in [(q, status) for q in queries for status in (None, "open")]:
        whole = list_conversations(team.ana, q=q, status=status, limit=100)
        assert whole.next_cursor is None
        with monkeypatch.context() as every_message:
            every_message.setattr(search, "PG_SPANS", ())
            at_once = list_conversations(team.ana, q=q, status=status, limit=100)
        assert [r.conversation.id for r in whole.rows] == [r.conversation.id for r in at_once.rows]
        assert_subject_and_contact_first(whole.rows, q)
        paged, cursor = [], None
        while True:
            page = list_conversations(team.ana, q=q, status=status, limit=2, cursor=cursor)
            paged += [row.conversation.id for row in page.rows]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert paged == [row.conversation.id for row in whole.rows], q
        assert len(set(paged)) == len(paged), q
        expected = like_ids(q)
        if status is not None:
            expected &= set(db.session.scalars(select(Conversation.id).filter_by(status=status)))
        assert set(paged) == expected, q


def assert_subject_and_contact_first(rows, q: str) -> None:
    """The documented order's first tier: the conversations whose subject or contact holds
    `q`, newest first, before any other (found by a message)."""
    needle = q.lower()

    def heads(row) -> bool:
        texts = (row.conversation.subject, row.contact.email, row.contact.name)
        return any(needle in t.lower() for t in texts)

    first = [row for row in rows if heads(row)]
    assert rows[: len(first)] == first, q
    moments = [(r.conversation.last_activity_at, r.conversation.id) for r in first]
    assert moments == sorted(moments, reverse=True), q


def test_the_next_conversation_after_one_is_done_follows_the_ranked_order(app, team):
    made = lantern_conversations(team.support)
    for name, following in zip(RANKED, RANKED[1:], strict=False):
        assert next_in_list(team.ana, made[name], q="lantern") == made[following]
    assert next_in_list(team.ana, made[RANKED[-1]], q="lantern") == made[RANKED[0]]  # the top
    unfound = quick_conversation(team.support, "Other", text="Nothing.")
    assert next_in_list(team.ana, unfound, q="lantern") == made[RANKED[0]]


def test_a_cursor_fits_only_the_kind_of_list_it_came_from(app, team):
    lantern_conversations(team.support)
    ranked = list_conversations(team.ana, q="lantern", limit=2).next_cursor
    newest = list_conversations(team.ana, limit=2).next_cursor
    with pytest.raises(ConversationError):
        list_conversations(team.ana, cursor=ranked)
    with pytest.raises(ConversationError):
        list_conversations(team.ana, q="lantern", cursor=newest)


def test_the_index_finds_substrings_of_subjects_and_contacts_as_like_did(app, inbox, team):
    texts = seed_corpus(inbox, random.Random(7))
    # Inside words too: the subject and contact indexes hold every 3-character substring.
    for q in ("arce", "voic", "UARTZ", "kafor", "ustomer2.ex", "lva1@cust", "ier #1"):
        assert not only_at_word_starts(q, texts), q
        expected = {
            c.id
            for c in db.session.scalars(select(Conversation))
            if q.lower()
            in (c.subject.lower() + "|" + c.contact.email + "|" + c.contact.name.lower())
        }
        assert expected and found_ids(team.ana, q) == expected, q
    # Shorter than a trigram: still found, by a scan of subjects and contacts.
    assert found_ids(team.ana, "#7") == like_ids("#7") != set()


def test_new_mail_through_the_relay_is_found_at_once(app, client, team, bob):
    conversation = deliver(app, client, "w1@customer.example", "Our wombat ate the parcel.")
    assert found_ids(team.bob, "wombat") == {conversation.id}
    assert found_ids(team.bob, "wom") == {conversation.id}
    assert found_ids(team.bob, "carla@customer") == {conversation.id}  # the new contact
    assert found_ids(team.bob, "printer on") == {conversation.id}  # the subject

    reply = deliver(
        app,
        client,
        "w2@customer.example",
        "And now the glacier melted.",
        in_reply_to="w1@customer.example",
    )
    assert reply.id == conversation.id
    assert found_ids(team.bob, "glacier melted") == {conversation.id}

    html = bob.get("/conversations?q=glacier", htmx=True).get_data(as_text=True)
    assert "And now the <mark>glacier</mark> melted." in html


def test_a_moved_email_is_found_in_its_new_conversation(app, client, team):
    first = deliver(app, client, "m1@customer.example", "My printer is on fire")
    stray = deliver(
        app,
        client,
        "m2@customer.example",
        "Also the saffron shipment is late",
        in_reply_to="m1@customer.example",
    )
    assert stray.id == first.id
    other = quick_conversation(team.support, "Saffron order", text="Where is it?")
    email = db.session.scalar(select(Message).where(Message.message_id == "m2@customer.example"))
    assert found_ids(team.bob, "shipment") == {first.id}

    move_message(email, first, other, team.bob)
    assert found_ids(team.bob, "shipment") == {other.id}
    assert found_ids(team.bob, "saffron shipment") == {other.id}
    assert found_ids(team.bob, "fire") == {first.id}


def test_a_merged_conversations_text_is_found_in_the_survivor(app, team):
    source = quick_conversation(team.support, "Broken lantern", text="The cobalt lantern broke")
    survivor = quick_conversation(team.support, "Order 4", text="Where is my order?")
    assert found_ids(team.bob, "cobalt") == {source.id}

    merge.merge(source, survivor, team.bob)
    assert found_ids(team.bob, "cobalt") == {survivor.id}
    # The merged one keeps its subject, so a subject search still lists it.
    assert found_ids(team.bob, "broken lantern") == {source.id}


def test_edits_and_deletions_leave_the_index_in_step(app, team):
    conversation = quick_conversation(
        team.support, "Velvet sofa", text="The ember glows", email="zed@old.example", name="Zed"
    )
    message = db.session.scalar(select(Message).where(Message.conversation_id == conversation.id))
    note = Message(
        conversation_id=conversation.id,
        inbox_id=team.support.id,
        direction="note",
        text_body="falcon spotted",
    )
    db.session.add(note)
    db.session.commit()

    conversation.subject = "Tundra trip"
    conversation.contact.email, conversation.contact.name = "zed@new.example", "Zara"
    message.text_body = "The nimbus cloud"
    db.session.commit()
    for gone in ("velvet", "ember", "old.example"):
        assert found_ids(team.bob, gone) == set(), gone
    for q in ("tundra", "nimbus", "new.example", "zara", "falcon"):
        assert found_ids(team.bob, q) == {conversation.id}, q

    note.direction = "activity"  # an activity line is not searched
    db.session.commit()
    assert found_ids(team.bob, "falcon") == set()

    db.session.delete(message)
    db.session.commit()
    assert found_ids(team.bob, "nimbus") == set()

    kept = quick_conversation(team.support, "Other", text="another nimbus")
    db.session.execute(delete(Conversation).where(Conversation.id == conversation.id))
    db.session.commit()  # its messages go by ON DELETE CASCADE: the index follows
    assert found_ids(team.bob, "nimbus") == {kept.id}
    assert found_ids(team.bob, "tundra") == set()


def test_the_snippet_highlights_the_match_and_escapes_the_text(app, team, bob):
    hostile = quick_conversation(
        team.support,
        "Hello",
        text='<script>alert("x")</script> if a < b && c > d the wombat "runs" \ue001 \ue000',
    )
    plain = quick_conversation(team.support, "Wombat care", text="No match in the text here")
    html = bob.get("/conversations?q=wombat", htmx=True).get_data(as_text=True)
    row = re.search(rf'<li[^>]*id="row-{hostile.id}".*?</li>', html, re.S).group(0)
    snippet = re.search(r'<span class="conv-snippet">(.*?)</span>', row, re.S).group(1)
    assert "<script" not in html
    assert "c &gt; d the <mark>wombat</mark> &#34;runs" in snippet  # escaped, then marked
    # The stray markers the text held: no mark opened, none left open.
    assert snippet.count("<mark>") == snippet.count("</mark>") == 1
    other = re.search(rf'<li[^>]*id="row-{plain.id}".*?</li>', html, re.S).group(0)
    assert "No match in the text here" in other and "<mark>" not in other  # subject match


def test_highlight_escapes_first_and_keeps_marks_balanced():
    start, stop = "\ue000", "\ue001"
    assert (
        search.highlight(f"a <i>{start}b&c{stop}</i>")
        == "a &lt;i&gt;<mark>b&amp;c</mark>&lt;/i&gt;"
    )
    assert search.highlight(f"{stop}x{start}y{start}z") == "x<mark>yz</mark>"
    assert search.highlight(f"x {start}") == "x "  # an empty mark is left out
    assert search.highlight("") == ""


def test_the_message_index_expression_is_the_one_the_migration_indexed():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[2] / "migrations/versions/0017_full_text_search.py"
    spec = importlib.util.spec_from_file_location("m0017", path)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    assert migration.PG_MESSAGE_WORDS == search.pg_message_words("text_body")
    assert migration.PUNCTUATION == search.PG_PUNCTUATION


@pytest.mark.db
def test_the_computed_words_are_the_indexed_ones(app):
    """PostgreSQL: the words computed for ranking and snippets (regexp_replace) are those the
    index holds (translate), whatever punctuation a text has."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's expressions")
    marks = search.PG_PUNCTUATION
    texts = [
        marks,
        f"a{marks}b",
        "eve@shop.example [re: order #51324] -- 100% ^done^ \\path\\to ‘quoted’ «x»",
        "line one\nline-two\ttab … end",
        "",
        None,
    ]
    for value in texts:
        indexed, computed = db.session.execute(
            text(
                f"SELECT {search.pg_message_words('v')}, {search.pg_computed_words('v')} "
                "FROM (SELECT CAST(:v AS text) AS v) AS t"
            ),
            {"v": value},
        ).one()
        assert indexed == computed, value


def test_the_search_uses_the_indexes(app, team):
    quick_conversation(team.support, "Pixel", text="pixel art")
    window = search.Window("pixel").ranked()  # the tiers' lookups, in one plan
    query = _rows_query().where(
        search.Head("pixel", -1).condition(walk=False)  # -1: as sets, never as ids
        | Conversation.id.in_(select(window.c.conversation_id))
    )
    compiled = query.compile(db.engine, compile_kwargs={"literal_binds": True})
    with db.engine.connect() as conn:
        if db.engine.dialect.name == "sqlite":
            plan = " ".join(
                str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")
            )
            for index in ("conversations_fts", "contacts_fts", "messages_fts"):
                assert f"SCAN {index} VIRTUAL TABLE INDEX" in plan, plan
        else:
            conn.execute(text("SET enable_seqscan = off"))  # a tiny table: force the choice
            plan = " ".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {compiled}"))
            assert "ix_conversations_subject_trgm" in plan, plan
            # The latest matching messages: a statement of their own, planned with bitmap
            # scans only (search._bitmap_scans_only): the word index's, and for a span of
            # the newest ids the primary key's, never a walk through the primary key that
            # computes each message's words.
            conn.execute(text("SET enable_indexscan = off"))
            for floor in (0, 1):
                latest = search.pg_latest(["pixel"], floor)
                compiled = latest.compile(db.engine, compile_kwargs={"literal_binds": True})
                plan = " ".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {compiled}"))
                assert "Index Scan using pk_messages" not in plan, plan
                if not floor:
                    assert "Bitmap Index Scan on ix_messages_text_words" in plan, plan
            conn.rollback()


@pytest.mark.db
def test_the_migration_indexes_the_mail_already_there(database_url, redis_server, tmp_path):
    """Upgrading an existing database builds the index from its rows; downgrading drops it."""
    from flask_migrate import downgrade, upgrade

    from app import create_app
    from models import Inbox
    from tests.conftest import base_config
    from tests.support.postgres import empty_database_like

    def run(url):
        app = create_app(base_config(url, redis_server, tmp_path / "instance"))
        with app.app_context():
            try:
                upgrade()
                inbox = Inbox(name="Support", support_address="support@example.com")
                db.session.add(inbox)
                db.session.commit()
                old = quick_conversation(inbox, "Quartz clock", text="The haiku book")
                db.session.commit()
                downgrade(revision="0016")
                assert not _has_index(), "downgrade left the index"
                db.session.execute(
                    update(Message).values(text_body="The haiku fjord book")
                )  # written while no index existed
                db.session.commit()
                upgrade()
                assert _has_index()
                for q in ("haiku fjord", "quartz", "person1@"):
                    assert set(db.session.scalars(search.matching_conversations(q))) == {old.id}
            finally:
                db.session.remove()
                db.engine.dispose()

    with empty_database_like(database_url, tmp_path) as url:
        run(url)


def _has_index() -> bool:
    if db.engine.dialect.name == "sqlite":
        names = "SELECT name FROM sqlite_master WHERE name = 'messages_fts'"
    else:
        names = "SELECT indexname FROM pg_indexes WHERE indexname = 'ix_messages_text_words'"
    return db.session.execute(text(names)).first() is not None
