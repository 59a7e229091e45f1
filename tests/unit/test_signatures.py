"""Signatures (services/signatures.py): sanitised HTML, variables filled in escaped (never a
template language), their text version, the agent's above the inbox's; and the reply's HTML
part with its signature block (mail/compose.html_with_signature)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mail.compose import html_with_signature, text_to_html
from services.signatures import fill, render, sanitise, to_text

INBOX = SimpleNamespace(name="Support", support_address="support@example.com", signature="")


def agent(name="Ann Agent", email="ann@example.com", signature=""):
    return SimpleNamespace(name=name, email=email, signature=signature)


@pytest.mark.parametrize(
    "dirty, gone",
    [
        ("<p>Ann<script>alert(1)</script></p>", ["<script", "alert(1)"]),
        ('<p onclick="steal()">Ann</p>', ["onclick", "steal"]),
        ('<p style="color:red">Ann</p><style>p{}</style>', ["style", "color", "p{}"]),
        ('<a href="javascript:alert(1)">Ann</a>', ["javascript", "href"]),
        ('<a href=" JaVaScRiPt:alert(1)">Ann</a>', ["javascript", "href"]),
        ('<a href="data:text/html,x">Ann</a>', ["data:", "href"]),
        ('<img src="https://tracker.example.com/p.gif">Ann', ["<img", "tracker"]),
        ("<iframe src=https://evil.example.com></iframe>Ann", ["iframe", "evil"]),
    ],
)
def test_sanitise_strips_scripts_handlers_styles_and_unsafe_links(dirty, gone):
    clean = sanitise(dirty)
    assert "Ann" in clean
    for fragment in gone:
        assert fragment.lower() not in clean.lower(), clean


def test_sanitise_keeps_simple_formatting_and_marks_links_noopener():
    clean = sanitise(
        '<p><b>Ann</b> <i>Agent</i><br><a href="https://example.com">site</a></p>'
        "<ul><li>one</li></ul>"
    )
    assert "<b>Ann</b>" in clean and "<i>Agent</i>" in clean and "<li>one</li>" in clean
    assert '<a href="https://example.com" rel="noopener noreferrer">site</a>' in clean


def test_sanitise_takes_text_without_tags_as_text_and_is_idempotent():
    clean = sanitise("Ann & co\r\nSupport <3")
    assert clean == "Ann &amp; co<br>\nSupport &lt;3"
    assert sanitise(clean) == clean
    assert sanitise("   ") == ""


def test_variables_are_replaced_escaped_and_unknown_ones_stay_as_typed():
    values = {"agent.name": "<b>Ann</b>", "agent.email": "ann@example.com"}
    values |= {"inbox.name": "Support & Co", "inbox.address": "support@example.com"}
    html = fill(
        "<p>{{agent.name}} · {{ agent.email }} · {{inbox.name }} · {{inbox.address}}</p>"
        "<p>{{agent.phone}} {{ whatever }} {% if x %}</p>",
        values,
    )
    assert "&lt;b&gt;Ann&lt;/b&gt;" in html and "<b>" not in html
    assert "ann@example.com · Support &amp; Co · support@example.com" in html
    assert "{{agent.phone}} {{ whatever }} {% if x %}" in html


def test_a_variable_can_never_make_a_dangerous_link():
    html = fill('<a href="{{agent.name}}">me</a>', {"agent.name": "javascript:alert(1)"})
    assert "javascript" not in html and "href" not in html
    html = fill('<a href="mailto:{{agent.email}}">me</a>', {"agent.email": 'a"b@example.com'})
    assert 'href="mailto:a&quot;b@example.com"' in html


def test_the_text_version_has_lines_list_items_and_links_with_their_address():
    html = sanitise(
        "<p>Ann Agent<br><b>Support</b> &amp; Co</p>"
        '<ul><li><a href="https://example.com/help">Help centre</a></li>'
        '<li><a href="https://example.com">https://example.com</a></li>'
        '<li><a href="mailto:ann@example.com">ann@example.com</a></li></ul>'
        "<div>Tel.&nbsp;123</div>"
    )
    assert to_text(html) == (
        "Ann Agent\nSupport & Co\n- Help centre <https://example.com/help>\n"
        "- https://example.com\n- ann@example.com\nTel.\xa0123"
    )


def test_a_reply_carries_the_agents_signature_above_the_inboxs():
    inbox = SimpleNamespace(**{**vars(INBOX), "signature": "<i>The {{inbox.name}} team</i>"})
    html, text = render(inbox, agent(signature="<b>{{agent.name}}</b>"))
    assert html == "<div><b>Ann Agent</b></div><div><i>The Support team</i></div>"
    assert text == "Ann Agent\nThe Support team"


def test_an_automations_reply_gets_the_inbox_signature_with_agent_variables_empty():
    inbox = SimpleNamespace(**{**vars(INBOX), "signature": "[{{agent.name}}] {{inbox.name}}"})
    assert render(inbox, None) == ("<div>[] Support</div>", "[] Support")
    assert render(INBOX, None) == ("", "")
    assert render(INBOX, agent()) == ("", "")


def test_the_html_part_is_the_text_as_paragraphs_then_the_signature_block():
    document = html_with_signature("Hello Carla,\n\nFixed.", "<div><b>Ann</b></div>")
    assert document == (
        '<!doctype html><html><body><div dir="auto"><p>Hello Carla,</p><p>Fixed.</p></div>'
        '<div class="signature">-- <br><div><b>Ann</b></div></div></body></html>'
    )
    assert html_with_signature("Hi <you>", "") == text_to_html("Hi <you>")
