"""One bad message never blocks an IMAP mailbox (issue 17), against a real Dovecot: a message
the server will not hand over is recorded as failed with its UID and the server's words
before the sync moves past it, the next ones are imported, and the Inbound log's retry
fetches it again. The fault itself is injected into IMAPClient.fetch: Dovecot serves every
message it has, so only the refusal is simulated, the rest of the conversation is real."""

from __future__ import annotations

import html

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from extensions import db, get_queue
from jobs.imap_poll import poll_inbox
from models import Conversation, ImapFolderState, ImapSettings, InboundEmail, Inbox, Message
from services.background import refetch_job_id
from tests.support.inbound import work_inbound
from tests.support.workspace import Browser, make_team

SERVER_WORDS = "[SERVERBUG] Internal error occurred. Refer to server log for more information."
FAILED_NOTE = "1 message could not be fetched (failed in the Inbound log, where it can be retried)"


@pytest.fixture
def faulty_fetch(monkeypatch):
    """IMAPClient.fetch, except that a body FETCH naming a UID in `uids` is refused with a
    NO (mode "raise", as IMAPClient reports it) or answered without that message ("omit")."""
    real = IMAPClient.fetch
    fault = {"uids": set(), "mode": "raise", "words": SERVER_WORDS, "body_fetches": []}

    def fetch(self, messages, data, modifiers=None):
        uids = [messages] if isinstance(messages, int) else list(messages)
        items = [data] if isinstance(data, str | bytes) else data
        wants_body = any("BODY" in str(item).upper() for item in items)
        bad = fault["uids"] & set(uids) if wants_body else set()
        if wants_body:
            fault["body_fetches"].append(uids)
        if bad and fault["mode"] == "raise":
            raise IMAPClientError(f"fetch failed: {fault['words']}")
        answer = real(self, messages, data, modifiers)
        for uid in bad:
            answer.pop(uid, None)
        return answer

    monkeypatch.setattr(IMAPClient, "fetch", fetch)
    return fault


def email(n: int) -> bytes:
    return (
        f"From: Customer {n} <c{n}@customer.example>\r\nTo: support@example.com\r\n"
        f"Subject: Question {n}\r\nMessage-ID: <bad{n}@customer.example>\r\n\r\nBody {n}\r\n"
    ).encode()


def three_messages(server, account) -> list[int]:
    for n in (1, 2, 3):
        server.append(*account, email(n))
    with server.client(*account) as imap:
        imap.select_folder("INBOX", readonly=True)
        return sorted(imap.search("ALL"))


def imap_inbox(server, account) -> Inbox:
    username, password = account
    inbox = Inbox(name="Mailbox", support_address="mailbox@example.com", mode="imap")
    inbox.imap = ImapSettings(
        host="127.0.0.1", port=server.port, security="none", username=username, password=password
    )
    db.session.add(inbox)
    db.session.commit()
    return inbox


def rows() -> list[InboundEmail]:
    db.session.expire_all()
    return list(db.session.scalars(select(InboundEmail).order_by(InboundEmail.id)))


def last_uid() -> int:
    db.session.expire_all()
    return db.session.scalars(select(ImapFolderState)).one().last_uid


def failed_rows() -> list[InboundEmail]:
    return [row for row in rows() if row.status == "failed"]


def imported_ids() -> list[str]:
    return sorted(row.message_id for row in rows() if row.storage_key)


def work_default(app) -> None:
    from worker import build_worker

    build_worker(app, ["default"], simple=True).work(burst=True)


@pytest.fixture
def admin(client, auth, inbox, make_user):
    return Browser(client, auth).login(make_team(inbox, make_user).ana)


def test_a_message_whose_fetch_fails_is_recorded_skipped_and_retried_from_the_log(
    app, admin, dovecot, imap_account, faulty_fetch
):
    inbox = imap_inbox(dovecot, imap_account)
    first, middle, last = three_messages(dovecot, imap_account)
    faulty_fetch["uids"] = {middle}

    assert poll_inbox(inbox.id) == f"imported 2 messages; {FAILED_NOTE}"
    # The chunk's FETCH was refused as a whole, so each message was asked for on its own.
    assert faulty_fetch["body_fetches"] == [[first, middle, last], [first], [middle], [last]]
    [failed] = failed_rows()
    failed_id = failed.id
    assert failed.reason == (
        f"IMAP INBOX UID {middle}: the server would not hand it over: fetch failed: {SERVER_WORDS}"
    )
    assert (failed.source, failed.inbox_id, failed.storage_key) == (
        f"imap:{inbox.id}:INBOX",
        inbox.id,
        None,
    )
    assert (failed.imap_origin.folder, failed.imap_origin.uid) == ("INBOX", middle)
    assert imported_ids() == ["bad1@customer.example", "bad3@customer.example"]
    assert last_uid() == last

    # Nothing twice: the folder state is past all three.
    faulty_fetch["body_fetches"].clear()
    assert poll_inbox(inbox.id) == "no new mail"
    assert faulty_fetch["body_fetches"] == [] and len(rows()) == 3
    work_inbound(app)
    assert db.session.scalar(select(func.count()).select_from(Conversation)) == 2

    # The Inbound log shows it failed, with its reason, and offers to fetch it again.
    page = html.unescape(admin.get("/admin/inbound?status=failed").get_data(as_text=True))
    assert f'id="inbound-{failed.id}"' in page and failed.reason in page
    assert "not fetched" in page and "Fetch again" in page

    # While the server still refuses it, the retry says so and keeps the record.
    response = admin.post(f"/admin/inbound/{failed.id}/reprocess")
    assert response.status_code == 200
    assert "will be fetched again from the IMAP server" in response.get_data(as_text=True)
    assert refetch_job_id(failed.id) in get_queue("default").job_ids
    work_default(app)
    [still] = failed_rows()
    assert still.id == failed.id and SERVER_WORDS in still.reason

    # The fault is gone: the retry fetches that UID and it becomes a conversation.
    faulty_fetch["uids"] = set()
    faulty_fetch["body_fetches"].clear()
    assert admin.post(f"/admin/inbound/{failed.id}/reprocess").status_code == 200
    work_default(app)
    assert faulty_fetch["body_fetches"] == [[middle]]
    assert failed_rows() == [] and db.session.get(InboundEmail, failed_id) is None
    assert imported_ids() == [f"bad{n}@customer.example" for n in (1, 2, 3)]
    work_inbound(app)
    message = db.session.scalar(
        select(Message).where(Message.message_id == "bad2@customer.example")
    )
    assert message is not None
    assert db.session.get(Conversation, message.conversation_id).inbox_id == inbox.id
    assert all(row.status == "delivered" for row in rows())
    assert poll_inbox(inbox.id) == "no new mail" and len(rows()) == 3


def test_a_fetch_answer_that_leaves_a_message_out_is_recorded_too(
    app, dovecot, imap_account, faulty_fetch
):
    inbox = imap_inbox(dovecot, imap_account)
    first, middle, last = three_messages(dovecot, imap_account)
    faulty_fetch.update(uids={middle}, mode="omit")

    assert poll_inbox(inbox.id) == f"imported 2 messages; {FAILED_NOTE}"
    assert faulty_fetch["body_fetches"] == [[first, middle, last]]  # answered: not asked again
    [failed] = failed_rows()
    assert failed.reason == f"IMAP INBOX UID {middle}: the server answered FETCH without its body"
    assert imported_ids() == ["bad1@customer.example", "bad3@customer.example"]
    assert last_uid() == last


def test_a_temporary_refusal_records_nothing_and_is_tried_again(
    app, dovecot, imap_account, faulty_fetch
):
    """[UNAVAILABLE] (RFC 5530) is the server's trouble, not the message's: no failed record,
    the folder is not moved past, and the next poll imports all three."""
    inbox = imap_inbox(dovecot, imap_account)
    first, middle, last = three_messages(dovecot, imap_account)
    faulty_fetch.update(uids={middle}, words="[UNAVAILABLE] Temporary failure, try again")

    result = poll_inbox(inbox.id)
    assert "[UNAVAILABLE] Temporary failure, try again" in result
    assert failed_rows() == [] and imported_ids() == []
    assert last_uid() == first - 1

    faulty_fetch["uids"] = set()
    assert poll_inbox(inbox.id) == "imported 3 messages"
    assert last_uid() == last and failed_rows() == []


def test_an_expunged_message_is_not_recorded_as_failed(
    app, dovecot, imap_account, faulty_fetch, monkeypatch
):
    """Left out of the answer because it is gone (deleted after the SEARCH): nothing to log."""
    inbox = imap_inbox(dovecot, imap_account)
    first, middle, last = three_messages(dovecot, imap_account)
    real_search = IMAPClient.search
    with dovecot.client(*imap_account) as imap:
        imap.select_folder("INBOX")
        imap.delete_messages([middle])
        imap.expunge()

    def search(self, criteria="ALL", charset=None):  # the SEARCH ran before the expunge
        found = real_search(self, criteria, charset)
        return sorted({*found, middle}) if criteria[:1] == ["UID"] and ":" in criteria[1] else found

    monkeypatch.setattr(IMAPClient, "search", search)
    assert poll_inbox(inbox.id) == "imported 2 messages"
    assert failed_rows() == [] and last_uid() == last


def test_the_failed_record_is_committed_before_the_folder_state_moves_past_it(
    app, dovecot, imap_account, faulty_fetch
):
    inbox = imap_inbox(dovecot, imap_account)
    first, middle, last = three_messages(dovecot, imap_account)
    faulty_fetch["uids"] = {middle}

    def state_moving_past_the_bad_message(session, flush_context, instances):
        for state in session.dirty:
            if isinstance(state, ImapFolderState) and state.last_uid >= middle:
                raise OperationalError("UPDATE imap_folder_states", {}, Exception("db gone"))

    event.listen(Session, "before_flush", state_moving_past_the_bad_message)
    try:
        result = poll_inbox(inbox.id)
    finally:
        event.remove(Session, "before_flush", state_moving_past_the_bad_message)
    assert "messages could not be stored" in result
    # The record was committed on its own; the state never got past the message before it.
    [failed] = failed_rows()
    assert f"IMAP INBOX UID {middle}" in failed.reason
    assert last_uid() == first
    assert imported_ids() == ["bad1@customer.example"]

    # The next poll goes on from there: nothing lost, nothing recorded twice.
    assert poll_inbox(inbox.id) == f"imported 1 message; {FAILED_NOTE}"
    assert [row.id for row in failed_rows()] == [failed.id]
    assert imported_ids() == ["bad1@customer.example", "bad3@customer.example"]
    assert last_uid() == last
