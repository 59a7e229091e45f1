"""Amazon SNS HTTPS notifications, verified as AWS documents (used by ingress/ses.py).

A message is one JSON document (Content-Type `text/plain; charset=UTF-8`, or
`application/json` when the delivery policy says so), its type also in the
`x-amz-sns-message-type` header. Authenticated here: the topic must be listed in
SES_TOPIC_ARNS, the signing certificate's URL must be https on sns.<region>.amazonaws.com
(the topic's region), the certificate is fetched over verified TLS (and cached), and its RSA
key must verify the signature (SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA) over the
string to sign of the message type; a message older than an hour (the longest SNS retries)
is refused as stale. A `SubscriptionConfirmation` is confirmed by GETting its SubscribeURL.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import threading
import urllib.error
import urllib.request
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from flask import Request

from config import Settings
from ingress import IngressError
from ingress.forms import json_body
from ingress.receive import IngressUnavailable

log = logging.getLogger(__name__)

CONTENT_TYPES = ("text/plain", "application/json")
MAX_AGE = timedelta(hours=1)
FETCH_TIMEOUT = 10
MAX_CERTIFICATE_BYTES = 64 * 1024
CACHE_SIZE = 16
# The fields of the string to sign, in byte order, per message type (Subject only if given).
SIGNED = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        *("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    ),
}
SIGNED["UnsubscribeConfirmation"] = SIGNED["SubscriptionConfirmation"]
HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}
_REGION = r"[a-z]{2}(?:-[a-z]+)+-\d+"
_TOPIC_ARN = re.compile(rf"arn:aws(?:-cn|-us-gov)?:sns:({_REGION}):\d{{12}}:[\w.-]{{1,256}}")
# Matched against the whole netloc: a port or user@ in front of the host fails too.
_SNS_HOST = re.compile(rf"sns\.({_REGION})\.amazonaws\.com(?:\.cn)?")

# Signing certificates' public keys by URL, oldest dropped first.
_CERTIFICATES: OrderedDict[str, rsa.RSAPublicKey] = OrderedDict()
_CERTIFICATES_LOCK = threading.Lock()


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a 3xx is answered as the HTTPError it then becomes


_OPENER = urllib.request.build_opener(_NoRedirects)


def read(request: Request) -> dict:
    """The SNS message of a request, its type known and its signed fields text; not yet
    authenticated."""
    if request.mimetype not in CONTENT_TYPES:
        raise IngressError(
            415, f"SNS posts text/plain or application/json, not {request.mimetype!r}"
        )
    message = json_body(request)
    if not isinstance(message, dict):
        raise IngressError(422, "the SNS message must be a JSON object")
    kind = message.get("Type")
    if kind not in SIGNED:
        raise IngressError(422, f"unknown SNS message Type {kind!r}")
    header = request.headers.get("x-amz-sns-message-type")
    if header is not None and header != kind:
        raise IngressError(422, f"x-amz-sns-message-type says {header!r}, the body {kind!r}")
    for name in SIGNED[kind]:
        value = message.get(name)
        if not isinstance(value, str) and not (name == "Subject" and value is None):
            raise IngressError(422, f"the SNS message's {name} is missing or not text")
    return message


def authenticate(message: dict, settings: Settings, now: datetime | None = None) -> str:
    """Verify topic, certificate URL, age and signature; return the topic's region."""
    topic = message["TopicArn"]
    if topic not in settings.ses_topic_arns:
        raise IngressError(401, f"the SNS topic {topic!r} is not listed in SES_TOPIC_ARNS")
    arn = _TOPIC_ARN.fullmatch(topic)
    if arn is None:
        raise IngressError(401, f"{topic!r} is not an SNS topic ARN (check SES_TOPIC_ARNS)")
    region = arn.group(1)
    version = message.get("SignatureVersion")
    if version not in HASHES:
        raise IngressError(401, f"unsupported SNS SignatureVersion {version!r} (1 or 2)")
    try:
        signature = base64.b64decode(message.get("Signature") or "", validate=True)
    except (binascii.Error, TypeError, ValueError) as exc:
        raise IngressError(401, "the SNS Signature is not base64") from exc
    if not signature:
        raise IngressError(401, "the SNS message is not signed")
    cert_url = message.get("SigningCertURL")
    require_sns_url(cert_url, region, "SigningCertURL", 401)
    try:
        stamp = datetime.fromisoformat(message["Timestamp"])
    except ValueError as exc:
        raise IngressError(401, "the SNS Timestamp is not an ISO 8601 time") from exc
    now = now or datetime.now(UTC)
    if stamp.tzinfo is None or now - stamp > MAX_AGE:
        raise IngressError(401, "the SNS message is older than an hour (check the clock)")
    key = _signing_key(cert_url, settings, now)
    try:
        key.verify(signature, string_to_sign(message), padding.PKCS1v15(), HASHES[version]())
    except InvalidSignature as exc:
        raise IngressError(401, "the SNS signature does not match the message") from exc
    return region


def string_to_sign(message: dict) -> bytes:
    lines = [
        f"{name}\n{message[name]}\n"
        for name in SIGNED[message["Type"]]
        if message.get(name) is not None
    ]
    try:
        return "".join(lines).encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate escape is valid JSON, but no text
        raise IngressError(422, "the SNS message is not text") from exc


def require_sns_url(url: object, region: str, name: str, status: int) -> None:
    parts = urlsplit(url) if isinstance(url, str) else None
    host = _SNS_HOST.fullmatch(parts.netloc) if parts else None
    if parts is None or parts.scheme != "https" or host is None:
        raise IngressError(status, f"the {name} {url!r} is not https://sns.<region>.amazonaws.com")
    if host.group(1) != region:
        raise IngressError(status, f"the {name} is not in the topic's region {region}")


def _fetch(url: str, settings: Settings, what: str) -> bytes:
    """GET an SNS URL over verified TLS; an HTTP refusal raises IngressError(401)."""
    target = url
    if settings.sns_certificate_origin:  # tests only: the same path from a local stand-in
        parts = urlsplit(url)
        target = (
            settings.sns_certificate_origin
            + parts.path
            + ("?" + parts.query if parts.query else "")
        )
    try:
        with _OPENER.open(target, timeout=FETCH_TIMEOUT) as response:
            return response.read(MAX_CERTIFICATE_BYTES + 1)
    except urllib.error.HTTPError as exc:
        if exc.code >= 500:
            raise IngressUnavailable(f"SNS answered HTTP {exc.code} to the {what} GET") from exc
        raise IngressError(401, f"SNS answered HTTP {exc.code} to the {what} GET") from exc
    except (urllib.error.URLError, OSError) as exc:  # includes timeouts and TLS failures
        raise IngressUnavailable(f"the {what} could not be fetched: {exc}") from exc


def _signing_key(url: str, settings: Settings, now: datetime) -> rsa.RSAPublicKey:
    with _CERTIFICATES_LOCK:
        key = _CERTIFICATES.get(url)
    if key is not None:
        return key
    try:
        certificate = x509.load_pem_x509_certificate(_fetch(url, settings, "signing certificate"))
    except ValueError as exc:
        raise IngressError(401, "the SigningCertURL does not hold a PEM certificate") from exc
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise IngressError(401, "the SNS signing certificate has no RSA key")
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise IngressError(401, "the SNS signing certificate is expired or not yet valid")
    with _CERTIFICATES_LOCK:
        _CERTIFICATES[url] = key
        while len(_CERTIFICATES) > CACHE_SIZE:
            _CERTIFICATES.popitem(last=False)
    return key


def confirm(message: dict, region: str, settings: Settings) -> None:
    url = message["SubscribeURL"]
    require_sns_url(url, region, "SubscribeURL", 422)
    try:
        _fetch(url, settings, "SubscribeURL")
    except IngressError as exc:  # e.g. an expired token: a new subscription is needed
        raise IngressError(422, f"{exc.message}; subscribe the endpoint again") from exc
    log.info("SNS: subscription of this endpoint to %s confirmed", message["TopicArn"])
