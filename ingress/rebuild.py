"""An RFC 5322 message rebuilt from a provider's parsed parts, for providers that post no raw MIME
(Mailjet's Parse API, Brevo's inbound parsing).

What survives: every header the provider passed on, in its order and with its value as given
(Message-ID, In-Reply-To and References above all: conversations continue by them), except
Content-* and MIME-Version, which describe the original MIME tree and are the rebuild's to set.
Fields the provider gave only as separate values (Brevo's MessageId, From {Name, Address}, ...)
fill in a header the header list lacks. The body: text and HTML as multipart/alternative,
inline parts (Content-ID) as multipart/related beside the HTML, attachments in multipart/mixed.
`X-Threadline-Rebuilt: <provider>` on top records that the stored bytes are a rebuild, not
what the sender's server sent; attachments the provider could not hand over are each named in
an `X-Threadline-Missing-Attachment` header and, for the agents reading the thread, in a
`missing-attachments.txt` part. X-Threadline-* headers in the provider's list are dropped: a
sender cannot claim a rebuild or a missing file.

Header values are single lines: a folded value (a line break followed by a space or tab) is
unfolded, and any other CR, LF or NUL becomes a space. Such a value is kept, not refused: it
cannot add a header of its own once it is one line, and refusing it would lose the whole
message at a provider that drops 4xx answers (Brevo does). A field name outside RFC 5322's
printable set is refused (422): no parser produces one from real mail.

The same input gives the same bytes (no random boundaries, no generated Date): a provider's
retry then lands on the content-addressed copy and the (Message-ID, checksum) row already there.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email import policy
from email.header import Header
from email.message import MIMEPart

from ingress import IngressError

REBUILT = "X-Threadline-Rebuilt"
MISSING = "X-Threadline-Missing-Attachment"
NOTE_NAME = "missing-attachments.txt"
# Body parts: RFC lines (78 for folding, base64 in 76-character lines), CRLF.
BODY_POLICY = policy.SMTP
ADDRESS_HEADERS = frozenset(
    ("from", "sender", "reply-to", "to", "cc", "bcc")
    + ("resent-from", "resent-sender", "resent-to", "resent-cc", "resent-bcc")
)
_FIELD_NAME = re.compile(r"^[\x21-\x39\x3b-\x7e]+$")  # RFC 5322 ftext: printable, no colon
_FOLD = re.compile(r"\r?\n(?=[ \t])|\r(?=[ \t])")
_BREAKS = re.compile(r"[\r\n\0]")
_MIME_TYPE = re.compile(r"^([A-Za-z0-9][\w.+-]*)/([A-Za-z0-9][\w.+-]*)$")


@dataclass(frozen=True)
class Attachment:
    """One attachment or inline part, its bytes already decoded."""

    content: bytes
    content_type: str = "application/octet-stream"
    filename: str | None = None
    content_id: str | None = None  # with or without the angle brackets
    inline: bool = False


@dataclass(frozen=True)
class Missing:
    """An attachment the message had but the provider did not hand over, and why."""

    filename: str | None
    content_type: str | None
    size: int | None
    reason: str

    def describe(self) -> str:
        name = f'"{self.filename}"' if self.filename else "(no name)"
        facts = [self.content_type or "unknown type"]
        if self.size is not None:
            facts.append(f"{self.size} bytes")
        return one_line(f"{name} ({', '.join(facts)}): {self.reason}")


def one_line(value: str) -> str:
    """Unfold a folded value; any other line break or NUL becomes a space."""
    return _BREAKS.sub(" ", _FOLD.sub("", value))


def text(value: object, name: str) -> str | None:
    """A JSON string field as text (None when absent or null), else 422.

    JSON allows a lone surrogate escape ("\\ud800"), which is no text: 422, not a 500."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise IngressError(422, f"{name} must be a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise IngressError(422, f"{name} is not text: {exc}") from exc
    return value


def header_values(value: object, name: str) -> list[str]:
    """A header's value(s) as the providers give them: a string, or a list for a repeated one."""
    values = value if isinstance(value, list) else [value]
    out = []
    for item in values:
        checked = text(item, f"the {name!r} header")
        if checked is None:
            raise IngressError(422, f"the {name!r} header must be a string or a list of strings")
        out.append(checked)
    return out


def header_list(headers: object, field: str = "Headers") -> list[tuple[str, str]]:
    """The provider's header object ({name: value or [values]}) as (name, value) pairs in order."""
    if headers is None:
        return []
    if not isinstance(headers, dict):
        raise IngressError(422, f"{field} must be an object of header names and values")
    return [(name, value) for name, raw in headers.items() for value in header_values(raw, name)]


def rebuild(
    provider: str,
    headers: Iterable[tuple[str, str]],
    *,
    defaults: Iterable[tuple[str, str]] = (),
    text_body: str | None = None,
    html_body: str | None = None,
    attachments: Sequence[Attachment] = (),
    missing: Sequence[Missing] = (),
) -> bytes:
    """The message as bytes (CRLF line ends). `defaults` fill in headers `headers` lacks."""
    kept = [(name, one_line(value)) for name, value in headers if _kept(name)]
    present = {name.lower() for name, _ in kept}
    kept += [(n, one_line(v)) for n, v in defaults if _kept(n) and n.lower() not in present]
    head = [(REBUILT, provider)]
    head += [(MISSING, item.describe()) for item in missing]
    body = _body(text_body, html_body, attachments, missing)
    _fix_boundaries(body, _digest(provider, kept, text_body, html_body, attachments, missing))
    kept.append(("MIME-Version", "1.0"))  # the body's own headers follow: its Content-*
    lines = b"".join(_header_line(name, value) for name, value in head + kept)
    return lines + body.as_bytes(policy=BODY_POLICY)


def _kept(name: str) -> bool:
    if not isinstance(name, str) or not _FIELD_NAME.match(name):
        raise IngressError(422, f"{name!r} is not a header field name")
    lower = name.lower()
    return not (
        lower.startswith("content-") or lower == "mime-version" or lower.startswith("x-threadline-")
    )


def _header_line(name: str, value: str) -> bytes:
    """ASCII values as given, unfolded; others as RFC 2047 encoded words, folded. An address
    header's words are encoded one display name at a time (an encoded addr-spec is no address);
    any other's as one text, which reads back exactly (the library's own folding of
    unstructured text drops a space between encoded words)."""
    if value.isascii():
        return f"{name}: {value}\r\n".encode("ascii")
    if name.lower() in ADDRESS_HEADERS:
        try:
            folded = BODY_POLICY.header_factory(name, value).fold(policy=BODY_POLICY)
            return folded.encode("ascii")
        except Exception:  # noqa: BLE001, S110  (odd addresses fail in odd ways: as text then)
            pass
    encoded = Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
    return f"{name}: {encoded}\r\n".encode("ascii")


def _body(
    text_body: str | None,
    html_body: str | None,
    attachments: Sequence[Attachment],
    missing: Sequence[Missing],
) -> MIMEPart:
    # MIMEPart, not EmailMessage: no MIME-Version on every part (the top one is ours).
    body = MIMEPart(policy=BODY_POLICY)
    if text_body is not None:
        body.set_content(text_body, subtype="plain")
        if html_body is not None:
            body.add_alternative(html_body, subtype="html")
    elif html_body is not None:
        body.set_content(html_body, subtype="html")
    else:
        body.set_content("", subtype="plain")
    related = [a for a in attachments if a.inline and a.content_id] if html_body else []
    related_ids = {id(a) for a in related}
    if related:
        html_part = body.get_body(("html",))
        for item in related:
            _attach(html_part.add_related, item, "inline")
    for item in attachments:
        if id(item) not in related_ids:
            _attach(body.add_attachment, item, "inline" if item.inline else "attachment")
    if missing:
        note = "Attachments the provider did not hand over:\n\n"
        note += "".join(f"- {item.describe()}\n" for item in missing)
        body.add_attachment(note, subtype="plain", filename=NOTE_NAME)
    return body


def _attach(add, item: Attachment, disposition: str) -> None:
    maintype, subtype, params = _content_type(item.content_type)
    kwargs: dict = {"disposition": disposition, "params": params}
    if item.filename:
        kwargs["filename"] = one_line(item.filename)
    if item.content_id:
        cid = one_line(item.content_id).strip().strip("<>").replace(" ", "")
        if cid:
            kwargs["cid"] = f"<{cid}>"
    if maintype == "message":
        # RFC 2046: a message/* part is never base64; the message travels as it is.
        kwargs["cte"] = "8bit"
    add(item.content, maintype=maintype, subtype=subtype, **kwargs)


def _content_type(value: str | None) -> tuple[str, str, dict[str, str]]:
    """maintype, subtype and a text part's charset; application/octet-stream if unusable."""
    essence, _, rest = (value or "").partition(";")
    found = _MIME_TYPE.match(essence.strip())
    if found is None or found.group(1).lower() == "multipart":
        return "application", "octet-stream", {}
    maintype, subtype = found.group(1).lower(), found.group(2).lower()
    params = {}
    if maintype == "text":
        charset = re.search(r"charset\s*=\s*\"?([\w.:+-]+)", rest, re.IGNORECASE)
        if charset:
            params["charset"] = charset.group(1)
    return maintype, subtype, params


def _digest(provider, headers, text_body, html_body, attachments, missing) -> str:
    sha = hashlib.sha256(provider.encode())
    for name, value in headers:
        sha.update(b"\0h" + name.encode() + b"\0" + value.encode("utf-8", "surrogatepass"))
    for part in (text_body, html_body):
        sha.update(b"\0b" + (part or "").encode("utf-8", "surrogatepass"))
    for item in attachments:
        sha.update(b"\0a" + repr((item.content_type, item.filename, item.content_id)).encode())
        sha.update(hashlib.sha256(item.content).digest())
    for item in missing:
        sha.update(b"\0m" + item.describe().encode())
    return sha.hexdigest()


def _fix_boundaries(message: MIMEPart, digest: str) -> None:
    """Boundaries derived from the content, not random: the same input, the same bytes.
    The digest covers the content, so a part cannot contain its own boundary by chance."""
    for number, part in enumerate(message.walk()):
        if part.is_multipart():
            part.set_boundary(f"=_threadline_{digest[:40]}_{number}")
