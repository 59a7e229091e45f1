"""winmail.dat (TNEF) parts opened into their files and body; the part itself kept."""

import struct
from email.message import EmailMessage

from mail import tnef as tnef_module
from mail.parse import parse_email
from tests.fixtures.mail.tnef.build import (
    ATT_OEM_CODEPAGE,
    EMBEDDED_MESSAGE,
    PR_ATTACH_DATA_OBJ,
    PT_OBJECT,
    attribute,
    file_attributes,
    mapi,
    tnef,
)

LIMIT = 1_000_000
PDF = b"%PDF-1.4 quarterly"


def email(winmail: bytes, text: str | None = "See attached.", **part) -> bytes:
    message = EmailMessage()
    message["From"], message["To"] = "kim@customer.example", "support@example.com"
    message["Subject"], message["Message-ID"] = "Report", "<tnef@customer.example>"
    if text is not None:
        message.set_content(text)
    kind = part.get("kind", "application/ms-tnef").split("/")
    name = part.get("name", "winmail.dat")
    message.add_attachment(winmail, maintype=kind[0], subtype=kind[1], filename=name)
    return message.as_bytes()


def listed(parsed):
    return [(a.filename, a.content_type, a.size, a.data) for a in parsed.attachments]


def test_the_files_inside_follow_the_winmail_dat_with_their_long_names():
    winmail = tnef([("Quarterly report.pdf", PDF, b"QUARTE~1.PDF\x00"), ("notes.txt", b"n")])
    parsed = parse_email(email(winmail), LIMIT)
    assert listed(parsed) == [
        ("winmail.dat", "application/ms-tnef", len(winmail), winmail),
        ("Quarterly report.pdf", "application/pdf", len(PDF), PDF),
        ("notes.txt", "text/plain", 1, b"n"),
    ]
    assert parsed.text == "See attached.\n" and parsed.defects == []


def test_found_by_either_tnef_type_or_by_the_name_winmail_dat():
    winmail = tnef([("a.bin", b"\x00\x01")])
    by_type = email(winmail, kind="application/vnd.ms-tnef", name="message.dat")
    by_name = email(winmail, kind="application/octet-stream")
    for raw in (by_type, by_name):
        assert [a.filename for a in parse_email(raw, LIMIT).attachments][1:] == ["a.bin"]


def test_the_tnef_body_is_the_text_when_the_email_has_none():
    winmail = tnef([("a.txt", b"a")], body="Bonjour,\r\nle café est prêt.\r\n")
    parsed = parse_email(email(winmail, text=None), LIMIT)
    assert parsed.text == "Bonjour,\nle café est prêt.\n" and parsed.html is None


def test_the_tnef_html_body_when_the_email_has_no_body():
    parsed = parse_email(email(tnef(html="<p>Hello <b>there</b></p>"), text=None), LIMIT)
    assert parsed.html == "<p>Hello <b>there</b></p>" and parsed.text == ""


def test_the_email_body_is_kept_over_the_tnef_body():
    parsed = parse_email(email(tnef(body="From TNEF", html="<p>TNEF</p>")), LIMIT)
    assert parsed.text == "See attached.\n" and parsed.html is None


def test_names_are_made_safe_and_a_short_title_read_in_its_code_page():
    winmail = tnef(
        [
            ("..\\..\\Windows\\evil.exe", b"MZ"),
            ("r\xe9sum\xe9.txt", b"cv"),
            file_attributes("", b"x", title=b"\x00"),  # no usable name at all
        ]
    )
    names = [a.filename for a in parse_email(email(winmail), LIMIT).attachments]
    assert names == ["winmail.dat", "evil.exe", "résumé.txt", "attachment-4.bin"]


def test_a_tnef_that_cannot_be_read_is_kept_as_it_came_with_a_defect():
    bad_code_page = tnef()[:6] + attribute(1, ATT_OEM_CODEPAGE, b"\x01")
    for broken in (b"not tnef at all", b"\x78\x9f\x3e\x22", bad_code_page):
        parsed = parse_email(email(broken, text=None), LIMIT)
        assert listed(parsed) == [("winmail.dat", "application/ms-tnef", len(broken), broken)]
        assert parsed.text == "" and len(parsed.defects) == 1
        assert parsed.defects[0].startswith("tnef winmail.dat: ")


def test_a_winmail_dat_cut_short_gives_what_is_there_and_ignores_a_short_tail():
    """As tnefparse reads it: the last attribute keeps the bytes that arrived (but two,
    read as its checksum); a tail shorter than an attribute is no attribute."""
    whole = tnef([("first.txt", b"first"), ("a.txt", b"a" * 50)])
    for winmail, data in ((whole[:-10], b"a" * 40), (whole + b"\x00" * 10, b"a" * 50)):
        parsed = parse_email(email(winmail), LIMIT)
        assert listed(parsed)[1:] == [
            ("first.txt", "text/plain", 5, b"first"),
            ("a.txt", "text/plain", len(data), data),
        ]
        assert parsed.defects == []


def test_a_winmail_dat_over_the_size_limit_is_listed_unopened():
    winmail = tnef([("big.bin", b"x" * 4000)])
    parsed = parse_email(email(winmail), 2048)
    assert [(a.filename, a.too_large) for a in parsed.attachments] == [("winmail.dat", True)]
    assert parsed.defects == ["tnef winmail.dat: too large to open"]


def test_at_most_max_files_are_taken_from_one_email():
    files = [(f"f{n}.txt", b"x") for n in range(tnef_module.MAX_FILES + 5)]
    parsed = parse_email(email(tnef(files)), LIMIT)
    assert len(parsed.attachments) == 1 + tnef_module.MAX_FILES
    assert parsed.attachments[-1].filename == f"f{tnef_module.MAX_FILES - 1}.txt"
    assert parsed.defects == ["tnef winmail.dat: left out the files after the first 100"]


def test_nested_tnef_is_not_opened():
    inner = tnef([("deep.txt", b"deep")])
    embedded_message = mapi((PT_OBJECT, PR_ATTACH_DATA_OBJ, EMBEDDED_MESSAGE + inner))
    winmail = tnef(
        [
            ("winmail.dat", inner),  # a winmail.dat inside: kept as a file
            file_attributes("Forwarded.msg", b"", properties=embedded_message),
            ("after.txt", b"after"),
        ]
    )
    parsed = parse_email(email(winmail), LIMIT)
    assert [a.filename for a in parsed.attachments] == ["winmail.dat", "winmail.dat", "after.txt"]
    assert parsed.attachments[1].data == inner
    assert parsed.defects == [
        "tnef winmail.dat: left out a file: ValueError: an embedded message or impossible counts"
    ]


def test_impossible_counts_never_reach_tnefparse():
    """tnefparse loops over a stated count even past the data: 2**32 - 1 would take hours."""
    huge_count = struct.pack("<IHH", 0xFFFFFFFF, 0x0003, 0x3001) + bytes(4)
    huge_multi_value = struct.pack("<IHHI", 1, 0x1002, 0x3001, 0xFFFFFFF0)
    for properties in (huge_count, huge_multi_value):
        attachment = file_attributes("bad.txt", b"bad", properties=properties)
        winmail = tnef([attachment, ("ok.txt", b"ok")], body="Hi", message_props=properties)
        parsed = parse_email(email(winmail, text=None), LIMIT)
        assert [a.filename for a in parsed.attachments] == ["winmail.dat", "ok.txt"]
        assert parsed.text == "Hi"
        assert len(parsed.defects) == 2


def test_too_many_attributes_is_refused_whole():
    padding = b"".join(
        struct.pack("<BIIH", 1, 0x00018004, 0, 0) for _ in range(tnef_module.MAX_ATTRIBUTES)
    )
    parsed = parse_email(email(tnef() + padding), LIMIT)
    assert len(parsed.attachments) == 1
    assert parsed.defects == [
        f"tnef winmail.dat: ValueError: more than {tnef_module.MAX_ATTRIBUTES} attributes"
    ]
