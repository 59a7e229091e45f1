"""Address parsing, header decoding and normalisation for routing: pure functions over headers.

Header values are read raw (as the bytes arrived, folded, RFC 2047 words still encoded) and
decoded here, so a malformed header degrades to replacement characters instead of raising,
and 8-bit bytes the parser could not place are recovered rather than lost.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import functools
import re
import unicodedata
from email.message import Message
from email.utils import getaddresses

from charset_normalizer import from_bytes
from email_validator import EmailNotValidError, validate_email

# Every header a recipient can hide in: forwarding rules and MTAs add the last four.
RECIPIENT_HEADERS = (
    "To",
    "Cc",
    "Bcc",
    "X-Original-To",
    "X-Forwarded-To",
    "X-Forwarded-For",
    "Delivered-To",
)
_TOKEN = re.compile(r"^reply\+([0-9a-f]{32,64})$")
_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,75})\?([bBqQ])\?([^?\s]*)\?=")
_ADDR_SPEC = re.compile(r"[^\s<>()\[\],;:\"@]{1,64}@[^\s<>()\[\],;:\"@]{0,252}[^\s<>()\[\],;:\"@.]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Labels mail clients write that Python spells differently or that browsers widen (WHATWG).
_CHARSET_ALIASES = {
    "": "utf-8",
    "us-ascii": "utf-8",
    "ascii": "utf-8",
    "unknown-8bit": "utf-8",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "ks_c_5601-1987": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "shift_jis": "cp932",
    "x-sjis": "cp932",
    "iso-8859-8-i": "iso-8859-8",
    "unicode-1-1-utf-7": "utf-7",
    "x-mac-roman": "mac-roman",
}
# Python codecs that are not mail charsets and must not interpret customer bytes.
_NOT_MAIL_CODECS = {"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined"}
# ASCII that any charset a whole header can be written in reads as itself (UTF-7 and UTF-16 do not).
_ASCII_PROBE = 'Re: a+b@c.example <x>; name="y"'
_CHARSET_PARAM = re.compile(r"""charset\s*=\s*["']?([^"';\s]+)""", re.IGNORECASE)


def clean_text(text: str) -> str:
    """Lone surrogates (bytes the parser could not decode) re-read as UTF-8; NULs replaced."""
    if _SURROGATE.search(text):
        try:
            text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeError:
            text = _SURROGATE.sub("\ufffd", text)
    return text.replace("\x00", "\ufffd")


def fold(text: str) -> str:
    """Control characters turned into spaces and whitespace runs folded to one space."""
    return " ".join("".join(" " if unicodedata.category(c) == "Cc" else c for c in text).split())


def _codec(charset: str | None) -> str | None:
    """The Python codec for a mail charset label; None when unknown or not a mail charset."""
    label = (charset or "").strip().strip("\"'").lower()
    try:
        name = codecs.lookup(_CHARSET_ALIASES.get(label, label)).name
    except Exception:  # noqa: BLE001 - LookupError, or a label no codec name can be
        return None
    return None if name in _NOT_MAIL_CODECS else name


@functools.lru_cache(maxsize=128)
def _ascii_compatible(codec: str) -> bool:
    """Whether the codec reads ASCII bytes as ASCII: only such a charset can decode a whole
    header, or be second-guessed by UTF-8 (UTF-16 text is valid UTF-8 by accident)."""
    try:
        return _ASCII_PROBE.encode("ascii").decode(codec) == _ASCII_PROBE
    except Exception:  # noqa: BLE001 - a codec that cannot even read the probe
        return False


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Bytes in a declared charset; unknown charsets read as UTF-8, bad bytes as U+FFFD.

    Bytes that are valid UTF-8 and not plain ASCII are read as UTF-8 whatever legacy charset
    the label names. Clients mislabel UTF-8 (a "gb2312" or "iso-8859-1" default left in a
    template), and decoding without error in the labelled charset proves nothing: single-byte
    charsets accept any byte. The reverse accident, legacy text that happens to be valid
    UTF-8, needs every byte from 0xC2 up followed by exactly the right number of bytes in
    0x80-0xBF, which real text beyond a word or two does not do.
    """
    codec = _codec(charset) or "utf-8"
    if codec != "utf-8" and not data.isascii() and _ascii_compatible(codec):
        try:
            return clean_text(data.decode("utf-8"))
        except UnicodeDecodeError:
            pass  # not UTF-8: the label is believed
    try:
        text = data.decode(codec, "replace")
    except Exception:  # noqa: BLE001 - a broken codec: the bytes still get read
        text = data.decode("utf-8", "replace")
    return clean_text(text)


@functools.lru_cache(maxsize=1024)  # routing and parsing read the same header more than once
def decode_header_bytes(data: bytes, charset: str | None = None) -> str:
    """Header bytes that arrived raw (8-bit, no RFC 2047 word naming their charset).

    RFC 6532 allows only UTF-8 there, so valid UTF-8 wins. Older clients wrote their own
    charset, most likely the one they declare for the body (`charset`), so that comes next.
    Bytes neither reads are damaged UTF-8 when most of their 8-bit bytes still form UTF-8
    characters (a cut-off character beside good ones); only the rest go to charset-normalizer,
    which guesses poorly on a few words and so is the last resort. U+FFFD marks what is left.
    """
    for codec in ("utf-8", _codec(charset)):
        if codec and _ascii_compatible(codec):
            try:
                return clean_text(data.decode(codec))
            except UnicodeDecodeError:
                continue
    if not _mostly_utf8(data):
        best = from_bytes(data).best()
        codec = _codec(best.encoding) if best is not None else None
        if codec and _ascii_compatible(codec):
            return clean_text(str(best))
    return clean_text(data.decode("utf-8", "replace"))


def _mostly_utf8(data: bytes) -> bool:
    """More bytes in well-formed multi-byte UTF-8 characters than bytes UTF-8 cannot read."""
    text = data.decode("utf-8", "replace")
    bad = text.count("\ufffd")
    good = sum(len(c.encode("utf-8")) for c in text if "\x7f" < c != "\ufffd")
    return good > bad


def _word_bytes(encoding: str, encoded: str) -> bytes | None:
    try:
        if encoding in "bB":
            encoded = re.sub(r"[^A-Za-z0-9+/]", "", encoded)
            encoded = encoded[:-1] if len(encoded) % 4 == 1 else encoded
            return base64.b64decode(encoded + "=" * (-len(encoded) % 4))
        return binascii.a2b_qp(encoded.encode("utf-8"), header=True)
    except (ValueError, binascii.Error):
        return None


def decode_words(value: str) -> str:
    """A raw header value unfolded, with its RFC 2047 encoded words decoded.

    Adjacent words in one charset are joined before decoding, so a character split across
    two words (common with UTF-8 and ISO-2022-JP) survives.
    """
    value = clean_text(re.sub(r"\r?\n(?=[ \t])", "", value).replace("\r", "").replace("\n", " "))
    pieces: list[list] = []  # [text, None] or [bytes, charset]
    position = 0
    for match in _ENCODED_WORD.finditer(value):
        between = value[position : match.start()]
        data = _word_bytes(match.group(2), match.group(3))
        position = match.end()
        if data is None:
            pieces.append([between + match.group(0), None])
            continue
        charset = match.group(1).split("*", 1)[0].lower()
        if not (pieces and pieces[-1][1] is not None and not between.strip()):
            pieces.append([between, None])
        if pieces[-1][1] == charset:
            pieces[-1][0] += data
        else:
            pieces.append([bytearray(data), charset])  # extended in place by the next words
    pieces.append([value[position:], None])
    return "".join(p if c is None else decode_bytes(p, c) for p, c in pieces)


def header_values(message: Message, name: str) -> list[str]:
    """Every raw value of a header, unfolded, its 8-bit bytes read by `decode_header_bytes`
    with the charset the message declares for its text as the hint."""
    wanted = name.lower()
    try:
        raw = [str(v) for k, v in message.raw_items() if str(k).lower() == wanted]
    except Exception:  # noqa: BLE001 - a header block the parser left unreadable is skipped
        return []
    raw = [re.sub(r"\r?\n(?=[ \t])", "", value) for value in raw]
    hint = declared_charset(message) if any(_SURROGATE.search(v) for v in raw) else None
    return [_header_text(value, hint).strip() for value in raw]


def _header_text(value: str, charset: str | None) -> str:
    """The parser keeps 8-bit header bytes as lone surrogates (surrogateescape): turned back
    into those bytes and decoded properly; without any, the value is already text."""
    if not _SURROGATE.search(value):
        return clean_text(value)
    try:
        data = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that was never a byte: nothing to recover
        return clean_text(value)
    return decode_header_bytes(data, charset)


def declared_charset(message: Message, limit: int = 100) -> str | None:
    """The first charset other than ASCII or UTF-8 that a text part of the message declares,
    attached messages not entered (they have their own). Read from the raw Content-Type, so
    finding it never decodes a header itself."""
    parts = [message]
    while parts and limit > 0:
        part, limit = parts.pop(), limit - 1
        kind = _raw_value(part, "content-type")
        if part.is_multipart() and not kind.lower().lstrip().startswith("message/"):
            parts.extend(reversed([p for p in part.get_payload() if isinstance(p, Message)]))
            continue
        match = _CHARSET_PARAM.search(kind) if kind.lower().lstrip().startswith("text/") else None
        if match and _codec(match.group(1)) not in ("utf-8", None):
            return match.group(1)
    return None


def _raw_value(part: Message, name: str) -> str:
    try:
        return next((str(v) for k, v in part.raw_items() if str(k).lower() == name), "")
    except Exception:  # noqa: BLE001 - an unreadable header block has no value to offer
        return ""


def _token(values: list[str]) -> str:
    return re.sub(r"\([^()]*\)|\s+", "", values[0].split(";", 1)[0]).lower() if values else ""


def content_type(part: Message) -> str:
    """maintype/subtype in lower case, read straight from the raw header (policy.default's
    structured parse costs more than the rest of parsing); invalid gives the default type.
    Each name is at most 127 characters (RFC 6838), so the type fits its 255-wide column."""
    value = _token(header_values(part, "Content-Type"))
    return value if re.fullmatch(r"[^/]{1,127}/[^/]{1,127}", value) else part.get_default_type()


def content_disposition(part: Message) -> str | None:
    """`attachment`, `inline` (or whatever token was sent), None when absent."""
    return _token(header_values(part, "Content-Disposition")) or None


def parse_addresses(values: list[str]) -> list[tuple[str, str]]:
    """(decoded display name, lower-cased address) pairs; malformed lists fall back to a scan
    for anything shaped like an address, so `To: a@x <<broken` still yields a@x."""
    found: list[tuple[str, str]] = []
    for value in values:
        try:
            pairs = getaddresses([value])
        except Exception:  # noqa: BLE001 - the scan below reads what it can
            pairs = []
        good = [(n, a.strip().lower()) for n, a in pairs if _ADDR_SPEC.fullmatch(a.strip())]
        if len(good) < len([a for _n, a in pairs if a.strip()]) or ("@" in value and not good):
            good = [("", a.lower()) for a in _ADDR_SPEC.findall(value)]
        found.extend((fold(decode_words(n)), a) for n, a in good)
    return found


def addresses_in(message: Message, names: tuple[str, ...]) -> list[str]:
    """Lower-cased bare addresses found in the headers, in order, without duplicates."""
    found: dict[str, None] = {}
    for name in names:
        # X-Forwarded-For may list "a@x b@y" separated by spaces rather than commas.
        values = [v.replace(" ", ",") if "<" not in v else v for v in header_values(message, name)]
        for _display, address in parse_addresses(values):
            found[address] = None
    return list(found)


def recipient_addresses(message: Message) -> list[str]:
    return addresses_in(message, RECIPIENT_HEADERS)


def normalise(address: str) -> str:
    """Comparison form: lower-case, `+tag` removed from the local part."""
    local, _, domain = address.strip().lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}" if local else address.strip().lower()


def reply_token(address: str, inbound_domain: str) -> str | None:
    """The conversation token of reply+<token>@<inbound domain>, else None."""
    if not inbound_domain:
        return None
    local, _, domain = address.lower().rpartition("@")
    match = _TOKEN.match(local)
    return match.group(1) if match and domain == inbound_domain.lower() else None


def message_ids(value: str, limit: int = 100) -> list[str]:
    """Bracketless Message-IDs in a header value: `<...>` tokens, else bare tokens with an @
    (some clients drop the brackets); comments and other junk around them are ignored."""
    ids = re.findall(r"<\s*([^<>\s]+?)\s*>", value)
    if not ids:
        tokens = value.split()
        ids = [t for t in tokens if "@" in t] or (tokens if len(tokens) == 1 else [])
        ids = [t.strip("<>,;\"'()") for t in ids]
    unique = list(dict.fromkeys(i for i in ids if 0 < len(i) <= 900))
    return unique[-limit:]


def is_email_address(text: str) -> bool:
    """An address a person could have: email-validator's syntax rules (no DNS lookup), with
    a dotted, globally usable domain (not localhost, .local, .test, ...)."""
    try:
        validate_email(text, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True
