"""Signatures: an inbox's (Inbox.signature) and an agent's own (User.signature), both HTML.

They are kept sanitised (`sanitise` at save time: simple formatting and links, never a
script, a style or an event handler) and sanitised again whenever they are drawn or sent,
so markup that reached the database some other way is never trusted. Variables such as
{{agent.name}} are NOT a template language: a regex puts html-escaped values in their place
in the sanitised HTML, and anything it does not know stays as typed. A reply carries the
agent's signature above the inbox's (`render`); the plain-text part gets their text version.
"""

from __future__ import annotations

import html as htmllib
import re
from html.parser import HTMLParser

import nh3

from extensions import db

MAX_LENGTH = 10_000
_TAGS = {*"p br b strong i em u a span div ul ol li".split()}
# Removed with everything inside; any other unknown tag loses only the tag.
_DROP_WITH_CONTENT = {*"script style title noscript template iframe object svg math".split()}
_VARIABLE = re.compile(r"\{\{\s*([a-z]+\.[a-z]+)\s*\}\}")
_A_TAG = re.compile(r"<[a-zA-Z/!]")
VARIABLES = ("{{agent.name}}", "{{agent.email}}", "{{inbox.name}}", "{{inbox.address}}")


def sanitise(html: str) -> str:
    """Safe signature HTML. Text without a single tag is taken as typed text: its line
    breaks become <br> (what a plain-text signature meant), its & and < are escaped."""
    html = (html or "").replace("\r\n", "\n").strip()
    if html and not _A_TAG.search(html):
        html = html.replace("\n", "<br>\n")
    return nh3.clean(
        html,
        tags=_TAGS,
        clean_content_tags=_DROP_WITH_CONTENT,
        attributes={"a": {"href"}},
        url_schemes={"http", "https", "mailto"},
        attribute_filter=_absolute_links,
        link_rel="noopener noreferrer",
        strip_comments=True,
    ).strip()


def _absolute_links(tag: str, attribute: str, value: str) -> str | None:
    """Links go to the web or to an address; one that is a variable alone is checked again
    once filled in (`fill`)."""
    if attribute != "href":
        return value
    start = re.sub(r"[\x00-\x20]+", "", value).lower()
    return value if start.startswith(("http:", "https:", "mailto:", "{{")) else None


def fill(html: str, values: dict[str, str]) -> str:
    """The variables of sanitised HTML replaced by their values, html-escaped; unknown ones
    stay as they were typed. Sanitised again: a value must never make a link or a tag."""

    def value(match: re.Match) -> str:
        name = match.group(1)
        return htmllib.escape(values[name]) if name in values else match.group(0)

    return sanitise(_VARIABLE.sub(value, sanitise(html)))


def variables(inbox, agent, address: str | None = None) -> dict[str, str]:
    """The values of the variables; no agent (an automation's reply) leaves agent.* empty."""
    return {
        "agent.name": (agent.name or "") if agent is not None else "",
        "agent.email": (agent.email or "") if agent is not None else "",
        "inbox.name": (inbox.name or "") if inbox is not None else "",
        "inbox.address": address or (inbox.support_address if inbox is not None else "") or "",
    }


def render(inbox, agent, address: str | None = None) -> tuple[str, str]:
    """What a reply from `agent` (None for an automation) in `inbox` is signed with, as
    (html, text): the agent's signature, then the inbox's; ("", "") when neither has one."""
    values = variables(inbox, agent, address)
    sources = [agent.signature if agent is not None else "", inbox.signature]
    parts = [fill(source, values) for source in sources if (source or "").strip()]
    parts = [part for part in parts if part]
    if not parts:
        return "", ""
    html = "".join(f"<div>{part}</div>" for part in parts)
    text = "\n".join(filter(None, (to_text(part) for part in parts)))
    return html, text


def save_agent_signature(user, html: str) -> None:
    """The agent's own signature, sanitised (the profile page)."""
    user.signature = sanitise(html)
    db.session.commit()


class _TextRenderer(HTMLParser):
    """A signature's text: br, p, div and li start lines (li with "- "), a link whose text
    is not its address reads "text <href>", entities are unescaped."""

    _LINES = {"p", "div", "ul", "ol", "li"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[tuple[int, str]] = []  # where each open link's text starts, its href

    def _line(self) -> None:
        """A block starts or ends: a new line, unless one has just begun."""
        if self.parts and not "".join(self.parts).rstrip(" ").endswith("\n"):
            self.parts.append("\n")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag in self._LINES:
            self._line()
        if tag == "li":
            self.parts.append("- ")
        elif tag == "a":
            self.links.append((len(self.parts), dict(attrs).get("href") or ""))

    def handle_endtag(self, tag: str) -> None:
        if tag in self._LINES:
            self._line()
        elif tag == "a" and self.links:
            start, href = self.links.pop()
            label = " ".join("".join(self.parts[start:]).split())
            bare = href.removeprefix("mailto:")
            if href and label not in (href, bare):
                self.parts.append(f" <{bare}>" if label else bare)

    def handle_data(self, data: str) -> None:
        self.parts.append(re.sub(r"[ \t\r\n\f]+", " ", data))  # a typed &nbsp; stays


def to_text(html: str) -> str:
    """The plain-text version of (sanitised) signature HTML."""
    renderer = _TextRenderer()
    renderer.feed(html)
    renderer.close()
    lines = [line.strip() for line in "".join(renderer.parts).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")
