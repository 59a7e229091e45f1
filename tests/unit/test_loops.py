"""Auto-reply, bulk and bounce detection, and what a bounce says about our message."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from mail.loops import classify_auto, parse_bounce

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "mail"
OURS = "conversation/0123456789abcdef0123456789abcdef/messages/42@reply.example.com"
BASE = b"From: Jane Doe <jane@customer.example>\nTo: support@example.com\nSubject: hello\n"


def message(headers: bytes = b"", body: bytes = b"\nhello\n", base: bytes = BASE):
    return BytesParser(policy=policy.default).parsebytes(base + headers + body)


def corpus(name: str):
    return BytesParser(policy=policy.default).parsebytes((CORPUS / name).read_bytes())


@pytest.mark.parametrize(
    "headers, expected",
    [
        (b"Auto-Submitted: auto-replied\n", ("auto_reply", "Auto-Submitted: auto-replied")),
        (b"Auto-Submitted: auto-generated\n", ("auto_reply", "Auto-Submitted: auto-generated")),
        (b"Auto-Submitted: Auto-Replied; owner-email=x@y\n", ("auto_reply", None)),
        (b"X-Autoreply: yes\n", ("auto_reply", "X-Autoreply: yes")),
        (b"X-Autorespond: Re: hello\n", ("auto_reply", "X-Autorespond: Re: hello")),
        (b"Precedence: bulk\n", ("bulk", "Precedence: bulk")),
        (b"Precedence: JUNK\n", ("bulk", "Precedence: junk")),
        (b"Precedence: list\n", ("bulk", "Precedence: list")),
        (b"Precedence: auto_reply\n", ("auto_reply", "Precedence: auto_reply")),
        (b"Return-Path: <>\n", ("bounce", "empty Return-Path")),
        (b"Return-Path: < >\n", ("bounce", "empty Return-Path")),
    ],
)
def test_each_signal(headers, expected):
    flag, reason = classify_auto(message(headers))
    assert flag == expected[0]
    if expected[1] is not None:
        assert reason == expected[1]


@pytest.mark.parametrize(
    "headers",
    [
        b"",
        b"Auto-Submitted: no\n",
        b"Auto-Submitted: No ; comment\n",
        b"X-Auto-Response-Suppress: All\n",  # Outlook sets this on ordinary mail
        b"X-Auto-Response-Suppress: DR, OOF, AutoReply\n",
        b"X-Autoreply: no\n",
        b"Precedence: first-class\n",
        b"Return-Path: <jane@customer.example>\n",
        b"List-Unsubscribe: <https://x.example/u>\n",  # mailing lists with people on them
    ],
)
def test_ordinary_mail_is_not_automatic(headers):
    assert classify_auto(message(headers)) == (None, None)


@pytest.mark.parametrize("sender", [b"MAILER-DAEMON@mx.example", b"postmaster@mx.example"])
def test_bounce_senders(sender):
    base = b"From: Mail Delivery System <" + sender + b">\nSubject: failure\n"
    flag, reason = classify_auto(message(base=base))
    assert flag == "bounce"
    assert reason == "sender " + sender.decode().lower()


def test_a_delivery_report_is_a_bounce_before_its_auto_submitted_header():
    assert classify_auto(corpus("dsn-bounce.eml")) == ("bounce", "multipart/report delivery-status")


def test_an_auto_reply_with_a_null_sender_is_an_auto_reply():
    flag, _reason = classify_auto(message(b"Return-Path: <>\nAuto-Submitted: auto-replied\n"))
    assert flag == "auto_reply"


def test_corpus_dsn_report():
    report = parse_bounce(corpus("dsn-bounce.eml"))
    assert report.original_message_id == OURS
    assert report.recipient == "nobody@customer.example"
    assert (report.action, report.status) == ("failed", "5.1.1")
    assert report.diagnostic.startswith("550 5.1.1 <nobody@customer.example>: Recipient address")


REPORT = b"""From: Mail Delivery Subsystem <mailer-daemon@googlemail.example>
To: support@example.com
Subject: Delivery Status Notification (Failure)
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="r"

--r
Content-Type: text/plain

Your message wasn't delivered.

--r
Content-Type: message/delivery-status

Reporting-MTA: dns; googlemail.example

Final-Recipient: rfc822; slow@far.example
Action: delayed
Status: 4.4.1

Final-Recipient: rfc822; <Gone@Far.example>
Action: failed
Status: 5.2.1 (mailbox disabled)

--r
Content-Type: text/rfc822-headers

From: Example Support <support@example.com>
Message-ID:
 <conversation/0123456789abcdef0123456789abcdef/messages/42@reply.example.com>
Subject: Re: hello

--r--
"""


def test_report_with_returned_headers_and_two_recipients_picks_the_failed_one():
    report = parse_bounce(BytesParser(policy=policy.default).parsebytes(REPORT))
    assert report.original_message_id == OURS
    assert report.recipient == "gone@far.example"
    assert (report.action, report.status) == ("failed", "5.2.1")
    assert report.diagnostic == "failed: permanent failure (5.2.1)"  # no Diagnostic-Code


def test_report_without_returned_message_uses_the_report_headers():
    raw = REPORT.replace(b"Content-Type: text/rfc822-headers", b"Content-Type: text/x-nothing")
    raw = raw.replace(
        b"MIME-Version", b"X-Original-Message-ID: <" + OURS.encode() + b">\nMIME-Version"
    )
    report = parse_bounce(BytesParser(policy=policy.default).parsebytes(raw))
    assert report.original_message_id == OURS


def test_delayed_only_report_says_delayed():
    raw = REPORT.replace(b"Action: failed", b"Action: delayed").replace(b"5.2.1", b"4.2.2")
    report = parse_bounce(BytesParser(policy=policy.default).parsebytes(raw))
    assert report.recipient == "slow@far.example"
    assert (report.action, report.status) == ("delayed", "4.4.1")
    assert report.diagnostic == "delayed: temporary failure (4.4.1)"


def test_exim_style_bounce_uses_x_failed_recipients():
    raw = (
        b"From: Mail Delivery System <Mailer-Daemon@mx.far.example>\n"
        b"To: support@example.com\nSubject: Mail delivery failed\n"
        b"X-Failed-Recipients: lost@far.example\n\n"
        b"This message was created automatically by mail delivery software.\n\n"
        b"A message that you sent could not be delivered to one or more of its\n"
        b"recipients. This is a permanent error. The following address(es) failed:\n\n"
        b"  lost@far.example\n"
        b"    host mx.far.example [192.0.2.9]\n"
        b"    SMTP error from remote mail server after RCPT TO:<lost@far.example>:\n"
        b"    550 5.1.1 User unknown\n\n"
        b"------ This is a copy of the message, including all the headers. ------\n\n"
        b"Message-Id: <" + OURS.encode() + b">\nFrom: support@example.com\n"
    )
    report = parse_bounce(BytesParser(policy=policy.default).parsebytes(raw))
    assert report.original_message_id == OURS
    assert report.recipient == "lost@far.example"
    assert report.status == "5.1.1"
    assert report.diagnostic.endswith("550 5.1.1 User unknown")


def test_ordinary_mail_and_auto_replies_are_not_bounces():
    assert parse_bounce(message()) is None
    assert parse_bounce(corpus("auto-submitted.eml")) is None
    assert parse_bounce(corpus("empty-return-path.eml")) is None


def test_mailer_daemon_message_without_any_original_is_no_report():
    base = b"From: MAILER-DAEMON@mx.example\nSubject: hi\n"
    assert parse_bounce(message(base=base, body=b"\nJust a notice.\n")) is None
