"""parse_email over the fixture corpus: what each message must yield, field by field."""

from __future__ import annotations

import email
from datetime import UTC, datetime, timedelta, timezone
from email import policy
from pathlib import Path

import pytest

from mail.addresses import decode_bytes, decode_words, message_ids, parse_addresses
from mail.filenames import safe_filename
from mail.model import ParsedEmail
from mail.parse import parse_email

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "mail"
LIMIT = 25 * 1024 * 1024
TOKEN = "0123456789abcdef0123456789abcdef"
REPLY = f"reply+{TOKEN}@reply.example.com"
SUPPORT = ["support@example.com"]
JANE = ("jane@customer.example", "Jane Doe")
OURS = f"conversation/{TOKEN}/messages/42@reply.example.com"

# Per file: the fields parse_email must produce. "text"/"html" are snippets that must appear;
# html=None means no HTML part; attachments are (filename, type, size, content_id, inline).
EXPECTED: dict[str, dict] = {
    "thread-start.eml": dict(
        subject="Order #1042 arrived damaged",
        contact=JANE,
        message_id="thread-start@customer.example",
        recipients=SUPPORT,
        text="the glass lid is cracked",
        html=None,
    ),
    "plain-text.eml": dict(
        subject="Question about invoice INV-2024-118",
        contact=("sam.carter@customer.example", "Sam Carter"),
        message_id="5c1e9f2a-7b3d-4e8a-9d61-0f2c4b8e1a77@Customer.Example",
        recipients=SUPPORT,
        # quoted-printable, =C3=A9 decoded, the format=flowed soft break joined
        text='the wrong address: it should say "Café Rouge',
        html=None,
    ),
    "html-only.eml": dict(
        subject="Export button does nothing",
        contact=("lena@customer.example", "Lena Fischer"),
        text="",
        html="button on the reports page does nothing – no download",
    ),
    "alternative.eml": dict(
        subject="Change of billing address",
        contact=("omar@customer.example", "Omar Haddad"),
        text="Please change our billing address to 4 Harbour Street, Leith.",
        html="<b>4 Harbour Street, Leith</b>",
    ),
    "inline-cid-disposition.eml": dict(
        subject="Logo looks wrong on the invoice",
        text="[logo]",
        html='<img src="cid:logo.f3a1@customer.example"',
        attachments=[("logo.png", "image/png", 69, "logo.f3a1@customer.example", True)],
    ),
    "inline-cid-no-disposition.eml": dict(
        subject="Screenshot of the error",
        text="",
        html="cid:part1.06090408.01060107@customer.example",
        attachments=[
            ("attachment-1.jpg", "image/jpeg", 86, "part1.06090408.01060107@customer.example", True)
        ],
    ),
    "attachment-no-filename.eml": dict(
        subject="Statement for December",
        text="Please find your December statement attached.",
        html=None,
        attachments=[("attachment-1.pdf", "application/pdf", 142, None, False)],
    ),
    "forwarded-rfc822.eml": dict(
        subject="Fwd: Broken hinge on cabinet",
        contact=("marta@customer.example", "Marta Rossi"),
        text="Forwarding the complaint our store manager received",
        html=None,
        # The forwarded message is one .eml; its own hinge.png stays inside it.
        attachments=[("Broken hinge on cabinet.eml", "message/rfc822", 665, None, False)],
    ),
    "rfc2047-utf8.eml": dict(
        # a character split across two encoded words survives
        subject="Ärger mit der Lieferung – Bestellung #7781",
        contact=("juergen@kunde.example", "Jürgen Müller"),
        recipients=["support@example.com", "j.mueller@kunde.example"],
        cc=[("j.mueller@kunde.example", "Müller, Jürgen")],
        text="die Lieferung #7781 ist unvollständig.\n\nMit freundlichen Grüßen",
    ),
    "rfc2047-latin1.eml": dict(
        subject="Problème de facturation (réf. 5521)",
        contact=("helene@client.example", "Hélène Lefèvre"),
        to=[("support@example.com", "Service client")],
        text="La facture réf. 5521 mentionne 3 articles",
    ),
    "rfc2047-iso2022jp.eml": dict(
        subject="注文についてのお問い合わせ",
        contact=("taro.yamada@kaisha.example", "山田 太郎"),
        text="注文番号 A-3391 の商品がまだ届いていません。",
    ),
    "html-iso-8859-2.eml": dict(
        subject="Reklamacja zamówienia 5512",
        contact=("malgorzata@sklep.example", "Małgorzata Wąsowska"),
        text="Zazolc gesla jazn - zamowienie nr 5512",
        html="Zażółć gęślą jaźń &ndash; zamówienie nr 5512",
    ),
    "invalid-utf8.eml": dict(
        subject="Delivery to Zürich",  # a raw Latin-1 byte in a header, read by the fallback chain
        text="The parcel for Café Z\ufffdrich was returned.\nBroken bytes here: \ufffd\ufffd and",
    ),
    "unknown-charset.eml": dict(
        subject="Café order 7710",
        contact=("ana@customer.example", "Ana María"),
        text="My order 7710 for the café has not arrived. A naïve question",
    ),
    "missing-message-id.eml": dict(
        message_id=None,
        subject="Sensor 14 offline since 10:42",
        text="Sensor 14 (warehouse B) stopped reporting",
    ),
    "missing-date.eml": dict(
        message_id="no-date-5521@scripts.customer.example",
        date=None,
        text="Please send a licence key for seat 12.",
    ),
    "malformed-to.eml": dict(
        contact=("noor@customer.example", ""),
        recipients=["support@example.com", "cc@customer.example", "other@customer.example"],
        to=[("support@example.com", "")],
        text="malformed on purpose",
    ),
    "x-forwarded-for-no-to.eml": dict(
        contact=("grace@customer.example", "Grace Liu"),
        recipients=["owner@example.com", "support@example.com"],
        to=[],
        text="there is no To header at all",
    ),
    "reply-token-to.eml": dict(
        subject="Re: Order #1042 arrived damaged",
        contact=JANE,
        recipients=[REPLY],
        in_reply_to=[],
        references=[],
        text="The replacement arrived, thank you!",
    ),
    "reply-token-cc.eml": dict(
        contact=("tom.becker@customer.example", "Tom Becker"),
        recipients=["jane@customer.example", REPLY],
        cc=[(REPLY, "Example Support")],
        text="I kept support in Cc",
    ),
    "x-original-to-only.eml": dict(recipients=SUPPORT, to=[], text="Are you open on 2 January?"),
    "delivered-to-only.eml": dict(recipients=SUPPORT, to=[], text="only Delivered-To names"),
    "reply-to.eml": dict(
        contact=("priya@customer.example", "Priya Natarajan"),
        from_=("no-reply@webforms.example", "Website Contact Form"),
        text="Do you offer wholesale pricing",
    ),
    "x-original-sender.eml": dict(
        contact=("carol@customer.example", "Carol Ng"),  # the name from X-Original-From
        from_=("support-group@groups.example", "'Carol Ng' via Support"),
        recipients=["support-group@groups.example", "support@example.com"],
    ),
    "unsafe-filenames.eml": dict(
        text="Documents attached.",
        attachments=[
            ("Résumé final.pdf", "application/pdf", 15, None, False),  # RFC 2231
            ("Résumé.pdf", "application/pdf", 15, None, False),  # RFC 2047 in the parameter
            ("passwd", "text/plain", 29, None, False),  # ../../etc/passwd
            ("htaccess", "application/octet-stream", 13, None, False),  # leading dot
            ("invoicefdp.exe", "application/octet-stream", 2, None, False),  # U+202E removed
            ("scan 001.png", "image/png", 69, None, False),  # Windows path, tab
        ],
    ),
    "auto-submitted.eml": dict(
        auto=("auto_reply", "Auto-Submitted: auto-replied"),
        in_reply_to=[f"conversation/{TOKEN}/messages/41@reply.example.com"],
        text="I am away until 27 January",
    ),
    "x-autoreply.eml": dict(auto=("auto_reply", "X-Autoreply: yes")),
    "x-autorespond.eml": dict(auto=("auto_reply", "X-Autorespond: Your ticket")),
    "precedence-bulk.eml": dict(auto=("bulk", "Precedence: bulk")),
    "precedence-junk.eml": dict(auto=("bulk", "Precedence: junk")),
    "precedence-auto-reply.eml": dict(auto=("auto_reply", "Precedence: auto_reply")),
    "empty-return-path.eml": dict(auto=("bounce", "empty Return-Path"), bounce=None),
    "mailer-daemon.eml": dict(
        auto=("bounce", "sender mailer-daemon@mail.oldisp.example"),
        contact=("mailer-daemon@mail.oldisp.example", ""),
        date=datetime(2025, 1, 20, 11, 0, tzinfo=UTC),  # "-0000": zone unknown, read as UTC
    ),
    "dsn-bounce.eml": dict(
        subject="Undelivered Mail Returned to Sender",
        auto=("bounce", "multipart/report delivery-status"),
        contact=("mailer-daemon@mx.customer.example", "Mail Delivery System"),
        text="could not\nbe delivered to one or more recipients",
        attachments=[("Re_ Order #1042 arrived damaged.eml", "message/rfc822", 750, None, False)],
    ),
    "gmail-reply.eml": dict(
        subject="Re: Order #1042 arrived damaged",
        contact=JANE,
        in_reply_to=["thread-start@customer.example"],
        references=["thread-start@customer.example"],
        text="I forgot to add: the box itself was fine, only the lid is broken.\n\nOn Mon, 13 Jan",
        html='<blockquote class="gmail_quote"',
    ),
    "outlook-reply.eml": dict(
        subject="RE: Order #1042 arrived damaged",
        contact=("tom.becker@customer.example", "Tom Becker"),
        in_reply_to=["thread-start@customer.example"],
        recipients=["support@example.com", "jane@customer.example"],
        text="please ship the replacement to our office instead.\n\nTom\n\n____",
        html='<div id="divRplyFwdMsg"',
        auto=(None, None),  # X-Auto-Response-Suppress alone is not an auto-reply
    ),
    "apple-mail-reply.eml": dict(
        subject="Re: Order #1042 arrived damaged",
        contact=JANE,
        message_id="A1F3C2E4-77B0-4C1D-8E2A-0B9F6D3C5E71@customer.example",
        in_reply_to=["thread-start@customer.example"],
        text="Any news on the replacement?",
        html='<blockquote type="cite">',
    ),
    "references-only-reply.eml": dict(
        subject="Photos of the damage",
        contact=JANE,
        in_reply_to=[],
        references=["older-unrelated@customer.example", "thread-start@customer.example"],
    ),
    "same-subject-1.eml": dict(
        subject="Cannot log in",
        contact=("bob@other.example", "Bob Stone"),
        message_id="same-subject-first@other.example",
    ),
    "same-subject-2.eml": dict(
        subject="Cannot log in",
        contact=("bob@other.example", "Bob Stone"),  # BOB@ lower-cased: the same contact
        message_id="same-subject-second@other.example",
        in_reply_to=[],
        references=[],
    ),
}


def parse(name: str, limit: int = LIMIT) -> ParsedEmail:
    return parse_email((CORPUS / name).read_bytes(), limit)


def people(persons) -> list[tuple[str, str]]:
    return [(p.address, p.name) for p in persons]


def test_every_corpus_file_has_expectations_and_a_readme_line():
    files = {p.name for p in CORPUS.glob("*.eml")}
    assert files == set(EXPECTED)
    readme = (CORPUS / "README.md").read_text()
    assert [name for name in sorted(files) if f"`{name}`" not in readme] == []


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_message(name):
    want = EXPECTED[name]
    parsed = parse(name)
    assert parsed.defects == []
    for key in ("subject", "message_id", "in_reply_to", "references", "recipients"):
        if key in want:
            assert getattr(parsed, key) == want[key], key
    if "date" in want:
        assert parsed.date == want["date"]
    else:
        assert parsed.date is not None and parsed.date.tzinfo is not None
    for key in ("contact", "from_"):
        if key in want:
            person = getattr(parsed, key)
            assert (person.address, person.name) == want[key], key
    for key in ("to", "cc"):
        if key in want:
            assert people(getattr(parsed, key)) == want[key], key
    if "text" in want:
        assert want["text"] in parsed.text if want["text"] else parsed.text == ""
    if "html" in want:
        assert parsed.html is None if want["html"] is None else want["html"] in parsed.html
    got = [(a.filename, a.content_type, a.size, a.content_id, a.inline) for a in parsed.attachments]
    assert got == want.get("attachments", [])
    assert all(a.data is not None and len(a.data) == a.size for a in parsed.attachments)
    assert (parsed.auto_flag, parsed.auto_reason) == want.get("auto", (None, None))
    if "bounce" in want or not parsed.auto_flag == "bounce":
        assert parsed.bounce == want.get("bounce")


def test_dsn_bounce_names_our_message_recipient_and_diagnostic():
    report = parse("dsn-bounce.eml").bounce
    assert report.original_message_id == OURS
    assert report.recipient == "nobody@customer.example"
    assert (report.action, report.status) == ("failed", "5.1.1")
    assert report.diagnostic == (
        "550 5.1.1 <nobody@customer.example>: Recipient address rejected: "
        "User unknown in local recipient table"
    )


def test_mailer_daemon_text_bounce_finds_the_quoted_message_id():
    report = parse("mailer-daemon.eml").bounce
    assert report.original_message_id == f"conversation/{TOKEN}/messages/43@reply.example.com"
    assert report.recipient == "old.customer@oldisp.example"
    assert report.status == "5.1.1"
    assert report.diagnostic == (
        "<old.customer@oldisp.example>: Sorry, no mailbox here by that name. (#5.1.1)"
    )


def test_forwarded_message_is_stored_as_a_readable_eml():
    attachment = parse("forwarded-rfc822.eml").attachments[0]
    inner = email.message_from_bytes(attachment.data, policy=policy.default)
    assert inner["Message-ID"] == "<hinge-0045@shopper.example>"
    assert inner["Subject"] == "Broken hinge on cabinet"
    assert [p.get_filename() for p in inner.iter_attachments()] == ["hinge.png"]
    again = parse_email(attachment.data, LIMIT)
    assert again.contact.address == "paul@shopper.example"
    assert again.attachments[0].filename == "hinge.png"


def test_attachment_over_the_limit_is_listed_without_data():
    parsed = parse("unsafe-filenames.eml", limit=20)
    sizes = {a.filename: (a.size, a.too_large, a.data) for a in parsed.attachments}
    assert sizes["scan 001.png"] == (69, True, None)
    assert sizes["passwd"] == (29, True, None)
    assert sizes["Résumé.pdf"] == (15, False, b"%PDF-1.4\n%%EOF\n")


def test_inline_image_data_is_the_decoded_bytes():
    image = parse("inline-cid-disposition.eml").attachments[0]
    assert image.data.startswith(b"\x89PNG\r\n\x1a\n")


def test_dates_keep_their_offset():
    assert parse("rfc2047-iso2022jp.eml").date == datetime(
        2025, 1, 17, 11, 30, 5, tzinfo=timezone(timedelta(hours=9))
    )


def test_body_parts_are_not_attachments_and_text_is_not_taken_from_attachments():
    parsed = parse_email(
        b"From: a@x.example\nTo: support@example.com\nSubject: s\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="b"\n\n'
        b'--b\nContent-Type: text/plain; name="notes.txt"\nContent-Disposition: attachment\n\n'
        b"attached notes\n"
        b"--b\nContent-Type: text/html\n\n<p>the body</p>\n"
        b"--b--\n",
        LIMIT,
    )
    assert parsed.text == ""
    assert parsed.html == "<p>the body</p>"
    assert [(a.filename, a.content_type) for a in parsed.attachments] == [
        ("notes.txt", "text/plain")
    ]


def test_apple_mail_body_split_around_an_inline_image_is_joined():
    parsed = parse_email(
        b"From: a@x.example\nSubject: s\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="b"\n\n'
        b"--b\nContent-Type: text/plain\n\nbefore the picture\n"
        b'--b\nContent-Type: image/png\nContent-Disposition: inline; filename="p.png"\n\n'
        b"PNG\n"
        b"--b\nContent-Type: text/plain\n\nafter the picture\n"
        b"--b--\n",
        LIMIT,
    )
    assert parsed.text == "before the picture\nafter the picture"
    assert [(a.filename, a.inline) for a in parsed.attachments] == [("p.png", True)]


def test_multipart_without_boundary_keeps_its_content_as_text():
    parsed = parse_email(
        b"From: a@x.example\nContent-Type: multipart/mixed\n\nthe words are still here\n", LIMIT
    )
    assert "the words are still here" in parsed.text
    assert parsed.defects  # the parser's complaint is kept for the log


def test_garbage_is_an_empty_parse_not_an_error():
    parsed = parse_email(b"\x00\xff\xfe not an email at all", LIMIT)
    assert isinstance(parsed, ParsedEmail)
    assert parsed.message_id is None and parsed.contact is None and parsed.recipients == []


def test_message_ids_tolerate_missing_brackets_and_junk():
    assert message_ids("<a@x> (comment) <b@y>") == ["a@x", "b@y"]
    assert message_ids('Your message of "Mon, 1 Jan" <c@z>') == ["c@z"]
    assert message_ids("bare@id.example") == ["bare@id.example"]
    assert message_ids("12345.ABCDE") == ["12345.ABCDE"]
    assert message_ids("two words") == []
    assert message_ids("<a@x> <a@x>") == ["a@x"]


def test_encoded_words():
    assert decode_words("=?utf-8?q?caf=C3?= =?utf-8?q?=A9?= ok") == "café ok"
    assert decode_words("=?UTF-8?B?w6k?=") == "é"  # missing padding
    assert decode_words("=?utf-8*en?Q?x_y?=") == "x y"  # RFC 2231 language tag
    assert decode_words("a =?iso-8859-1?q?=E9?= b") == "a é b"
    assert decode_words("=?utf-8?q?bad=FF?=") == "bad\ufffd"
    assert decode_words("no words\n here") == "no words here"


def test_decode_bytes_never_fails():
    assert decode_bytes(b"caf\xe9", "iso-8859-1") == "café"
    assert decode_bytes(b"\x93quoted\x94", "iso-8859-1") == "\u201cquoted\u201d"  # as browsers do
    assert decode_bytes(b"caf\xc3\xa9", "x-nope") == "café"
    assert decode_bytes(b"caf\xc3\xa9", None) == "café"
    assert decode_bytes(b"\\u0041", "unicode_escape") == "\\u0041"  # not a mail charset
    assert decode_bytes(b"xn--abc", "idna") == "xn--abc"
    assert decode_bytes(b"a\x00b", "utf-8") == "a\ufffdb"  # PostgreSQL text cannot hold NUL


def test_parse_addresses_falls_back_to_a_scan():
    assert parse_addresses(["support@example.com <<broken"]) == [("", "support@example.com")]
    assert parse_addresses(['"Doe, Jane" <JANE@X.example>, b@y.example']) == [
        ("Doe, Jane", "jane@x.example"),
        ("", "b@y.example"),
    ]
    assert parse_addresses(["undisclosed-recipients:;"]) == []


@pytest.mark.parametrize(
    "name, content_type, expected",
    [
        ("../../etc/passwd", "text/plain", "passwd"),
        ("..\\..\\boot.ini", "text/plain", "boot.ini"),
        (".bashrc", "text/plain", "bashrc"),
        ("  . report.pdf ", "application/pdf", "report.pdf"),
        ("a\x00b\x07c.txt", "text/plain", "abc.txt"),
        ("line\r\nbreak.txt", "text/plain", "line break.txt"),
        ('what?"*.txt', "text/plain", "what___.txt"),
        ("=?utf-8?q?na=C3=AFve.txt?=", "text/plain", "naïve.txt"),
        (None, "image/jpeg", "attachment-3.jpg"),
        ("", "application/x-unheard-of", "attachment-3.bin"),
        ("...", "message/rfc822", "attachment-3.eml"),
        ("/", "text/plain", "attachment-3.txt"),
    ],
)
def test_safe_filename(name, content_type, expected):
    assert safe_filename(name, content_type, 3) == expected


def test_safe_filename_keeps_the_extension_when_shortened():
    name = safe_filename("x" * 500 + ".pdf", "application/pdf", 1)
    assert len(name) == 200 and name.endswith("x.pdf")
    assert len(safe_filename("y" * 500, "application/pdf", 1)) == 200


def test_named_alternative_is_still_the_body_and_a_calendar_part_is_kept():
    parsed = parse_email(
        b"From: a@x.example\nSubject: Invitation\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/alternative; boundary="b"\n\n'
        b"--b\nContent-Type: text/plain\n\nplain words\n"
        b'--b\nContent-Type: text/html; name="message.html"\n\n<p>html words</p>\n'
        b"--b\nContent-Type: text/calendar; method=REQUEST\n\nBEGIN:VCALENDAR\n"
        b"--b--\n",
        LIMIT,
    )
    assert (parsed.text, parsed.html) == ("plain words", "<p>html words</p>")
    assert [(a.filename, a.content_type) for a in parsed.attachments] == [
        ("attachment-1.ics", "text/calendar")
    ]


def test_raw_8bit_names_are_read_as_utf8_and_control_characters_dropped():
    parsed = parse_email(
        b'From: "Bo\x07b \xc3\x98ster" <b@x.example>\nSubject: a\x1bb\n'
        b"Content-Type: multipart/mixed; boundary=b\n\n--b\n"
        b'Content-Type: application/pdf\nContent-Disposition: attachment; filename="caf\xc3\xa9'
        b' \xff.pdf"\n\nx\n--b--\n',
        LIMIT,
    )
    assert parsed.contact.name == "Bo b Øster"
    assert parsed.subject == "a b"
    assert [a.filename for a in parsed.attachments] == ["café \ufffd.pdf"]
