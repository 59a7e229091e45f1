"""Amazon SES receiving through an SNS topic subscribed to this endpoint over HTTPS.

Each SNS message is read and authenticated by ingress/sns.py (topic allow-list, pinned
certificate host, signature, age; a SubscriptionConfirmation confirmed there). A
`Notification`'s `Message` is SES's own JSON: `receipt.action.type` "SNS" carries the raw
MIME in `content` (base64 when the action's encoding is BASE64; SES bounces mail over
150 KB), "S3" names the bucket and key SES stored it under (fetched here with the minio SDK;
up to 40 MB). Recipient hints come from `receipt.recipients`.

Retries: SNS counts any answer from 200 to 499 as delivered and retries only a 5xx, a
timeout (15 s) or a refused connection: by default 3 more times, 20 s apart (a delivery
policy allows more, within an hour), then drops the message unless the subscription has a
dead-letter queue. A 4xx here therefore loses the message silently at SNS's end: a transient
failure (S3 or the certificate host unreachable, storage down) answers 503 instead, and an
over-size message is kept as too large (blueprints/ingress.py KEEPS_OVERSIZE).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import tempfile
from typing import BinaryIO

from flask import Request
from minio import Minio
from minio.error import MinioException, S3Error
from urllib3.exceptions import HTTPError as Urllib3Error

from config import Settings
from ingress import IngressError, RawEmail, sns
from ingress.receive import IngressUnavailable
from storage.minio import http_client, parse_endpoint

log = logging.getLogger(__name__)

S3_ACTION_MAX = 40 * 1024 * 1024  # the largest email SES receives (and stores in S3)
SPOOL_IN_MEMORY = 1024 * 1024
CHUNK = 64 * 1024


def extract(request: Request, settings: Settings) -> list[RawEmail]:
    message = sns.read(request)
    region = sns.authenticate(message, settings)
    kind = message["Type"]
    if kind == "SubscriptionConfirmation":
        sns.confirm(message, region, settings)
        return []
    if kind == "UnsubscribeConfirmation":
        log.warning("SNS: %s unsubscribed this endpoint (nothing stored)", message["TopicArn"])
        return []
    return _emails(message["Message"], region, settings)


def _emails(text: str, region: str, settings: Settings) -> list[RawEmail]:
    try:
        notice = json.loads(text)
    except ValueError as exc:
        raise IngressError(422, "the SNS Message is not an SES notification (not JSON)") from exc
    if not isinstance(notice, dict):
        raise IngressError(422, "the SNS Message is not an SES notification")
    if notice.get("notificationType") != "Received":
        log.info("SNS: SES %r notification ignored", notice.get("notificationType"))
        return []
    receipt = notice.get("receipt")
    action = receipt.get("action") if isinstance(receipt, dict) else None
    if not isinstance(action, dict):
        raise IngressError(422, "the SES notification has no receipt.action")
    recipients = receipt.get("recipients", [])
    if not isinstance(recipients, list) or not all(isinstance(r, str) for r in recipients):
        raise IngressError(422, "receipt.recipients must be a list of addresses")
    if action.get("type") == "SNS":
        raw: bytes | BinaryIO = _content(notice, action)
    elif action.get("type") == "S3":
        raw = _s3_object(action, region, settings)
    else:
        raise IngressError(
            422, f"an SES {action.get('type')!r} action carries no email: use an SNS or S3 action"
        )
    return [RawEmail(raw, recipients)]


def _content(notice: dict, action: dict) -> bytes:
    content = notice.get("content")
    if not isinstance(content, str):
        raise IngressError(422, "the SES notification has no content")
    try:
        if str(action.get("encoding", "")).upper() == "BASE64":
            raw = base64.b64decode(content, validate=True)
        else:
            raw = content.encode("utf-8")
    except (binascii.Error, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise IngressError(422, f"the SES content cannot be decoded: {exc}") from exc
    if not raw.strip():
        raise IngressError(422, "the SES content is blank")
    return raw


def _s3_object(action: dict, region: str, settings: Settings) -> BinaryIO:
    bucket, key = action.get("bucketName"), action.get("objectKey")
    if not isinstance(bucket, str) or not isinstance(key, str) or not bucket or not key:
        raise IngressError(422, "the SES S3 action names no bucketName and objectKey")
    where = f"s3://{bucket}/{key}"
    try:
        endpoint, secure = parse_endpoint(
            settings.ses_s3_endpoint or f"s3.{region}.amazonaws.com", True
        )
        client = Minio(
            endpoint,
            access_key=settings.ses_s3_access_key or None,
            secret_key=settings.ses_s3_secret_key or None,
            secure=secure,
            region=region,
            http_client=http_client(),
        )
        response = client.get_object(bucket, key)
    except S3Error as exc:
        if exc.code == "NoSuchKey":
            raise IngressError(422, f"{where} does not exist (deleted already?)") from exc
        raise IngressUnavailable(f"S3 refused {where}: {exc.code}; check SES_S3_*") from exc
    except (MinioException, Urllib3Error, OSError, ValueError) as exc:
        raise IngressUnavailable(f"{where} could not be fetched: {exc}") from exc
    try:
        # Over INBOUND_EMAIL_MAX_BYTES but within what SES stores, the mail is kept as too
        # large (blueprints/ingress.py KEEPS_OVERSIZE): SNS would drop a 413 silently.
        return _spooled(response, where, max(settings.inbound_max_bytes, S3_ACTION_MAX))
    finally:
        response.close()
        response.release_conn()


def _spooled(response, where: str, limit: int) -> BinaryIO:
    """The object's bytes in a spooled file (RAM up to 1 MiB), refused over `limit`."""
    too_large = IngressError(413, f"{where} is larger than {limit} bytes")
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
    try:
        if int(response.headers.get("Content-Length") or 0) > limit:
            raise too_large
        for chunk in response.stream(CHUNK):
            spool.write(chunk)
            if spool.tell() > limit:
                raise too_large
        if spool.tell() == 0:
            raise IngressError(422, f"{where} is empty")
    except (Urllib3Error, OSError) as exc:
        spool.close()
        raise IngressUnavailable(f"{where} could not be read: {exc}") from exc
    except IngressError:
        spool.close()
        raise
    spool.seek(0)
    return spool
