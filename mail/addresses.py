"""Address parsing, header decoding and normalisation for routing: pure functions over headers.

Header values are read raw (as the bytes arrived, folded, RFC 2047 words still encoded) and
decoded here, so a malformed header degrades to replacement characters instead of raising.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata
from email.message import Message
from email.utils import getaddresses

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


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Bytes in a declared charset; unknown charsets read as UTF-8, bad bytes as U+FFFD."""
    label = (charset or "").strip().strip("\"'").lower()
    codec = _CHARSET_ALIASES.get(label, label)
    try:
        if codecs.lookup(codec).name in _NOT_MAIL_CODECS:
            codec = "utf-8"
        text = data.decode(codec, "replace")
    except Exception:  # noqa: BLE001 - unknown or broken codec: the bytes still get read
        text = data.decode("utf-8", "replace")
    return clean_text(text)


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
    """Every raw value of a header, unfolded and with undecodable bytes read as UTF-8."""
    wanted = name.lower()
    values = []
    try:
        for key, value in message.raw_items():
            if str(key).lower() == wanted:
                values.append(clean_text(re.sub(r"\r?\n(?=[ \t])", "", str(value))).strip())
    except Exception:  # noqa: BLE001 - a header block the parser left unreadable is skipped
        pass
    return values


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
