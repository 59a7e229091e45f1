"""Form and JSON bodies read byte-exactly: raw MIME in a form field keeps its 8-bit bytes.

Werkzeug decodes form fields as UTF-8 with replacement characters, which would corrupt an
ISO-8859-2 body; here each field's value is the exact bytes that were posted.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from urllib.parse import parse_qsl

from flask import Request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from ingress import IngressError

CHUNK = 64 * 1024
MAX_PARTS = 1000


def raw_form(request: Request) -> MultiDict[str, bytes]:
    """Fields of a multipart or urlencoded body as bytes, files included (by field name)."""
    mimetype = request.mimetype
    if mimetype == "multipart/form-data":
        boundary = request.mimetype_params.get("boundary", "").encode("latin-1")
        if not boundary:
            raise IngressError(422, "multipart body without a boundary")
        return _multipart(request, boundary)
    if mimetype == "application/x-www-form-urlencoded":
        body = request.stream.read().decode("latin-1")
        # latin-1 maps every percent-decoded byte to one character and back, losslessly.
        pairs = parse_qsl(body, keep_blank_values=True, encoding="latin-1")
        return MultiDict([(k.encode("latin-1").decode(), v.encode("latin-1")) for k, v in pairs])
    return MultiDict()


def _multipart(request: Request, boundary: bytes) -> MultiDict[str, bytes]:
    decoder = MultipartDecoder(boundary, max_parts=MAX_PARTS)
    fields: list[tuple[str, bytes]] = []
    name, chunks = None, []
    stream = request.stream
    while True:
        data = stream.read(CHUNK)
        decoder.receive_data(data or None)
        event = decoder.next_event()
        while not isinstance(event, NeedData | Epilogue):
            if isinstance(event, Field | File):
                name, chunks = event.name, []
            elif isinstance(event, Data):
                chunks.append(event.data)
                if not event.more_data:
                    fields.append((name or "", b"".join(chunks)))
            event = decoder.next_event()
        if isinstance(event, Epilogue) or not data:
            break
    return MultiDict(fields)


def json_body(request: Request) -> object:
    try:
        return parse_json(request.stream.read())
    except RequestEntityTooLarge:
        raise


def parse_json(body: bytes) -> object:
    """A body already read (a signed one is read to check its signature first)."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise IngressError(422, f"the body is not valid JSON: {exc}") from exc


def json_object(body: bytes) -> dict:
    payload = parse_json(body)
    if not isinstance(payload, dict):
        raise IngressError(422, "the JSON body must be an object")
    return payload


def require_json(request: Request) -> None:
    if request.mimetype != "application/json":
        shown = request.mimetype or "none"
        raise IngressError(415, f"Content-Type must be application/json, not {shown}")


_SPACE = re.compile(r"\s+")


def decode_raw(value: str, is_base64: bool, name: str) -> bytes:
    """A raw message a JSON payload carries as text or base64 (whitespace ignored), never
    blank; 422 naming `name` otherwise."""
    try:
        if is_base64:
            raw = base64.b64decode(_SPACE.sub("", value).encode("ascii"), validate=True)
        else:
            raw = value.encode("utf-8")
    except (UnicodeEncodeError, binascii.Error, ValueError) as exc:
        kind = "base64" if is_base64 else "text"
        raise IngressError(422, f"{name} is not valid {kind}") from exc
    if not raw.strip():
        raise IngressError(422, f"{name} is blank")
    return raw


def single_bytes(form: MultiDict[str, bytes], name: str, *, required: bool = True) -> bytes | None:
    """Exactly one value for `name`, else 422 (absent only allowed when not required)."""
    values = form.getlist(name)
    if not values:
        if required:
            raise IngressError(422, f"the {name!r} field is missing")
        return None
    if len(values) > 1:
        raise IngressError(422, f"the {name!r} field must be given once, not {len(values)} times")
    return values[0]


def as_text(value: bytes, name: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IngressError(422, f"the {name!r} field is not UTF-8 text") from exc
