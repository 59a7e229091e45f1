"""Separate the new part of a reply from the quoted history, in plain text and in HTML.

Nothing is thrown away: the quoted part is the input from the cut point on, byte for byte, so
the UI can collapse it and still show it on request.
"""

from __future__ import annotations

import re
from html import unescape

from mail.sanitize import SourceParser

# "On <date>, <name> <addr> wrote:" and its localisations; a digit (the date) is required.
_ATTRIBUTION = re.compile(
    r"(?:On\s.{1,300}\swrote"  # English (Gmail, Apple, Thunderbird)
    r"|Le\s.{1,300}\sa\s+[ée]crit"  # French
    r"|Am\s.{1,300}\sschrieb(?:\s.{0,200})?"  # German: "Am … um … schrieb Name <addr>:"
    r"|El\s.{1,300}\sescribi[óo]"  # Spanish
    r"|Op\s.{1,300}\sschreef(?:\s.{0,200})?"  # Dutch: "Op … om … schreef Name <addr>:"
    r"|Il\s.{1,300}\sha\s+scritto"  # Italian
    r"|Em\s.{1,300}\sescreveu"  # Portuguese
    r"|Den\s.{1,300}\sskrev(?:\s.{0,200})?"  # Swedish, Danish, Norwegian
    r")\s*:\s*",
    re.S,
)
# "Jane Doe <jane@example.com> wrote:" without a date (some webmails).
_ADDRESS_WROTE = re.compile(
    r"[^<>:;!?\n]{0,80}<[^<>\s@]+@[^<>\s]+>\s*(?:wrote|a\s+[ée]crit|schrieb|escribi[óo]|schreef)"
    r"\s*:\s*",
)
_ORIGINAL_MESSAGE = re.compile(
    r"\s*-{3,}\s*(?:Original Message|Ursprüngliche Nachricht|Originalnachricht|"
    r"Message d'origine|Mensaje original|Oorspronkelijk bericht|Messaggio originale|"
    r"Mensagem original|Originalmeddelande)\s*-{3,}\s*",
    re.I,
)
_UNDERSCORES = re.compile(r"\s*_{10,}\s*")
_FROM = re.compile(r"\s*\*?(?:From|De|Von|Van|Da|Från|Fra|Od)\s?:\*?\s*\S", re.I)
_SENT = re.compile(
    r"\s*\*?(?:Sent|Date|Envoyé|Gesendet|Datum|Enviado|Fecha|Verzonden|Inviato|Data|Skickat|"
    r"Sendt)\s?:",
    re.I,
)
_TO_OR_SUBJECT = re.compile(
    r"\s*\*?(?:To|Cc|Subject|À|A|An|Aan|Para|Objet|Betreff|Asunto|Onderwerp|Oggetto|Assunto|"
    r"Till|Ämne|Til|Emne)\s?:",
    re.I,
)
# A header block right under one of these is a forwarded message, which is content, not history.
_FORWARD = re.compile(
    r"\s*(?:-{2,}\s*(?:Forwarded message|Weitergeleitete Nachricht|Message transféré|"
    r"Mensaje reenviado|Doorgestuurd bericht|Messaggio inoltrato)\s*-{2,}|"
    r"Begin forwarded message:|Début du message réexpédié :?)\s*",
    re.I,
)
_FORWARD_END = re.compile(_FORWARD.pattern + "$", re.I)


def is_attribution(line: str) -> bool:
    """True for an "On <date>, <name> wrote:" line (any supported language), whitespace folded."""
    line = " ".join(line.split())
    if len(line) > 400:
        return False
    if _ATTRIBUTION.fullmatch(line) and any(ch.isdigit() for ch in line):
        return True
    return bool(_ADDRESS_WROTE.fullmatch(line))


def _is_quoted(line: str) -> bool:
    return line.lstrip(" ").startswith(">")


def _previous_nonblank(lines: list[str], start: int) -> int | None:
    for j in range(start, max(-1, start - 3), -1):
        if lines[j].strip():
            return j
    return None


def _attribution_length(lines: list[str], i: int) -> int:
    """How many lines (1–3) the attribution starting at line i spans, 0 when it is none."""
    parts: list[str] = []
    for j in range(i, min(len(lines), i + 3)):
        if not lines[j].strip() or (j > i and _is_quoted(lines[j])):
            break
        parts.append(lines[j])
        if is_attribution(" ".join(parts)):
            return len(parts)
    return 0


def _is_header_block(lines: list[str], i: int) -> bool:
    """Outlook's "From: / Sent: / To: / Subject:" block starting at line i, not a forward."""
    if not _FROM.match(lines[i]):
        return False
    following = lines[i + 1 : i + 7]
    if not any(_SENT.match(line) for line in following[:3]):
        return False
    if not any(_TO_OR_SUBJECT.match(line) for line in following):
        return False
    previous = _previous_nonblank(lines, i - 1)
    return previous is None or not _FORWARD.fullmatch(lines[previous])


def _is_interleaved(lines: list[str], start: int) -> bool:
    """Quoted lines followed by unquoted text: an inline (bottom or interleaved) reply."""
    seen_quote = False
    for line in lines[start:]:
        if _is_quoted(line):
            seen_quote = True
        elif seen_quote and line.strip():
            return True
    return False


def _marker_line(lines: list[str]) -> int | None:
    """Index of the first line that starts the quoted history, or None."""
    for i, line in enumerate(lines):
        if not line.strip() or _is_quoted(line):
            continue
        if _ORIGINAL_MESSAGE.fullmatch(line):
            return i
        if _UNDERSCORES.fullmatch(line):
            if any(_FROM.match(following) for following in lines[i + 1 : i + 3]):
                return i
            continue
        length = _attribution_length(lines, i)
        if length:
            if not _is_interleaved(lines, i + length):
                return i
            continue
        if _is_header_block(lines, i):
            return i
    return _trailing_quote_line(lines)


def _trailing_quote_line(lines: list[str]) -> int | None:
    """First line of the block of `>` lines (and blank lines) that ends the message."""
    start = None
    for i in range(len(lines) - 1, -1, -1):
        if _is_quoted(lines[i]):
            start = i
        elif lines[i].strip():
            break
    if start is None:
        return None
    above = _previous_nonblank(lines, start - 1)
    if above is not None and _FORWARD.fullmatch(lines[above]):
        return None
    if above is not None and _attribution_length(lines, above):
        return above
    return start


def split_text(text: str) -> tuple[str, str]:
    """(new text, quoted history); a message that is only quotes is all new text."""
    lines = text.splitlines(keepends=True)
    marker = _marker_line([line.rstrip("\r\n") for line in lines])
    if marker is None:
        return text.rstrip(), ""
    cut = sum(len(line) for line in lines[:marker])
    new = text[:cut].rstrip()
    if not new:
        return text.rstrip(), ""
    return new, text[cut:]


_QUOTE_CLASSES = {"gmail_quote", "yahoo_quoted", "moz-cite-prefix", "outlookquote"}
_QUOTE_IDS = {"divrplyfwdmsg", "appendonsend", "mail-editor-reference-message-container"}
_BOUNDARY_TAGS = {"div", "p", "br", "table", "tr", "td", "li", "ul", "ol", "hr", "h1", "h2"}
_INVISIBLE = {"script", "style", "title", "head"}


class _Found(Exception):
    """Stops the parser at the first structural quote marker."""


class _CutFinder(SourceParser):
    """Finds the character offset where the quoted history starts in an HTML body."""

    def __init__(self, source: str) -> None:
        super().__init__(source)
        self.cut: int | None = None
        self.content_before_cut = False
        self.content = False  # visible text or an image seen so far
        self.text = ""  # the last 2,000 characters of visible text
        self.text_total = 0  # how much visible text there was in all
        self.invisible = 0
        self.boundaries: list[tuple[int, int, bool]] = []  # (offset, text_total, content)
        self.hr: tuple[int, bool] | None = None  # an <hr> with nothing visible after it
        self.quote_depth = 0
        self.open_quote: tuple[int, bool] | None = None
        self.trailing: tuple[int, bool] | None = None  # last closed top-level blockquote

    def found(self, at: int, content: bool) -> None:
        self.cut, self.content_before_cut = at, content
        raise _Found

    def attribution_start(self, at: int) -> tuple[int, bool]:
        """Move a cut back over an "On … wrote:" line just above it."""
        for offset, text_total, content in reversed(self.boundaries[-4:]):
            since = self.text_total - text_total
            if 0 < since <= 400 and is_attribution(self.text[-since:]):
                return offset, content
        return at, self.content

    def saw_content(self) -> None:
        self.content = True
        self.hr = None
        if self.quote_depth == 0:
            self.trailing = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        at = self.position()
        values = {name: (value or "") for name, value in attrs}
        classes = set(values.get("class", "").lower().split())
        element_id = values.get("id", "").lower()
        style = "".join(values.get("style", "").lower().split())
        if tag in _INVISIBLE:
            self.invisible += 1
        elif tag == "body":  # a <head> someone forgot to close
            self.invisible = 0
        if classes & _QUOTE_CLASSES or element_id.startswith("olk_src_body_section"):
            self.found(at, self.content)
        if element_id in _QUOTE_IDS or ("border:none" in style and "border-top:solid" in style):
            if self.hr is not None:
                self.found(*self.hr)
            self.found(at, self.content)
        if tag == "blockquote":
            if values.get("type", "").lower() == "cite":
                self.found(*self.attribution_start(at))
            if self.quote_depth == 0:
                self.open_quote = self.attribution_start(at)
            self.quote_depth += 1
        elif tag == "hr":
            self.hr = (at, self.content)
        elif tag == "img":
            self.saw_content()
        if tag in _BOUNDARY_TAGS:
            end = at + len(self.get_starttag_text() or "") if tag == "br" else at
            self.boundaries = [*self.boundaries[-7:], (end, self.text_total, self.content)]

    def handle_endtag(self, tag: str) -> None:
        if tag in _INVISIBLE and self.invisible:
            self.invisible -= 1
        if tag == "blockquote" and self.quote_depth:
            self.quote_depth -= 1
            if self.quote_depth == 0:
                self.trailing = self.open_quote
        if tag in _BOUNDARY_TAGS:
            at = self.source.find(">", self.position()) + 1 or len(self.source)
            self.boundaries = [*self.boundaries[-7:], (at, self.text_total, self.content)]

    def handle_data(self, data: str) -> None:
        if self.invisible:
            return
        if _ORIGINAL_MESSAGE.match(data):
            last = self.boundaries[-1] if self.boundaries else None
            if last and last[1] == self.text_total:  # cut before the element holding the line
                self.found(last[0], last[2])
            self.found(self.position(), self.content)
        if data.strip():
            self.saw_content()
        self.text = (self.text + data)[-2000:]
        self.text_total += len(data)


def split_html(html: str) -> tuple[str, str | None]:
    """(new HTML, quoted HTML or None): raw slices, unclosed tags left for the sanitiser."""
    finder = _CutFinder(html)
    try:
        finder.run()
    except Exception:  # _Found, or markup the parser gave up on: keep what was found so far
        pass
    cut, content = finder.cut, finder.content_before_cut
    if cut is None:
        quote = finder.trailing or (finder.open_quote if finder.quote_depth else None)
        if quote is None:
            return html, None
        cut, content = quote
    new = html[:cut].rstrip()
    if not content or not new or _is_forward(new, html[cut:]):
        return html, None
    return new, html[cut:]


def _is_forward(new: str, quoted: str) -> bool:
    """A forwarded message (Gmail puts it in a gmail_quote too) is content, not history."""
    before, after = (
        " ".join(unescape(re.sub(r"<[^>]*>", " ", x)).split()) for x in (new[-999:], quoted[:3000])
    )
    return bool(_FORWARD.match(after[:200]) or _FORWARD_END.search(before[-200:]))
