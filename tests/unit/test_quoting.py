"""split_text / split_html: each client's reply style, localised headers, and nothing ever lost."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mail.quoting import is_attribution, split_html, split_text


def squeeze(text: str) -> str:
    return "".join(text.split())


def assert_nothing_lost(source: str, new: str, quoted: str | None) -> None:
    assert squeeze(new + (quoted or "")) == squeeze(source)


GMAIL = """Thanks, that fixed it!

Best,
Anna

On Tue, 12 Mar 2024 at 10:02, Acme Support <support@acme.test> wrote:

> Hi Anna,
>
> Please clear the cache and log in again.
>
> --
> Acme Support
"""
GMAIL_WRAPPED = """Sounds good, go ahead.

On Tue, Mar 12, 2024 at 10:02 AM Acme Customer Support Team <
support@acme.test> wrote:

> Hello,
"""
APPLE = """Yes please.

Sent from my iPhone

> On 12 Mar 2024, at 10:02, Acme Support <support@acme.test> wrote:
>
> Shall we refund the order?
"""
OUTLOOK = (
    "Hi team,\r\nIt is still broken.\r\n\r\n"
    "From: Acme Support <support@acme.test>\r\n"
    "Sent: Tuesday, March 12, 2024 10:02 AM\r\n"
    "To: Anna Example <anna@example.com>\r\n"
    "Subject: RE: Login issue\r\n\r\nHi Anna,\r\nPlease try again.\r\n"
)
OUTLOOK_SEPARATOR = """It is still broken.

Anna

________________________________
From: Acme Support <support@acme.test>
Sent: Tuesday, March 12, 2024 10:02
To: Anna Example
Subject: Re: Login

Hello Anna,
"""
ORIGINAL_MESSAGE = """See my comments below.

-----Original Message-----
From: Bob <bob@example.com>
Sent: Monday, March 11, 2024 9:00 AM
Subject: Invoice

Old text
"""
NESTED = """Top answer.

On Wed, 13 Mar 2024 at 09:00, Bob <bob@example.com> wrote:
> Middle answer.
>
> On Tue, 12 Mar 2024 at 10:02, Anna <anna@example.com> wrote:
>> Bottom question.
"""
SIGNATURE_THEN_QUOTE = """Here is the log file.
--\x20
Anna Example
Example GmbH

On Tue, 12 Mar 2024 at 10:02, Acme Support <support@acme.test> wrote:
> Could you send the log?
"""

# (name, message, expected new text, how the quoted part starts)
TEXT_CASES = [
    ("gmail", GMAIL, "Thanks, that fixed it!\n\nBest,\nAnna", "On Tue, 12 Mar 2024"),
    ("gmail wrapped attribution", GMAIL_WRAPPED, "Sounds good, go ahead.", "On Tue, Mar 12"),
    ("apple", APPLE, "Yes please.\n\nSent from my iPhone", "> On 12 Mar 2024"),
    ("outlook", OUTLOOK, "Hi team,\r\nIt is still broken.", "From: Acme Support"),
    ("outlook separator", OUTLOOK_SEPARATOR, "It is still broken.\n\nAnna", "_____"),
    ("original message", ORIGINAL_MESSAGE, "See my comments below.", "-----Original Message"),
    ("nested quotes", NESTED, "Top answer.", "On Wed, 13 Mar 2024"),
    (
        "signature stays new",
        SIGNATURE_THEN_QUOTE,
        "Here is the log file.\n-- \nAnna Example\nExample GmbH",
        "On Tue",
    ),
    (
        "french gmail",
        "Merci beaucoup.\n\nLe mar. 12 mars 2024 à 10:02, Support Acme <support@acme.test> "
        "a écrit\u00a0:\n> Bonjour\n",
        "Merci beaucoup.",
        "Le mar. 12 mars",
    ),
    (
        "german",
        "Danke!\n\nAm 12.03.2024 um 10:02 schrieb Acme Support <support@acme.test>:\n> Hallo\n",
        "Danke!",
        "Am 12.03.2024",
    ),
    (
        "spanish",
        "Gracias.\n\nEl mar, 12 mar 2024 a las 10:02, Soporte Acme (<support@acme.test>) "
        "escribió:\n> Hola\n",
        "Gracias.",
        "El mar, 12",
    ),
    (
        "dutch",
        "Bedankt.\n\nOp di 12 mrt. 2024 om 10:02 schreef Acme Support <support@acme.test>:\n"
        "> Hallo\n",
        "Bedankt.",
        "Op di 12",
    ),
    (
        "german outlook",
        "Geht nicht.\n\nVon: Acme Support <support@acme.test>\nGesendet: Dienstag, 12. März 2024 "
        "10:02\nAn: Anna <anna@example.com>\nBetreff: AW: Login\n\nHallo\n",
        "Geht nicht.",
        "Von: Acme",
    ),
    (
        "french outlook",
        "Toujours pas.\n\nDe : Acme Support <support@acme.test>\nEnvoyé : mardi 12 mars 2024 "
        "10:02\nÀ : Anna\nObjet : RE: Login\n\nBonjour\n",
        "Toujours pas.",
        "De : Acme",
    ),
    (
        "spanish outlook",
        "Sigue fallando.\n\nDe: Acme <support@acme.test>\nEnviado: martes, 12 de marzo de 2024 "
        "10:02\nPara: Anna\nAsunto: RE: Login\n",
        "Sigue fallando.",
        "De: Acme",
    ),
    (
        "german original message",
        "Siehe unten.\n\n-----Ursprüngliche Nachricht-----\nVon: Bob\nBetreff: x\n",
        "Siehe unten.",
        "-----Urspr",
    ),
    (
        "trailing > block without attribution",
        "I agree with this.\n\n> earlier text\n> more earlier text\n",
        "I agree with this.",
        "> earlier text",
    ),
]


@pytest.mark.parametrize(("name", "message", "new", "quoted_start"), TEXT_CASES)
def test_split_text_reply_styles(name, message, new, quoted_start):
    got_new, quoted = split_text(message)
    assert got_new == new
    assert quoted.startswith(quoted_start)
    assert message.endswith(quoted), "the quoted part is the input, verbatim, from the marker on"
    assert_nothing_lost(message, got_new, quoted)


UNSPLIT_CASES = [
    ("no quote", "Hello,\nI cannot log in since this morning.\n-- \nAnna\n"),
    ("only quoted", "> just a quote\n> and more of it\n"),
    ("only attribution and quote", "On Tue, 12 Mar 2024 at 10:02, Bob <b@x.com> wrote:\n> Hi\n"),
    (
        "interleaved answers",
        "Hi,\n\nOn Tue, 12 Mar 2024 at 10:02, Bob <b@x.com> wrote:\n> Q1?\nA1.\n> Q2?\nA2.\n",
    ),
    (
        "gmail forward is content",
        "FYI, see below.\n\n---------- Forwarded message ---------\nFrom: Carl <c@x.com>\n"
        "Date: Tue, 12 Mar 2024 at 10:02\nSubject: Broken\nTo: Anna <a@x.com>\n\nThe body\n",
    ),
    ("a sentence that is not an attribution", "On Monday I wrote:\nthe server is down.\n"),
    (
        "apple forward is content",
        "See below.\n\nBegin forwarded message:\n\n> From: Carl <c@x.com>\n> Subject: Broken\n"
        "> Date: 12 March 2024 at 10:02:00 CET\n>\n> The body\n",
    ),
    ("empty", ""),
]


@pytest.mark.parametrize(("name", "message"), UNSPLIT_CASES)
def test_split_text_keeps_everything_new_when_there_is_no_history(name, message):
    new, quoted = split_text(message)
    assert (new, quoted) == (message.rstrip(), "")


def test_bottom_posted_reply_ending_in_quote_cuts_only_the_trailing_block():
    message = "Hi,\n\nOn Tue, 12 Mar 2024 at 10:02, Bob <b@x.com> wrote:\n> Q1?\nA1.\n> Q2?\n"
    new, quoted = split_text(message)
    assert new.endswith("A1.") and quoted == "> Q2?\n"


@pytest.mark.parametrize(
    "line",
    [
        "On Tue, 12 Mar 2024 at 10:02, Acme <support@acme.test> wrote:",
        "Le mar. 12 mars 2024 à 10:02, Acme <support@acme.test> a écrit :",
        "Am Di., 12. März 2024 um 10:02 Uhr schrieb Acme <support@acme.test>:",
        "El mar, 12 mar 2024 a las 10:02, Acme (<support@acme.test>) escribió:",
        "Op di 12 mrt. 2024 om 10:02 schreef Acme <support@acme.test>:",
        "Jane Doe <jane@example.com> wrote:",
    ],
)
def test_attribution_lines(line):
    assert is_attribution(line)


GMAIL_HTML = (
    '<div dir="ltr">Thanks, fixed!<div><br></div></div><br><div class="gmail_quote">'
    '<div dir="ltr" class="gmail_attr">On Tue, 12 Mar 2024 at 10:02, Acme &lt;support@acme.test&gt;'
    ' wrote:<br></div><blockquote class="gmail_quote" style="margin:0 0 0 .8ex">Hi'
    '<div class="gmail_quote">older</div></blockquote></div>'
)
OUTLOOK_WEB_HTML = (
    "<html><head><style>p{margin:0}</style></head><body><div>Still broken.</div>"
    '<div id="appendonsend"></div><hr style="display:inline-block;width:98%">'
    '<div id="divRplyFwdMsg" dir="ltr"><b>From:</b> Acme</div><div>old</div></body></html>'
)
OUTLOOK_DESKTOP_HTML = (
    '<div class="WordSection1"><p class="MsoNormal">Hello<o:p></o:p></p><div>'
    '<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0in 0in 0in">'
    '<p class="MsoNormal"><b>From:</b> Acme</p></div></div><p>old</p></div>'
)
APPLE_HTML = (
    '<html><body dir="auto">Yes please.<br><div dir="ltr"><br><blockquote type="cite">On 12 Mar '
    "2024, at 10:02, Acme &lt;support@acme.test&gt; wrote:<br><br></blockquote></div>"
    '<blockquote type="cite"><div dir="ltr">Hi</div></blockquote></body></html>'
)
APPLE_OLD_HTML = (
    "<div>Yes please.</div><div><br><div>On Mar 12, 2024, at 10:02 AM, Acme &lt;s@acme.test&gt; "
    'wrote:</div><br class="Apple-interchange-newline"><blockquote type="cite"><div>Hi</div>'
    "</blockquote></div>"
)

# (name, html, expected new html, how the quoted part starts)
HTML_CASES = [
    ("gmail", GMAIL_HTML, GMAIL_HTML[: GMAIL_HTML.index("<div class")], '<div class="gmail_quote'),
    (
        "outlook web",
        OUTLOOK_WEB_HTML,
        OUTLOOK_WEB_HTML[: OUTLOOK_WEB_HTML.index("<div id")],
        '<div id="appendonsend">',
    ),
    (
        "outlook hr before divRplyFwdMsg",
        '<div>Broken.</div><hr tabindex="-1"><div id="divRplyFwdMsg">From: Acme</div>',
        "<div>Broken.</div>",
        "<hr",
    ),
    ("outlook desktop", OUTLOOK_DESKTOP_HTML, OUTLOOK_DESKTOP_HTML[:72], '<div style="border:none'),
    (
        "outlook mac",
        '<div>Mac</div><span id="OLK_SRC_BODY_SECTION"><div>From: x</div></span>',
        "<div>Mac</div>",
        '<span id="OLK_SRC',
    ),
    ("apple", APPLE_HTML, APPLE_HTML[: APPLE_HTML.index("<blockquote")], '<blockquote type="cite"'),
    ("apple, attribution outside", APPLE_OLD_HTML, "<div>Yes please.</div><div><br>", "<div>On "),
    (
        "thunderbird",
        '<p>OK</p><div class="moz-cite-prefix">On 3/12/24 10:02, Acme wrote:<br></div>'
        '<blockquote type="cite">Hi</blockquote>',
        "<p>OK</p>",
        '<div class="moz-cite-prefix">',
    ),
    (
        "yahoo",
        '<div>Fine</div><div id="yahoo_quoted_1" class="yahoo_quoted"><div>On Tue…</div></div>',
        "<div>Fine</div>",
        '<div id="yahoo_quoted_1"',
    ),
    (
        "plain blockquote ending the message, attribution above it",
        "<p>My answer</p><p>On Tue, 12 Mar 2024 at 10:02, Bob &lt;b@x.com&gt; wrote:</p>"
        "<blockquote>question<blockquote>older</blockquote></blockquote>\n<br>\n",
        "<p>My answer</p>",
        "<p>On Tue",
    ),
    (
        "original message in html",
        "<div>See below</div><div>-----Original Message-----<br>From: x</div>",
        "<div>See below</div>",
        "<div>-----Original",
    ),
    (
        "unclosed tags are left as they are",
        '<div><p>New<div class="gmail_quote"><blockquote>old',
        "<div><p>New",
        '<div class="gmail_quote"><blockquote>old',
    ),
]


@pytest.mark.parametrize(("name", "html", "new", "quoted_start"), HTML_CASES)
def test_split_html_client_markers(name, html, new, quoted_start):
    got_new, quoted = split_html(html)
    assert got_new == new
    assert quoted is not None and quoted.startswith(quoted_start)
    assert html.endswith(quoted)
    assert_nothing_lost(html, got_new, quoted)


@pytest.mark.parametrize(
    "html",
    [
        "<p>Hello <b>there</b></p>",
        "<p>Intro</p><blockquote>cited text</blockquote><p>My comment on it</p>",
        '<div class="gmail_quote">On … wrote: <blockquote>only history</blockquote></div>',
        "<html><head><title>t</title><style>a{}</style></head><body>"
        '<blockquote type="cite">Hi</blockquote></body></html>',
        "<div <<p>>x</ <!-- <blockquote>",
        "",
        '<div>FYI</div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">'
        "---------- Forwarded message ---------<br>From: Carl</div><br><br>body</div>",
        '<div>FYI</div><div>Begin forwarded message:</div><blockquote type="cite">'
        "<div>From: Carl</div></blockquote>",
    ],
)
def test_split_html_without_new_text_or_history_returns_everything(html):
    assert split_html(html) == (html, None)


TEXT_PIECES = [
    "On Tue, 12 Mar 2024 at 10:02, Bob <b@x.com> wrote:",
    "> quoted",
    ">> deeper",
    "-----Original Message-----",
    "________________________________",
    "From: Acme <s@acme.test>",
    "Sent: Tuesday",
    "Subject: Re: x",
    "-- ",
    "",
    "Le 12 mars 2024, Acme <",
    "s@acme.test> a écrit :",
]
HTML_PIECES = [
    '<div class="gmail_quote">',
    "<blockquote>",
    '<blockquote type="cite">',
    "</blockquote>",
    "<div>",
    "</div>",
    "<br>",
    "<hr>",
    '<div id="divRplyFwdMsg">',
    "<p>On Tue, 12 Mar 2024, Bob &lt;b@x.com&gt; wrote:</p>",
    "<!--",
    "<![CDATA[",
    "<script>",
    "&amp;",
    "<",
    "\n",
    "text",
]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(TEXT_PIECES), st.text(max_size=30)), max_size=20))
def test_split_text_never_loses_content(pieces):
    text = "\n".join(pieces)
    new, quoted = split_text(text)
    assert_nothing_lost(text, new, quoted)
    assert text.endswith(quoted)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(HTML_PIECES), st.text(max_size=20)), max_size=25))
def test_split_html_never_raises_and_never_loses_content(pieces):
    html = "".join(pieces)
    new, quoted = split_html(html)
    assert_nothing_lost(html, new, quoted)
    assert quoted is None or (quoted and html.endswith(quoted))


@pytest.mark.parametrize("pathological", ["<a" * 50_000, "</" * 50_000, "<" * 100_000])
def test_split_html_stays_linear_on_unclosed_tags(pathological):
    # CPython's html.parser without the 2025 fixes is quadratic here (minutes, not milliseconds).
    new, quoted = split_html(pathological)
    assert (new, quoted) == (pathological, None)


def test_split_html_text_after_the_last_tag_is_content():
    html = "<p>New</p><blockquote>old</blockquote> and a < b afterwards"
    assert split_html(html) == (html, None)


def test_split_html_reads_past_an_unclosed_head():
    html = '<html><head><title>Re: x</title><body><p>New</p><div class="gmail_quote">old</div>'
    assert split_html(html) == (html[: html.index("<div")], '<div class="gmail_quote">old</div>')
