"""Resend inbound: a Svix-signed `email.received` webhook; the raw MIME is fetched through the API.

What Resend sends: a JSON event `{"type": "email.received", "created_at": ..., "data":
{"email_id", "from", "to", "cc", "bcc", "message_id", "subject", "attachments": [metadata]}}`,
metadata only. The message itself is read with `GET {RESEND_API_URL}/emails/receiving/{email_id}`
(`Authorization: Bearer RESEND_API_KEY`, and a User-Agent, which Resend requires), whose answer
carries `raw.download_url`, a signed URL to the original .eml: fetched without the API key, the
bytes stored exactly. Other event types (email.sent, email.delivered...) are acknowledged, 204.
No recipient line is prepended: `to` is documented only as the message's recipients, which its
own headers already carry, not as the SMTP envelope.

Authentication (Svix): headers `svix-id`, `svix-timestamp` and `svix-signature`, the latter a
space-separated list of `v1,<base64 HMAC-SHA256>` (several while a secret is rotated), signed
over `{id}.{timestamp}.{body}` with the base64-decoded part of the `whsec_...` signing secret;
a timestamp more than 5 minutes off either way is refused (401), so a captured post cannot be
replayed later.

Retries: Resend (Svix) retries every non-2xx answer, 4xx included, and an answer not given
within 15 seconds: at once, after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h; after that the
message is marked failed on the webhook's page in Resend's dashboard, where it can be replayed.
Nothing is dropped silently, so an over-size message is answered 413 like everywhere else.
Resend's API failing or unreachable (5xx, 408, 429, a timeout, a refused connection) is a 503
(IngressUnavailable); what a retry cannot change (404, a refused key, no raw download) is a 422
saying why.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import http.client
import json
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from flask import Request

from config import Settings
from ingress import IngressError, RawEmail
from ingress.forms import parse_json, require_json
from ingress.receive import IngressUnavailable

TOLERANCE_SECONDS = 5 * 60
HTTP_TIMEOUT = 10.0  # per socket operation: Svix gives the whole answer 15 seconds
USER_AGENT = "Threadline-ingress/1.0 (+resend)"
CHUNK = 64 * 1024
SPOOL_IN_MEMORY = 1024 * 1024
TRANSIENT = {408, 425, 429}  # and every 5xx


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` signing secret; ValueError if it is not one."""
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except binascii.Error as exc:
        raise ValueError("the signing secret is not whsec_ followed by base64") from exc


def authenticate(request: Request, body: bytes, secret: str, now: float | None = None) -> None:
    msg_id, stamp, signatures = (
        request.headers.get(name, "") for name in ("svix-id", "svix-timestamp", "svix-signature")
    )
    if not (msg_id and stamp and signatures):
        raise IngressError(401, "svix-id, svix-timestamp and svix-signature are required")
    try:
        key = decode_secret(secret)
    except ValueError as exc:
        raise IngressUnavailable(f"RESEND_INGRESS_SIGNING_SECRET is unusable: {exc}") from exc
    try:
        sent = int(stamp)
    except ValueError as exc:
        raise IngressError(401, "svix-timestamp is not an integer") from exc
    now = time.time() if now is None else now
    if abs(now - sent) > TOLERANCE_SECONDS:
        raise IngressError(401, "svix-timestamp is more than 5 minutes off (check the clock)")
    signed = f"{msg_id}.{stamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    given = [s[3:].encode() for s in signatures.split() if s.startswith("v1,")]
    # Every candidate compared: how many were tried says nothing about which one matched.
    if not any([hmac.compare_digest(candidate, expected) for candidate in given]):
        raise IngressError(401, "the signature does not match RESEND_INGRESS_SIGNING_SECRET")


def extract(request: Request, settings: Settings) -> list[RawEmail]:
    body = request.stream.read()
    authenticate(request, body, settings.resend_webhook_secret)
    require_json(request)
    event = parse_json(body)
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise IngressError(422, "the event must be a JSON object with a type")
    if event["type"] != "email.received":
        return []
    data = event.get("data")
    email_id = data.get("email_id") if isinstance(data, dict) else None
    if not isinstance(email_id, str) or not email_id.strip():
        raise IngressError(422, "data.email_id is missing from the email.received event")
    return [RawEmail(fetch_raw(email_id, settings))]


def fetch_raw(email_id: str, settings: Settings):
    url = f"{settings.resend_api_url}/emails/receiving/{urllib.parse.quote(email_id, safe='')}"
    headers = {"Authorization": f"Bearer {settings.resend_api_key}", "Accept": "application/json"}
    with _open(url, headers, f"Resend's API for received email {email_id}") as answer:
        try:
            email = json.loads(answer.read())
        except (ValueError, OSError, http.client.HTTPException) as exc:
            raise IngressUnavailable(f"Resend's API answered unreadably: {exc}") from exc
    raw = email.get("raw") if isinstance(email, dict) else None
    download = raw.get("download_url") if isinstance(raw, dict) else None
    if not isinstance(download, str) or not download:
        raise IngressError(422, f"Resend's API gave no raw download for received email {email_id}")
    _check_download_url(download, settings.resend_api_url)
    # A signed URL: it needs no key, and the API key is never sent anywhere but the API.
    with _open(download, {}, f"the raw download of received email {email_id}") as answer:
        return _spool(answer, settings.inbound_max_bytes, email_id)


def _check_download_url(url: str, api_url: str) -> None:
    """https only; plain http only on RESEND_API_URL's own origin (a stand-in in tests), which
    the admin chose and the API key already travels to."""
    parts, api = urllib.parse.urlsplit(url), urllib.parse.urlsplit(api_url)
    same_origin = (parts.scheme, parts.netloc) == (api.scheme, api.netloc)
    if not parts.netloc or (parts.scheme != "https" and not same_origin):
        raise IngressError(422, f"Resend's raw download URL is not https: {url[:80]}")


def _spool(answer, limit: int, email_id: str):
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
    size = 0
    try:
        while chunk := answer.read(CHUNK):
            size += len(chunk)
            if size > limit:
                spool.close()
                raise IngressError(
                    413, f"received email {email_id} is larger than INBOUND_EMAIL_MAX_BYTES"
                )
            spool.write(chunk)
    except (OSError, http.client.HTTPException) as exc:
        spool.close()
        raise IngressUnavailable(f"the raw download of {email_id} broke off: {exc}") from exc
    if size == 0:
        spool.close()
        raise IngressError(422, f"the raw download of received email {email_id} is empty")
    spool.seek(0)
    return spool


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect would carry the Authorization header to wherever it points: not followed."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def _open(url: str, headers: dict[str, str], what: str):
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **headers})
    try:
        return _OPENER.open(request, timeout=HTTP_TIMEOUT)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code >= 500 or exc.code in TRANSIENT:
            raise IngressUnavailable(f"{what} answered {exc.code}") from exc
        hint = " (check RESEND_API_KEY)" if exc.code in (401, 403) and headers else ""
        raise IngressError(422, f"{what} answered {exc.code}{hint}") from exc
    except (OSError, http.client.HTTPException) as exc:  # URLError, refused, timeout, reset
        raise IngressUnavailable(f"{what} is unreachable: {exc}") from exc
