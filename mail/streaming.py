"""Large MIME bodies left in the raw bytes: cut out before the standard library parses, and
decoded from the raw in blocks when they are stored.

The standard library's parser turns a whole message into text lines and joins each body
into one string, and `get_payload(decode=True)` makes one more copy: for a 35 MB message
with a 25 MiB attachment that is ~300 MiB at the peak. `plan_cuts` walks the raw bytes with
the parser's own rules (`email.feedparser` of Python 3.11: lines end at CR, LF or CRLF; a
line that starts a part of any enclosing multipart ends a body; one line ending before it
belongs to the boundary) and finds the leaf bodies of at least `STREAM_FROM_BYTES`. The
parser then reads a skeleton of the message in which each such body is a short marker, so
every header, structure and defect is still the standard library's; `StreamedBody` decodes
the real body from the raw in blocks, to the same bytes `get_payload(decode=True)` returns.

Anything this walk does not follow exactly (a boundary repeated, a multipart/digest, an
RFC 2231 boundary outside ASCII, a close boundary before the first part, uuencode or base64
the standard library would not decode cleanly) leaves that body, or the whole message, to
the plain parse.
"""

from __future__ import annotations

import binascii
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import BytesHeaderParser

# Bodies at least this long (in the raw, encoded) are cut out; tests lower it.
STREAM_FROM_BYTES = 1024 * 1024
BLOCK = 1024 * 1024  # raw bytes decoded at a time
_EOL = re.compile(rb"\r\n|\r|\n")
# email.feedparser.headerRE, on bytes (non-ASCII bytes are outside its classes either way).
_HEADER_LINE = re.compile(rb"From |[\x21-\x39\x3b-\x7e]*:|[\t ]")
_TAIL = re.compile(rb"(--)?[ \t]*(\r\n|\r|\n|\Z)")
_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_NOT_B64 = bytes(sorted(set(range(256)) - set(_B64_ALPHABET) - {ord("=")}))
_NOT_B64_OR_PAD = _NOT_B64 + b"="
_UU = ("x-uuencode", "uuencode", "uue", "x-uue")


class _Unfollowed(Exception):
    """The structure is one this walk does not mirror exactly: parse the whole raw."""


@dataclass
class Cut:
    start: int  # the body the parser would hold as the part's payload: raw[start:end]
    end: int


class _Boundaries:
    """Finds the next line that starts with `--boundary` (then `--`, blanks, a line end),
    remembering each boundary's last answer: the walk asks again from the same or a later
    place, so most questions need no new search."""

    def __init__(self, data: bytes):
        self.data = data
        self._last: dict[bytes, tuple[int, tuple[int, int, bool] | None]] = {}

    def find(self, separator: bytes, pos: int) -> tuple[int, int, bool] | None:
        """(line start, line end, is a close boundary) of the first match at or after pos."""
        asked, answer = self._last.get(separator, (len(self.data) + 1, None))
        if asked <= pos and (answer is None or answer[0] >= pos):
            return answer
        data, at, answer = self.data, pos, None
        while (at := data.find(separator, at)) != -1:
            if at == 0 or data[at - 1] in b"\r\n":
                tail = _TAIL.match(data, at + len(separator))
                if tail:
                    answer = (at, tail.end(), tail.group(1) is not None)
                    break
            at += 1
        self._last[separator] = (pos, answer)
        return answer

    def first(self, separators: list[bytes], pos: int):
        """(index into separators, match) of the earliest line matching any; on a line that
        matches several the outermost wins, as the parser checks enclosing boundaries first."""
        best = None
        for index, separator in enumerate(separators):
            found = self.find(separator, pos)
            if found is not None and (best is None or found[0] < best[1][0]):
                best = (index, found)
        return best


def plan_cuts(data: bytes, threshold: int) -> list[Cut]:
    """The leaf bodies of at least threshold bytes, in order; [] when there are none or the
    structure is one to leave to the plain parse."""
    if len(data) < threshold:
        return []
    cuts: list[Cut] = []
    try:
        _entity(data, 0, [], _Boundaries(data), threshold, cuts)
    except _Unfollowed:
        return []
    return cuts


def _entity(data, pos, stack, boundaries, threshold, cuts) -> int:
    """Walk one entity starting at pos; return where it ends (the start of the line that
    ends it for an enclosing multipart, or the end of the data)."""
    ahead = boundaries.first(stack, pos) if stack else None
    stop = ahead[1][0] if ahead else len(data)
    headers_end = body = pos
    while body < stop:
        eol = _EOL.search(data, body, stop)
        line_end = eol.end() if eol else stop
        if eol and eol.start() == body:  # the empty line: headers done, it is discarded
            body = line_end
            break
        if not _HEADER_LINE.match(data, body):
            break  # the parser's MissingHeaderBodySeparatorDefect: this line starts the body
        body = headers_end = line_end
    if body >= stop:
        return stop  # headers only
    header = BytesHeaderParser(policy=policy.default).parsebytes(data[pos:headers_end])
    maintype = header.get_content_maintype()
    if maintype == "multipart":
        return _multipart(data, body, stack, boundaries, threshold, cuts, header)
    if maintype != "message":
        end = stop
        if stack and end > body:  # in a multipart its last line ending belongs to the boundary
            if end - 2 >= body and data[end - 2 : end] == b"\r\n":
                end -= 2
            elif data[end - 1] in b"\r\n":
                end -= 1
        if end - body >= threshold:
            cuts.append(Cut(body, end))
    return stop


def _multipart(data, pos, stack, boundaries, threshold, cuts, header: Message) -> int:
    boundary = header.get_boundary()
    if boundary is None or header.get_content_subtype() == "digest":
        raise _Unfollowed  # read as text, or parts with another default type
    try:
        own = b"--" + boundary.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        raise _Unfollowed from None  # an RFC 2231 boundary the parser never matches
    separators = [*stack, own]  # enclosing first: they win on a line both match
    found = boundaries.first(separators, pos)
    if found is None:
        return len(data)
    index, (line, line_end, close) = found
    if index < len(stack):
        return line  # no part before the enclosing multipart goes on
    if close:
        raise _Unfollowed  # a close boundary before any part
    while True:
        after = boundaries.first(separators, line_end)
        if after is not None and after[1][0] == line_end:
            raise _Unfollowed  # boundary lines repeated: the parser skips them
        end = _entity(data, line_end, separators, boundaries, threshold, cuts)
        found = boundaries.first(separators, end)
        if found is None:
            return len(data)
        index, (line, line_end, close) = found
        if line != end:
            raise _Unfollowed  # cannot happen: the part ends at a boundary line
        if index < len(stack):
            return line
        if close:  # the epilogue runs to the next enclosing boundary
            later = boundaries.first(stack, line_end) if stack else None
            return later[1][0] if later else len(data)


def skeleton(data: bytes, cuts: list[Cut]) -> tuple[bytes, list[str]]:
    """The raw with each cut body replaced by a marker; the markers, in the cuts' order."""
    nonce = uuid.uuid4().hex
    markers = [f"threadline-streamed-body-{n}-{nonce}" for n in range(len(cuts))]
    pieces, at = [], 0
    for cut, marker in zip(cuts, markers, strict=True):
        pieces += [data[at : cut.start], marker.encode()]
        at = cut.end
    pieces.append(data[at:])
    return b"".join(pieces), markers


def attach(message: Message, data: bytes, cuts: list[Cut], markers: list[str]):
    """{id(part): StreamedBody} for the parsed skeleton, or None unless every marker is the
    whole payload of exactly one leaf (then the walk and the parser disagreed)."""
    by_marker = dict(zip(markers, cuts, strict=True))
    found: dict[int, StreamedBody] = {}
    for part in message.walk():
        payload = part._payload  # noqa: SLF001 - get_payload() may decode or convert
        if isinstance(payload, str) and payload in by_marker:
            cut = by_marker.pop(payload)
            found[id(part)] = StreamedBody(part, data, cut.start, cut.end)
    return found if not by_marker else None


class StreamedBody:
    """One cut body: its decoded size and bytes, read from the raw in blocks."""

    def __init__(self, part: Message, data: bytes, start: int, end: int):
        self.part, self.data, self.start, self.end = part, data, start, end

    def restore(self) -> None:
        """Give the part its real payload, as the parser would have: for bodies read as text
        (message text, bounce reports) and encodings that are not streamed."""
        raw = self.data[self.start : self.end]
        self.part.set_payload(raw.decode("ascii", "surrogateescape"))

    def _encoding(self) -> str:
        return str(self.part.get("content-transfer-encoding", "")).lower()

    def _blocks(self, ends_at_line: bool = False) -> Iterator[bytes]:
        at, view = self.start, memoryview(self.data)
        while at < self.end:
            stop = min(at + BLOCK, self.end)
            if ends_at_line and stop < self.end:
                newline = self.data.rfind(b"\n", at, stop)
                stop = newline + 1 if newline != -1 else stop
                if newline == -1:  # a line longer than a block: run to its end
                    newline = self.data.find(b"\n", stop, self.end)
                    stop = newline + 1 if newline != -1 else self.end
            yield view[at:stop].tobytes()
            at = stop

    def decoded_size(self) -> int | None:
        """What len(get_payload(decode=True)) would be; None when the standard library's
        decoding is not mirrored here (uuencode, base64 it would not decode cleanly)."""
        encoding = self._encoding()
        if encoding in _UU:
            return None
        if encoding == "quoted-printable":
            return sum(len(binascii.a2b_qp(block)) for block in self._blocks(True))
        if encoding != "base64":
            return self.end - self.start
        return self._base64_size()

    def _base64_size(self) -> int | None:
        # get_payload decodes the alphabet characters (strictly, or ignoring the others);
        # padding only at the end and a length that is not 1 more than a multiple of 4 give
        # the same bytes as decoding the data characters with the padding they need.
        letters, padding = 0, 0
        for block in self._blocks():
            kept = block.translate(None, _NOT_B64)
            pads = kept.count(b"=")
            if padding and len(kept) > pads:
                return None  # data after padding: the standard library stops there
            if pads:
                first = kept.index(b"=")
                if len(kept) - first != pads:
                    return None
            letters += len(kept) - pads
            padding += pads
        if letters % 4 == 1:
            return None  # undecodable: the standard library returns the encoded text
        return letters // 4 * 3 + {0: 0, 2: 1, 3: 2}[letters % 4]

    def chunks(self) -> Iterator[bytes]:
        """The decoded bytes, block by block (decoded_size first: it checks the encoding)."""
        encoding = self._encoding()
        if encoding == "quoted-printable":
            for block in self._blocks(True):
                yield binascii.a2b_qp(block)
        elif encoding == "base64":
            carry = b""
            for block in self._blocks():
                letters = carry + block.translate(None, _NOT_B64_OR_PAD)
                whole = len(letters) // 4 * 4
                carry = letters[whole:]
                if whole:
                    yield binascii.a2b_base64(letters[:whole])
            if carry:
                yield binascii.a2b_base64(carry + b"=" * (-len(carry) % 4))
        else:
            yield from self._blocks()
