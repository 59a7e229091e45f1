"""The admin Inbound log, raw downloads, reprocessing and the per-inbox health page: real mail
through the relay ingress and the inbound worker, or rows on known days for the numbers."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, time, timedelta
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from extensions import db, get_queue
from models import (
    Conversation,
    ImapFolderState,
    ImapSettings,
    InboundEmail,
    Inbox,
    Message,
    utcnow,
)
from services.background import processing_job_id
from services.inbox_log import RAW_SCAN
from tests.conftest import csrf_token_from
from tests.support.inbound import post_relay, work_inbound
from tests.support.workspace import Browser, make_team


@pytest.fixture
def team(app, inbox, make_user):
    return make_team(inbox, make_user)


@pytest.fixture
def admin(client, auth, team):
    return Browser(client, auth).login(team.ana)


def raw_email(message_id: str, *, to="support@example.com", in_reply_to=None) -> bytes:
    message = EmailMessage()
    message["From"] = "Carla Customer <carla@customer.example>"
    message["To"], message["Subject"] = to, "Printer on fire"
    message["Message-ID"] = f"<{message_id}>"
    if in_reply_to:
        message["In-Reply-To"] = f"<{in_reply_to}>"
    message.set_content("It is still burning.\n")
    return message.as_bytes()


def inbound(message_id: str) -> InboundEmail:
    db.session.expire_all()
    return db.session.scalar(select(InboundEmail).where(InboundEmail.message_id == message_id))


def row_html(html: str, row: InboundEmail) -> str:
    return re.search(rf'<tr id="inbound-{row.id}".*?</tr>', html, re.S).group(0)


def listed_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr id="inbound-(\d+)"', html)]


def text(response) -> str:
    return response.get_data(as_text=True)


def is_fragment(response) -> bool:
    return "<html" not in text(response)


def stored_row(inbox_id, created_at, status="delivered", number=0) -> InboundEmail:
    """A row inserted directly (the numbers tests need known days, not real deliveries)."""
    row = InboundEmail(
        message_id=f"row-{number}-{created_at.timestamp()}@test.example",
        checksum=f"{number:040x}",
        source="relay",
        storage_key=f"inbound/xx/{number}.eml",
        status=status,
        inbox_id=inbox_id,
        size=100,
    )
    row.created_at = created_at
    db.session.add(row)
    return row


@pytest.fixture
def mail(app, client, inbox, team):
    """A new conversation, a reply threaded into it, and one unroutable message."""
    post_relay(client, raw_email("first@customer.example"))
    post_relay(client, raw_email("second@customer.example", in_reply_to="first@customer.example"))
    post_relay(client, raw_email("lost@customer.example", to="sales@example.com"))
    work_inbound(app)  # one burst, in arrival order: the reply finds the first message
    return {key: inbound(f"{key}@customer.example") for key in ("first", "second", "lost")}


# --- the log ---------------------------------------------------------------------------------


def test_log_lists_newest_first_with_status_reason_and_threading(admin, mail, inbox):
    page = admin.get("/admin/inbound")
    assert page.status_code == 200 and not is_fragment(page)
    html = text(page)
    # A page of the admin area: the top bar marks it; no second menu that made it look like
    # a page below Agents.
    main_nav = re.search(r'<nav aria-label="Main">(.*?)</nav>', html, re.S).group(1)
    assert '<a href="/admin/inbound" aria-current="page">Inbound log</a>' in main_nav
    assert "admin-tabs" not in html
    first, second, lost = mail["first"], mail["second"], mail["lost"]
    assert listed_ids(html) == [lost.id, second.id, first.id]

    conversation = db.session.scalar(select(Conversation))
    row = row_html(html, first)
    assert "delivered" in row and "relay" in row and "first@customer.example" in row
    assert f'href="/conversations/{conversation.id}">#{conversation.display_number}' in row
    assert "new conversation" in row and f"/admin/inboxes/{inbox.id}/health" in row
    assert "joined by In-Reply-To" in row_html(html, second)
    row = row_html(html, lost)
    assert "bounced" in row and "no inbox matches any recipient (sales@example.com)" in row
    assert f'href="/admin/inbound/{lost.id}/raw"' in row and "Reprocess" in row


def test_the_log_and_the_cli_say_what_each_status_means_in_the_same_words(app, admin):
    from html import unescape

    from models.inbound import STATUS_MEANINGS

    page = unescape(text(admin.get("/admin/inbound")))
    help_text = " ".join(
        app.test_cli_runner().invoke(args=["inbound", "list", "--help"]).output.split()
    )
    for status, meaning in STATUS_MEANINGS.items():
        assert f"<dt>{status.capitalize()}</dt><dd>{meaning}</dd>" in page
        assert f"{status}: {meaning}" in help_text
    assert "not routable" in STATUS_MEANINGS["bounced"]


def test_log_filters_by_status_and_inbox(admin, mail, inbox, team):
    def ids(**args):
        query = "&".join(f"{k}={v}" for k, v in args.items())
        return listed_ids(text(admin.get(f"/admin/inbound?{query}")))

    lost, second, first = mail["lost"].id, mail["second"].id, mail["first"].id
    assert ids(status="bounced") == [lost]
    assert ids(status="delivered") == [second, first]
    assert ids(status="failed") == []
    assert ids(inbox_id="none") == [lost]
    assert ids(inbox_id=inbox.id) == [second, first]
    assert ids(inbox_id=team.billing.id) == []
    assert ids(status="bounced", inbox_id=inbox.id) == []
    assert ids(status="nonsense") == [lost, second, first]  # unknown filter: everything

    page = text(admin.get("/admin/inbound?status=failed"))
    assert "No failed inbound email." in page
    # The status filter shows how many each status has, failed and bounced first.
    assert re.search(r'value="bounced"[^>]*> Bounced <span class="count">1</span>', page)
    assert page.index('value="failed"') < page.index('value="delivered"')

    fragment = admin.get("/admin/inbound?status=bounced", htmx=True)
    assert fragment.status_code == 200 and is_fragment(fragment)
    assert text(fragment).startswith('<div id="inbound-log">')
    assert listed_ids(text(fragment)) == [lost]


def test_log_pages_newest_first_without_gaps_or_repeats(admin, inbox):
    base = datetime(2024, 5, 1, 12, tzinfo=UTC)
    # 120 rows, several sharing a timestamp: the cursor must break ties by id.
    rows = [stored_row(inbox.id, base + timedelta(minutes=n // 3), number=n) for n in range(120)]
    db.session.commit()
    expected = [row.id for row in sorted(rows, key=lambda r: (r.created_at, r.id), reverse=True)]

    seen, path, pages = [], "/admin/inbound", 0
    while path:
        response = admin.get(path, htmx=pages > 0)
        html = text(response)
        seen += listed_ids(html)
        pages += 1
        if pages > 1:  # "load more" answers with bare rows, to append in place
            assert html.lstrip().startswith("<tr") and "<table" not in html
        more = re.search(r'hx-get="([^"]+cursor=[^"]+)"', html)
        path = more.group(1).replace("&amp;", "&") if more else None
    assert pages == 3 and seen == expected

    filtered = text(admin.get(f"/admin/inbound?inbox_id={inbox.id}&status=delivered"))
    more = re.search(r'hx-get="([^"]+)"\s+hx-target="closest tr"', filtered).group(1)
    assert f"inbox_id={inbox.id}" in more and "status=delivered" in more  # filters kept

    broken = admin.get("/admin/inbound?cursor=garbage")
    assert broken.status_code == 400 and "go back to the first page" in text(broken)


# --- From, To and Subject ------------------------------------------------------------------


def headers_of(row: InboundEmail) -> tuple:
    return row.from_address, row.to_addresses, row.subject


def test_accepting_stores_from_to_and_subject_decoded(admin, client):
    raw = (
        b"From: =?utf-8?q?Carla_Caf=C3=A9?= <carla@customer.example>\r\n"
        b"To: support@example.com,\r\n  sales@example.com\r\n"
        b"Subject: =?utf-8?b?Q2Fmw6kgb24gZmlyZQ==?=   again\r\n"
        b"Message-ID: <encoded@customer.example>\r\n"
        b"\r\n"
        b"Body.\r\n"
    )
    post_relay(client, raw)
    row = inbound("encoded@customer.example")
    assert row.status == "pending"  # set on acceptance, before any processing
    assert headers_of(row) == (
        "Carla Café <carla@customer.example>",
        "support@example.com, sales@example.com",
        "Café on fire again",
    )
    listed = row_html(text(admin.get("/admin/inbound")), row)
    assert "Carla Café &lt;carla@customer.example&gt;" in listed and "Café on fire again" in listed


def test_a_broken_header_is_stored_blank_or_replaced_never_refused(client):
    raw = (
        b"From: =?no-such-charset?b?!!!?= <\xff\xfe@customer.example>\r\n"
        b"Subject: nul \x00 and \xe9 bytes\r\n"
        b"To:\r\n"
        b"Message-ID: <broken@customer.example>\r\n"
        b"\r\n"
        b"Body.\r\n"
    )
    post_relay(client, raw)  # 204: a header never fails the acceptance
    from_, to, subject = headers_of(inbound("broken@customer.example"))
    assert "customer.example" in from_ and to == ""
    assert subject.startswith("nul") and "\x00" not in subject and "bytes" in subject


def test_an_old_bounce_is_found_by_its_sender_and_subject(app, admin, client):
    post_relay(client, raw_email("old-bounce@customer.example", to="sales@example.com"))
    work_inbound(app)
    old = inbound("old-bounce@customer.example")
    assert old.status == "bounced"
    # More undelivered mail than the raw scan reads, all newer, none from Carla.
    later = utcnow() + timedelta(minutes=1)
    for n in range(RAW_SCAN + 5):
        stored_row(None, later + timedelta(seconds=n), "bounced", number=n + 1000)
    db.session.commit()

    for query in ("carla%40customer", "CARLA CUSTOMER", "printer+on+fire"):
        assert listed_ids(text(admin.get(f"/admin/inbound?q={query}"))) == [old.id], query
    assert listed_ids(text(admin.get("/admin/inbound?q=nobody+wrote+this"))) == []


def test_a_row_accepted_before_headers_were_stored_shows_and_finds_its_raw_headers(
    app, admin, client
):
    def forget_headers() -> InboundEmail:
        row = inbound("before@customer.example")
        row.from_address = row.to_addresses = row.subject = None  # as migration 0009 left it
        db.session.commit()
        return row

    post_relay(client, raw_email("before@customer.example", to="sales@example.com"))
    row = forget_headers()
    work_inbound(app)  # the processing job fills what acceptance did not store
    row = inbound("before@customer.example")
    assert row.status == "bounced"
    assert headers_of(row) == (
        "Carla Customer <carla@customer.example>",
        "sales@example.com",
        "Printer on fire",
    )

    row = forget_headers()  # a bounce processed before 0009: only its raw bytes know
    listed = row_html(text(admin.get("/admin/inbound")), row)
    assert "carla@customer.example" in listed and "Printer on fire" in listed
    assert listed_ids(text(admin.get("/admin/inbound?q=printer"))) == [row.id]


# --- raw download ----------------------------------------------------------------------------


def test_download_raw_gives_the_bytes_as_received(app, admin, client):
    raw = raw_email("raw@customer.example")
    post_relay(client, raw)
    row = inbound("raw@customer.example")
    response = admin.get(f"/admin/inbound/{row.id}/raw")
    assert response.status_code == 200
    assert response.data == raw
    assert response.mimetype == "message/rfc822"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and f"inbound-{row.id}.eml" in disposition
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Length"] == str(len(raw))


def test_incinerated_raw_is_a_clear_404_and_cannot_be_reprocessed(admin, mail):
    row = mail["first"]
    row.storage_key, row.incinerated_at = None, datetime(2024, 6, 30, 3, tzinfo=UTC)
    db.session.commit()

    response = admin.get(f"/admin/inbound/{row.id}/raw")
    assert response.status_code == 404
    assert (
        f"The raw message of inbound email #{row.id} was deleted on 2024-06-30 after the "
        "retention period" in text(response)
    )
    listed = row_html(text(admin.get("/admin/inbound")), row)
    assert "raw deleted 2024-06-30" in listed and "Reprocess" not in listed

    response = admin.post(f"/admin/inbound/{row.id}/reprocess")
    assert response.status_code == 422 and is_fragment(response)
    assert "Not reprocessed: inbound email" in text(response)
    assert "deleted after the retention period" in text(response)
    assert inbound("first@customer.example").status == "delivered"  # untouched

    assert admin.get("/admin/inbound/999999/raw").status_code == 404


# --- reprocess -------------------------------------------------------------------------------


def test_reprocess_requeues_and_then_delivers(app, admin, mail, inbox):
    lost = mail["lost"]
    assert lost.status == "bounced"
    # The admin creates the inbox the mail was meant for, then reprocesses it from the log.
    db.session.add(Inbox(name="Sales", support_address="sales@example.com"))
    db.session.commit()

    response = admin.post(
        f"/admin/inbound/{lost.id}/reprocess", {"return_to": "/admin/inbound?status=bounced"}
    )
    assert response.status_code == 200 and is_fragment(response)
    html = text(response)
    assert html.startswith(f'<tr id="inbound-{lost.id}"')  # replaces its own row
    assert "pending" in html and f"Inbound email #{lost.id} is queued for processing." in html
    assert processing_job_id(lost.id) in get_queue("inbound").job_ids

    work_inbound(app)
    row = inbound("lost@customer.example")
    assert (row.status, row.reason, row.attempts) == ("delivered", None, 2)
    message = db.session.scalar(select(Message).where(Message.inbound_email_id == row.id))
    listed = row_html(text(admin.get("/admin/inbound")), row)
    assert f'href="/conversations/{message.conversation_id}"' in listed


def test_reprocess_without_htmx_goes_back_where_it_came_from(app, admin, mail):
    lost = mail["lost"]
    response = admin.post(
        f"/admin/inbound/{lost.id}/reprocess",
        {"return_to": "/admin/inbound?status=bounced"},
        htmx=False,
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/inbound?status=bounced"
    assert f"Inbound email #{lost.id} is queued for processing." in text(
        admin.get("/admin/inbound")
    )
    # Somewhere else than the admin pages is never a redirect target.
    for elsewhere in ("https://evil.example/admin/", "//evil.example/admin/", "/conversations"):
        response = admin.post(
            f"/admin/inbound/{lost.id}/reprocess", {"return_to": elsewhere}, htmx=False
        )
        assert response.headers["Location"] == "/admin/inbound", elsewhere
    work_inbound(app)
    assert inbound("lost@customer.example").status == "bounced"  # still no such inbox


def test_reprocess_refuses_a_message_being_processed_only_while_its_lease_runs(app, admin, mail):
    from services.leases import LEASE

    row = mail["first"]
    row.status, row.lease_expires_at = "processing", utcnow() + LEASE
    db.session.commit()
    response = admin.post(f"/admin/inbound/{row.id}/reprocess")
    assert response.status_code == 422
    said = html.unescape(text(response))
    assert "is being processed right now: its worker's lease runs until" in said
    assert re.search(r"\(in (1\d|20) s\); look again then", said), said
    assert inbound("first@customer.example").status == "processing"

    # Its worker died: the lease ran out, so reprocess takes it at once (no 10-minute wait).
    row = inbound("first@customer.example")
    row.lease_expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    response = admin.post(f"/admin/inbound/{row.id}/reprocess")
    assert response.status_code == 200, text(response)
    assert f"Inbound email #{row.id} is queued for processing." in text(response)
    assert processing_job_id(row.id) in get_queue("inbound").job_ids
    work_inbound(app)
    assert inbound("first@customer.example").status == "delivered"


# --- health ----------------------------------------------------------------------------------


def day_counts(html: str) -> dict[str, tuple[int, int]]:
    found = re.findall(r'data-day="([\d-]+)" data-total="(\d+)" data-problems="(\d+)"', html)
    return {day: (int(total), int(problems)) for day, total, problems in found}


def test_health_counts_messages_per_day(admin, inbox, team):
    today = utcnow().date()

    def at(days_ago: int, hour: int = 9) -> datetime:
        return datetime.combine(today - timedelta(days=days_ago), time(hour), UTC)

    feed = [
        (0, 1, "delivered"), (0, 2, "delivered"), (0, 3, "failed"),
        (5, 0, "delivered"), (5, 23, "bounced"),
        (29, 0, "delivered"),
        (30, 12, "delivered"),  # outside the 30 days
    ]  # fmt: skip
    for n, (days_ago, hour, status) in enumerate(feed):
        stored_row(inbox.id, at(days_ago, hour), status, number=n)
    stored_row(team.billing.id, at(0), number=99)  # another inbox: not counted
    stored_row(None, at(1), "bounced", number=98)  # unroutable: mentioned, not counted
    db.session.commit()

    page = admin.get(f"/admin/inboxes/{inbox.id}/health")
    assert page.status_code == 200 and not is_fragment(page)
    html = text(page)
    counts = day_counts(html)
    assert len(counts) == 30
    assert min(counts) == (today - timedelta(days=29)).isoformat()
    assert max(counts) == today.isoformat()
    assert counts[today.isoformat()] == (3, 1)
    assert counts[(today - timedelta(days=5)).isoformat()] == (2, 1)
    assert counts[(today - timedelta(days=29)).isoformat()] == (1, 0)
    assert sum(total for total, _ in counts.values()) == 6
    assert "<dd>6 received</dd>" in html
    assert '<span class="badge ok">OK</span> Receiving email.' in html
    last = at(0, 3).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert re.search(rf'id="last-received"><time[^>]*>{last}</time>', html)
    assert "1 email in the last 30 days matched no inbox at all." in html
    # The recent list: this inbox's rows only, newest first, with the log's actions.
    ids = listed_ids(html)
    assert len(ids) == 7 and ids[0] == db.session.scalar(
        select(InboundEmail.id).where(InboundEmail.created_at == at(0, 3))
    )
    assert "Reprocess" in html and "Download raw" in html
    assert "IMAP polling" not in html  # a forwarding inbox

    fragment = admin.get(f"/admin/inboxes/{inbox.id}/health", htmx=True)
    assert is_fragment(fragment) and text(fragment).lstrip().startswith('<div id="inbox-health"')


def test_health_of_an_inbox_that_never_received(admin, team):
    html = text(admin.get(f"/admin/inboxes/{team.billing.id}/health"))
    assert '<span class="badge warn">Never received</span>' in html
    assert 'id="last-received">never</dd>' in html
    assert "Nothing received for this inbox yet." in html
    assert set(day_counts(html).values()) == {(0, 0)}


def test_health_of_an_imap_inbox_that_needs_attention(admin, team):
    inbox = team.billing
    inbox.mode = "imap"
    inbox.needs_attention = (
        "IMAP login failed: the server said [AUTHENTICATIONFAILED] Authentication failed.; "
        "check the username or use an app password."
    )
    polled = datetime(2024, 7, 1, 10, 30, tzinfo=UTC)
    inbox.imap = ImapSettings(
        host="imap.example.com",
        username="billing@example.com",
        password="s3cret-imap-password",
        folders="INBOX\nArchive",
        last_poll_at=polled,
        last_poll_result="login failed",
        next_poll_at=polled + timedelta(minutes=1),
        consecutive_failures=3,
    )
    db.session.add(
        ImapFolderState(
            inbox_id=inbox.id, folder="INBOX", uidvalidity=1719830000, last_uid=42,
            last_poll_at=polled, last_error="[AUTHENTICATIONFAILED] Authentication failed.",
            consecutive_errors=3,
        )
    )  # fmt: skip
    db.session.commit()

    html = text(admin.get(f"/admin/inboxes/{inbox.id}/health"))
    assert (
        '<span class="badge fail">Needs attention</span> IMAP login failed: the server said' in html
    )
    assert "[AUTHENTICATIONFAILED] Authentication failed.; check the username" in html
    assert "imap.example.com:993 (ssl)" in html
    assert 'id="last-poll">2024-07-01 10:30:00 UTC — login failed</dd>' in html
    assert 'id="next-poll">paused until the settings are fixed</dd>' in html
    assert "<dd>3 (retrying with a growing pause)</dd>" in html
    assert "<td>INBOX</td><td>1719830000</td><td>42</td>" in html
    assert "s3cret-imap-password" not in html  # secrets are never rendered back

    # Fixed settings clear the flag: the next due poll is shown instead.
    inbox.needs_attention = None
    db.session.commit()
    html = text(admin.get(f"/admin/inboxes/{inbox.id}/health"))
    assert 'id="next-poll">2024-07-01 10:31:00 UTC</dd>' in html
    assert "Never received" in html


def test_unknown_inbox_health_is_404(admin):
    response = admin.get("/admin/inboxes/999999/health")
    assert response.status_code == 404 and "No such inbox" in text(response)


# --- who may ---------------------------------------------------------------------------------


def admin_routes(row_id: int, inbox_id: int) -> list[tuple[str, str]]:
    return [
        ("GET", "/admin/inbound"),
        ("GET", f"/admin/inbound/{row_id}/raw"),
        ("POST", f"/admin/inbound/{row_id}/reprocess"),
        ("GET", f"/admin/inboxes/{inbox_id}/health"),
    ]


def test_agents_get_403_on_every_route(client, auth, team, mail, inbox):
    bob = Browser(client, auth).login(team.bob)  # a member of the inbox, still not an admin
    for method, path in admin_routes(mail["lost"].id, inbox.id):
        response = bob.get(path) if method == "GET" else bob.post(path)
        assert response.status_code == 403, path
        assert "Only admins can open this page." in text(response)
    assert inbound("lost@customer.example").status == "bounced"


def test_anonymous_is_sent_to_sign_in(client, mail, inbox):
    token = csrf_token_from(text(client.get("/login")))
    for method, path in admin_routes(mail["lost"].id, inbox.id):
        if method == "GET":
            response = client.get(path)
        else:
            response = client.post(path, data={"csrf_token": token})
        assert response.status_code == 302 and "/login" in response.headers["Location"], path


def test_reprocess_without_csrf_token_is_refused(admin, mail):
    response = admin.post(f"/admin/inbound/{mail['lost'].id}/reprocess", csrf=False)
    assert response.status_code == 400 and "Form expired" in text(response)
    assert inbound("lost@customer.example").status == "bounced"
    assert processing_job_id(mail["lost"].id) not in get_queue("inbound").job_ids
