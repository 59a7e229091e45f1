"""Make an email's HTML safe to show an agent (nh3); render HTML as readable plain text.

Images: `cid:` sources become the app's attachment URLs, remote images are deferred
(`data-remote-src`, no `src`) until the agent asks, tracking pixels are dropped. nh3 cannot
rename attributes, so the HTML is cleaned, its <img> tags rewritten, and cleaned again.
"""

from __future__ import annotations

import html as htmllib
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import unquote

import nh3

_TAGS = {
    *"p br div span a b i u em strong ul ol li blockquote pre code hr img font center".split(),
    *"table thead tbody tfoot tr td th caption h1 h2 h3 h4 h5 h6 sup sub small s strike".split(),
}
# Removed with everything inside; other unknown tags (form, button, input …) lose only the tag.
_DROP_WITH_CONTENT = {
    *"script style title noscript template iframe frame frameset object embed applet".split(),
    *"svg math select textarea button".split(),
}
_CELL = {"colspan", "rowspan", "align", "valign", "width", "height", "bgcolor"}
_ATTRIBUTES = {
    "*": {"style", "dir", "lang", "title"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    **dict.fromkeys(("td", "th"), _CELL),
    "tr": {"align", "valign", "bgcolor"},
    "table": {"width", "border", "cellpadding", "cellspacing", "align", "bgcolor"},
    "font": {"color", "face", "size"},
    **dict.fromkeys(("p", "div"), {"align"}),
    "ol": {"start", "type"},
}
_SIDES = ("", "-top", "-right", "-bottom", "-left")
_STYLE_PROPERTIES = {
    *"color background-color text-align text-decoration text-transform text-indent".split(),
    *"font font-family font-size font-style font-weight font-variant letter-spacing".split(),
    *"width height max-width min-width max-height min-height line-height".split(),
    *"white-space vertical-align display border-collapse border-spacing border-radius".split(),
    *(f"{box}{side}" for box in ("margin", "padding") for side in _SIDES),
    *(f"border{side}{part}" for side in _SIDES for part in ("", "-color", "-style", "-width")),
}
_URL_SCHEMES = {"http", "https", "mailto", "cid", "data"}
_LINK_SCHEMES = ("http:", "https:", "mailto:")
_DATA_IMAGE = re.compile(r"data:image/(?:png|jpe?g|gif|webp);base64,[a-z0-9+/=\s]*", re.I)
# Functions a colour or length may use; anything else in parentheses (url, image-set,
# expression …) and CSS escapes or comments, which can spell them, drop the declaration.
_SAFE_FUNCTIONS = re.compile(r"\b(?:rgba?|hsla?|calc)\([^()]*\)", re.I)
_UNSAFE_CSS = re.compile(r"[()\\<>@]|/\*|javascript|expression", re.I)
_CONTROL = re.compile(r"[\x00-\x20\x7f]+")


@dataclass
class SanitizedHtml:
    html: str
    remote_images: int  # remote images deferred or dropped (tracking pixels), for the banner


def _safe_style(value: str) -> str | None:
    kept = [
        d.strip() for d in value.split(";") if not _UNSAFE_CSS.search(_SAFE_FUNCTIONS.sub("", d))
    ]
    return "; ".join(filter(None, kept)) or None


def _cid_key(src: str) -> str:
    return unquote(src[4:]).strip().strip("<>").strip().lower()


def _compact(url: str) -> str:
    """The URL as a browser reads its scheme: control characters and whitespace ignored."""
    return _CONTROL.sub("", url).lower()


def _clean(html: str, attribute_filter, *, img_extra: set[str] = frozenset()) -> str:
    return nh3.clean(
        html,
        tags=_TAGS,
        clean_content_tags=_DROP_WITH_CONTENT,
        attributes={**_ATTRIBUTES, "img": _ATTRIBUTES["img"] | img_extra},
        attribute_filter=attribute_filter,
        url_schemes=_URL_SCHEMES,
        filter_style_properties=_STYLE_PROPERTIES,
        link_rel="noopener noreferrer nofollow",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        allowed_classes={"img": {"remote-image"}},
    )


class SourceParser(HTMLParser):
    """An HTMLParser that knows where in the source each event is, and reads it in linear time."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.source = source
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", source)]

    def position(self) -> int:
        line, column = self.getpos()
        return self.line_starts[line - 1] + column

    def run(self) -> None:
        # Text after the last ">" is passed on as text: html.parser without the 2025 security
        # fixes takes quadratic time on a long run of "<" that no ">" follows.
        end = self.source.rfind(">") + 1
        self.feed(self.source[:end])
        self.close()
        if end < len(self.source) and not self.cdata_elem:
            self.handle_data(htmllib.unescape(self.source[end:]))


class _ImageRewriter(SourceParser):
    """Rewrites the <img> tags of nh3 output (well-formed, so offsets are exact)."""

    def __init__(self, source: str, cid_urls: dict[str, str]) -> None:
        super().__init__(source)
        self.cid_urls = cid_urls
        self.out, self.done, self.remote = [], 0, 0  # output so far, up to source[done]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "img":
            return
        start = self.position()
        self.out += [self.source[self.done : start], self._rewrite(dict(attrs))]
        self.done = start + len(self.get_starttag_text() or "")

    def _rewrite(self, attrs: dict[str, str | None]) -> str:
        attrs.pop("class", None)
        src = (attrs.pop("src", None) or "").strip()
        if _compact(src).startswith(("http:", "https:")):
            self.remote += 1
            if _is_pixel(attrs):
                return ""
            attrs.update({"data-remote-src": src, "class": "remote-image"})
        elif _compact(src).startswith("cid:") and _cid_key(src) in self.cid_urls:
            attrs["src"] = self.cid_urls[_cid_key(src)]
        elif _DATA_IMAGE.fullmatch(src):
            attrs["src"] = src
        else:  # unknown cid, other data:, relative or missing source: nothing to show
            return ""
        return "<img" + "".join(f' {k}="{htmllib.escape(v or "")}"' for k, v in attrs.items()) + ">"


_PIXEL = re.compile(r"(?:^|;)(?:width|height):[01](?:\.0*)?(?:px)?(?:!important)?(?:;|$)")


def _is_pixel(attrs: dict[str, str | None]) -> bool:
    """1×1 (or 0) sized or hidden: an image that only exists to report that the mail was read."""
    sizes = f"width:{attrs.get('width')};height:{attrs.get('height')};{attrs.get('style')}"
    sizes = "".join(sizes.lower().split())
    return "display:none" in sizes or "visibility:hidden" in sizes or bool(_PIXEL.search(sizes))


def sanitize_html(html: str, cid_urls: dict[str, str] | None = None) -> SanitizedHtml:
    """Safe HTML for the agent view, with images handled as the module docstring says."""
    cids = {key.strip().strip("<>").strip().lower(): url for key, url in (cid_urls or {}).items()}
    image_urls = set(cids.values())

    def first_pass(tag: str, attr: str, value: str) -> str | None:
        if attr == "style":
            return _safe_style(value)
        if tag == "a" and attr == "href":
            if _compact(value).startswith("cid:"):
                return cids.get(_cid_key(value.strip()))
            return value if _compact(value).startswith(_LINK_SCHEMES) else None
        return value

    def final_pass(tag: str, attr: str, value: str) -> str | None:
        if tag == "img" and attr == "src":
            return value if value in image_urls or _DATA_IMAGE.fullmatch(value) else None
        if tag == "img" and attr == "data-remote-src":
            return value if _compact(value).startswith(("http:", "https:")) else None
        if tag == "a" and attr == "href" and value in image_urls:
            return value  # a cid: link rewritten to its attachment URL
        return first_pass(tag, attr, value)

    cleaned = _clean(html, first_pass)
    rewriter = _ImageRewriter(cleaned, cids)
    try:
        rewriter.run()
    except Exception:  # never expected on nh3 output; the final pass drops any remote src left
        pass
    rewritten = "".join(rewriter.out) + cleaned[rewriter.done :]
    final = _clean(rewritten, final_pass, img_extra={"data-remote-src"})
    return SanitizedHtml(html=final, remote_images=rewriter.remote)


_BLOCKS = set(
    "p div ul ol li table thead tbody tfoot tr h1 h2 h3 h4 h5 h6 pre hr center address article "
    "aside blockquote caption dd dl dt figure footer form header main nav section".split()
)
_PARAGRAPHS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "pre", "blockquote"}
# Void elements (embed, frame) are left out: with no end tag they would hide the rest.
_HIDDEN = {*"script style head title noscript template iframe object svg math select".split()}


class _TextRenderer(SourceParser):
    """Lines of text: blocks start new lines, blockquotes are prefixed with "> "."""

    def __init__(self, source: str) -> None:
        super().__init__(source)
        self.lines: list[str] = []
        self.words: list[str] = []  # the line being built
        self.space = False  # whitespace seen since the last word
        self.hidden = 0
        self.pre = 0
        self.depth = 0

    def prefix(self) -> str:
        return ">" * self.depth + " " if self.depth else ""

    def newline(self, force: bool = False) -> None:
        if self.words or force:
            line = "".join(self.words)
            self.lines.append(self.prefix() + (line if self.pre else line.strip()))
        self.words, self.space = [], False

    def blank_line(self) -> None:
        self.newline()
        if self.lines and not self.lines[-1].strip("> "):
            self.lines[-1] = self.prefix()
        elif self.lines:
            self.lines.append(self.prefix())

    def add(self, text: str) -> None:
        if self.space and self.words:
            self.words.append(" ")
        self.words.append(text)
        self.space = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden += 1
        elif tag == "body":  # a <head> someone forgot to close
            self.hidden = 0
        if self.hidden:
            return
        if tag in _PARAGRAPHS:
            self.blank_line()
        elif tag in _BLOCKS:
            self.newline()
        if tag == "br":
            self.newline(force=True)
        elif tag == "blockquote":
            self.depth += 1
        elif tag == "pre":
            self.pre += 1
        elif tag == "li":
            self.add("- ")
        elif tag in ("td", "th") and self.words:
            self.space = True
        elif tag == "img" and (alt := dict(attrs).get("alt")):
            self.add(f"[{' '.join(alt.split())}]")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
            return
        if self.hidden:
            return
        if tag in _BLOCKS:
            self.newline()
        if tag == "blockquote" and self.depth:
            self.depth -= 1
        elif tag == "pre" and self.pre:
            self.pre -= 1
        if tag in _PARAGRAPHS:
            self.blank_line()

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        if self.pre:
            for number, line in enumerate(data.replace("\r\n", "\n").split("\n")):
                if number:
                    self.newline(force=True)
                self.words.append(line)
            return
        self.space |= data[:1].isspace()
        if text := " ".join(data.split()):
            self.add(text)
        self.space |= data[-1:].isspace()


def html_to_text(html: str) -> str:
    """Readable plain text for a message that has only HTML."""
    renderer = _TextRenderer(html)
    try:
        renderer.run()
    except Exception:  # malformed markup: keep what was rendered up to that point
        pass
    renderer.newline()
    text = "\n".join(line.rstrip() for line in renderer.lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n")
