"""sanitize_html: XSS vectors removed, images rewritten, formatting kept; html_to_text."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mail.quoting import split_html
from mail.sanitize import SanitizedHtml, html_to_text, sanitize_html

PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))


def elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Elements()
    parser.feed(html)
    parser.close()
    return parser.elements


def assert_harmless(html: str) -> None:
    assert "<script" not in html.lower()
    for tag, attrs in elements(html):
        assert tag not in {"script", "style", "iframe", "object", "embed", "form", "svg", "meta"}
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            squeezed = re.sub(r"[\x00-\x20]", "", value or "").lower()
            assert "javascript:" not in squeezed and "vbscript:" not in squeezed
            assert "url(" not in squeezed and "expression(" not in squeezed
            if tag == "a" and name == "href":
                assert not squeezed.startswith("data:")


XSS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://evil.test/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    '<img src="https://ok.test/a.png" onerror="alert(1)">',
    "<body onload=alert(1)>",
    '<a href="javascript:alert(1)">a</a>',
    '<a href="JaVaScRiPt:alert(1)">a</a>',
    '<a href="  javascript:alert(1)">a</a>',
    '<a href="java&#x09;script:alert(1)">a</a>',
    '<a href="jav&#x0A;ascript:alert(1)">a</a>',
    '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)">a</a>',
    '<a href="&#0000106avascript:alert(1)">a</a>',
    '<a href="vbscript:msgbox(1)">a</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">a</a>',
    "<svg onload=alert(1)><circle r=1 /></svg>",
    "<svg><script>alert(1)</script></svg>",
    "<math><mi xlink:href=javascript:alert(1)>x</mi></math>",
    '<div style="background-image: url(https://evil.test/track.png)">x</div>',
    '<div style="background: url(javascript:alert(1))">x</div>',
    '<div style="color: u\\72l(https://evil.test/)">x</div>',
    '<div style="width: expression(alert(1))">x</div>',
    '<div style="border-image: url(https://evil.test/b.png) 30">x</div>',
    '<meta http-equiv="refresh" content="0;url=https://evil.test/">',
    '<iframe src="https://evil.test/"></iframe>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<form action="https://evil.test/"><input name="password"><button>Go</button></form>',
    '<object data="https://evil.test/x.swf"></object><embed src="https://evil.test/x.swf">',
    '<link rel="stylesheet" href="https://evil.test/x.css"><base href="https://evil.test/">',
    "<style>@import 'https://evil.test/x.css'; body{background:url(x)}</style>",
    "<p onclick=alert(1) onmouseover='alert(2)'>text</p>",
    '<a href="https://ok.test/" onmouseover="alert(\'x\')">ok</a>',
    "<img src=`javascript:alert(1)`>",
    '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
    "<<script>script>alert(1)<</script>/script>",
    "<!--<script>alert(1)//--><script>alert(2)</script>",
    '<table background="javascript:alert(1)"><tr><td background="https://evil.test/t.png">x',
]


@pytest.mark.parametrize("vector", XSS)
def test_xss_vectors_are_neutralised(vector):
    result = sanitize_html(vector)
    assert_harmless(result.html)


def test_script_and_style_contents_are_removed_entirely():
    html = "<p>before</p><script>var secret = 1;</script><style>p { color: red }</style><p>after"
    assert sanitize_html(html).html == "<p>before</p><p>after</p>"


def test_form_controls_go_but_surrounding_text_stays():
    html = (
        "<form action='https://evil.test/'>Your order: <input value=x><button>Pay</button></form>"
    )
    assert sanitize_html(html).html == "Your order: "


def test_links_open_safely_in_a_new_tab():
    html = '<a href="https://acme.test/orders?id=1&amp;x=2" target="_self" rel="opener">Order</a>'
    [(tag, attrs)] = elements(sanitize_html(html).html)
    assert attrs == {
        "href": "https://acme.test/orders?id=1&x=2",
        "target": "_blank",
        "rel": "noopener noreferrer nofollow",
    }


def test_mailto_kept_relative_and_unknown_schemes_dropped():
    html = '<a href="mailto:a@b.test">m</a><a href="/admin">r</a><a href="ftp://x.test/">f</a>'
    hrefs = [attrs.get("href") for _, attrs in elements(sanitize_html(html).html)]
    assert hrefs == ["mailto:a@b.test", None, None]


@pytest.mark.parametrize(
    "src", ["cid:logo@example.com", "cid:LOGO@EXAMPLE.COM", "cid:%3Clogo@example.com%3E"]
)
def test_cid_images_point_at_the_attachment_url(src):
    result = sanitize_html(f'<img src="{src}" alt="Logo">', {"<logo@example.com>": "/att/7"})
    assert result == SanitizedHtml(html='<img alt="Logo" src="/att/7">', remote_images=0)


def test_cid_keys_without_brackets_and_cid_links():
    cids = {"Part1.ABC@mail": "https://app.test/attachments/9"}
    html = '<img src="cid:part1.abc@mail"><a href="cid:part1.abc@mail">file</a>'
    [(_, img), (_, link)] = elements(sanitize_html(html, cids).html)
    assert img["src"] == link["href"] == "https://app.test/attachments/9"


def test_unknown_cid_images_are_dropped():
    assert sanitize_html('<p>x<img src="cid:missing@x" alt="gone"></p>', {}).html == "<p>x</p>"


def test_remote_images_are_deferred_not_loaded():
    html = '<img src="https://cdn.test/a.png?x=1&amp;y=2" alt="Chart" width="300">'
    result = sanitize_html(html)
    [(tag, attrs)] = elements(result.html)
    assert result.remote_images == 1
    assert "src" not in attrs
    assert attrs == {
        "alt": "Chart",
        "width": "300",
        "data-remote-src": "https://cdn.test/a.png?x=1&y=2",
        "class": "remote-image",
    }


@pytest.mark.parametrize(
    "pixel",
    [
        '<img src="https://t.test/o.gif" width="1" height="1">',
        '<img src="http://t.test/o.gif" width="0" height="0" alt="">',
        '<img src="https://t.test/o.gif" style="width: 1px; height: 1px">',
        '<img src="https://t.test/o.gif" height="1px">',
        '<img src="https://t.test/o.gif" style="display:none">',
    ],
)
def test_tracking_pixels_are_dropped_but_counted(pixel):
    assert sanitize_html(f"<p>Hi{pixel}</p>") == SanitizedHtml(html="<p>Hi</p>", remote_images=1)


def test_inline_data_images_are_kept_other_data_and_relative_sources_dropped():
    html = f'<img src="{PNG}"><img src="data:text/html,x"><img src="/logo.png"><img>'
    assert sanitize_html(html).html == f'<img src="{PNG}">'


def test_attacker_cannot_smuggle_deferred_images_or_classes():
    html = '<img data-remote-src="javascript:alert(1)" class="remote-image evil" src="cid:x">'
    assert sanitize_html(html, {"x": "/att/1"}).html == '<img src="/att/1">'


def test_ordinary_formatting_is_kept():
    html = (
        '<table width="100%" cellpadding="4"><thead><tr><th colspan="2" align="left">Order</th>'
        '</tr></thead><tbody><tr><td rowspan="2" valign="top" style="color: #333; '
        'background-color: rgb(240, 240, 240); position: fixed">Item</td><td>1</td></tr></tbody>'
        '</table><p style="text-align: center; font-weight: bold">Hi <font color="red">there</font>'
        '</p><ul><li><em>one</em></li></ul><pre><code>x = 1</code></pre><h2 dir="rtl">t</h2>'
        "<blockquote><s>old</s> <sup>1</sup></blockquote><hr>"
    )
    cleaned = sanitize_html(html).html
    for fragment in [
        '<th colspan="2" align="left">',
        '<td rowspan="2" valign="top" style="color:#333;background-color:rgb(240, 240, 240)">',
        '<p style="text-align:center;font-weight:bold">',
        '<font color="red">there</font>',
        "<ul><li><em>one</em></li></ul>",
        "<pre><code>x = 1</code></pre>",
        '<h2 dir="rtl">t</h2>',
        "<blockquote><s>old</s> <sup>1</sup></blockquote><hr>",
    ]:
        assert fragment in cleaned
    assert "position" not in cleaned


def test_empty_input():
    assert sanitize_html("") == SanitizedHtml(html="", remote_images=0)


def test_html_to_text_reads_like_the_message():
    html = (
        "<html><head><title>Receipt</title><style>p{margin:0}</style></head><body>"
        "<p>Hello&nbsp;<b>Anna</b> &amp; team,</p><script>track()</script>"
        '<div>Your order<br>has shipped. <a href="https://t.test/x">Track it</a></div>'
        "<ul><li>Book</li><li>Pen</li></ul><table><tr><td>Total</td><td>9.99 €</td></tr></table>"
        "<blockquote>On Tue, Bob wrote:<p>question</p></blockquote><pre>  two\n  lines</pre>"
        "</body></html>"
    )
    assert html_to_text(html) == (
        "Hello Anna & team,\n\nYour order\nhas shipped. Track it\n\n- Book\n- Pen\n\n"
        "Total 9.99 €\n\n> On Tue, Bob wrote:\n>\n> question\n\n  two\n  lines"
    )


def test_html_to_text_survives_an_unclosed_head_and_void_elements():
    html = "<head><title>x<body>visible<embed src=x><svg/>still visible"
    assert html_to_text(html) == "visiblestill visible"


HTML_PIECES = [
    "<script>",
    "</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">',
    "<a href=java&#x09;script:x>",
    "<svg onload=alert(1)>",
    "<style>",
    '<div style="background:url(x)">',
    '<img src="https://t.test/p.gif" width=1>',
    '<img src="cid:a">',
    "<iframe>",
    "<p onclick=x>",
    "<![CDATA[",
    "<!--",
    "-->",
    "<",
    ">",
    '"',
    "'",
    "=",
    "&#",
]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(HTML_PIECES), st.text(max_size=15)), max_size=30))
def test_sanitize_output_is_always_harmless(pieces):
    html = "".join(pieces)
    result = sanitize_html(html, {"a": "/att/1"})
    assert_harmless(result.html)
    assert result.remote_images >= 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(HTML_PIECES), st.text(max_size=15)), max_size=30))
def test_html_to_text_never_raises(pieces):
    assert isinstance(html_to_text("".join(pieces)), str)


@pytest.mark.parametrize("pathological", ["<a" * 50_000, "</" * 50_000, "<p>" + "<b" * 50_000])
def test_html_to_text_stays_linear_on_unclosed_tags(pathological):
    # CPython's html.parser without the 2025 fixes is quadratic here (minutes, not milliseconds).
    assert html_to_text(pathological).startswith("<")
    assert "<script" not in sanitize_html(pathological).html


def test_sanitiser_closes_what_split_html_left_open():
    new, quoted = split_html('<div><p>New <b>text<div class="gmail_quote"><blockquote>old')
    assert sanitize_html(new).html == "<div><p>New <b>text</b></p></div>"
    assert sanitize_html(quoted).html == "<div><blockquote>old</blockquote></div>"
