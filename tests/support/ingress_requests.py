"""Build provider webhook requests the way each provider does, and inspect what was received.

The signers here are written from the providers' documentation, independently of ingress/*,
so a mistake in the product's verification shows up as a failing test, not a matching one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from pathlib import Path
from urllib.parse import quote_from_bytes

from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy import select

from tests.conftest import TEST_INGRESS_PASSWORD

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ingress"

BASE = "/rails/action_mailbox"
RELAY_URL = f"{BASE}/relay/inbound_emails"
POSTMARK_URL = f"{BASE}/postmark/inbound_emails"
SENDGRID_URL = f"{BASE}/sendgrid/inbound_emails"
MAILGUN_URL = f"{BASE}/mailgun/inbound_emails/mime"
MANDRILL_URL = f"{BASE}/mandrill/inbound_emails"
ALL_URLS = {
    "relay": RELAY_URL,
    "postmark": POSTMARK_URL,
    "sendgrid": SENDGRID_URL,
    "mailgun": MAILGUN_URL,
    "mandrill": MANDRILL_URL,
}

MAILGUN_KEY = "key-mailgun-signing-for-tests-0123456789"
MANDRILL_KEY = "mandrill-webhook-key-for-tests"
BASIC_CHALLENGE = 'Basic realm="Action Mailbox"'
PROCESS_JOB = "jobs.process_inbound.process_inbound_email"

Fields = list[tuple[str, bytes | str]]


def load_fixture(name: str) -> bytes:
    """The exact bytes of tests/fixtures/ingress/<name> (no newline translation)."""
    return (FIXTURES / name).read_bytes()


def basic_auth(password: str = TEST_INGRESS_PASSWORD, user: str = "actionmailbox") -> dict:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def mailgun_signature(key: str, timestamp: str, token: str) -> str:
    """Mailgun: hex HMAC-SHA256 of timestamp concatenated with token, keyed by the signing key."""
    return hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()


def mailgun_signed(key: str = MAILGUN_KEY, timestamp: int | str | None = None) -> Fields:
    """The timestamp/token/signature fields Mailgun adds to every forwarded message."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    token = secrets.token_hex(25)
    return [
        ("timestamp", stamp),
        ("token", token),
        ("signature", mailgun_signature(key, stamp, token)),
    ]


def mandrill_signature(key: str, url: str, fields: Fields) -> str:
    """Mandrill: base64 HMAC-SHA1 over the webhook URL + each POST param sorted by name,
    name then value, no separators."""
    signed = url.encode()
    for name, value in sorted(fields, key=lambda kv: kv[0]):
        signed += name.encode() + (value if isinstance(value, bytes) else value.encode())
    return base64.b64encode(hmac.new(key.encode(), signed, hashlib.sha1).digest()).decode()


def multipart(fields: Fields) -> tuple[bytes, str]:
    """A multipart/form-data body whose field values are the given raw BYTES, untouched.

    Returns (body, content_type). A value given as bytes is sent exactly, 8-bit included.
    """
    as_bytes = [(n, v if isinstance(v, bytes) else v.encode()) for n, v in fields]
    boundary = b"----threadline-test-" + secrets.token_hex(12).encode()
    assert not any(boundary in v for _, v in as_bytes)
    out = bytearray()
    for name, value in as_bytes:
        out += b"--" + boundary + b"\r\n"
        out += b'Content-Disposition: form-data; name="' + name.encode() + b'"\r\n\r\n'
        out += value + b"\r\n"
    out += b"--" + boundary + b"--\r\n"
    return bytes(out), f"multipart/form-data; boundary={boundary.decode()}"


def urlencoded(fields: Fields) -> tuple[bytes, str]:
    """An application/x-www-form-urlencoded body, raw bytes percent-encoded exactly."""
    parts = []
    for name, value in fields:
        value = value if isinstance(value, bytes) else value.encode()
        parts.append(quote_from_bytes(name.encode(), safe="") + "=" + quote_from_bytes(value))
    return "&".join(parts).encode("ascii"), "application/x-www-form-urlencoded"


def post_form(client, url: str, fields: Fields, headers: dict | None = None, encoding="multipart"):
    body, content_type = multipart(fields) if encoding == "multipart" else urlencoded(fields)
    return client.post(url, data=body, content_type=content_type, headers=headers or {})


def post_mailgun(client, raw: bytes, recipient: str | None = None, extra: Fields = (), **kw):
    fields: Fields = [*mailgun_signed(**kw), ("body-mime", raw)]
    if recipient is not None:
        fields.append(("recipient", recipient))
    return post_form(client, MAILGUN_URL, fields + list(extra))


def post_mandrill(
    client, fields: Fields, key: str = MANDRILL_KEY, url: str = "http://localhost" + MANDRILL_URL
):
    headers = {"X-Mandrill-Signature": mandrill_signature(key, url, fields)}
    body, content_type = urlencoded(fields)
    return client.post(MANDRILL_URL, data=body, content_type=content_type, headers=headers)


# ---------------------------------------------------------------- what the app recorded


def inbound_rows() -> list:
    from extensions import db
    from models import InboundEmail

    db.session.expire_all()
    return list(db.session.scalars(select(InboundEmail).order_by(InboundEmail.id)))


def stored_bytes(row) -> bytes:
    from extensions import get_storage

    return get_storage().get_bytes(row.storage_key)


def stored_keys() -> list[str]:
    """Every raw-message object in local storage (tests use the local backend by default)."""
    from extensions import get_storage

    root = Path(get_storage().root) / "inbound"
    if not root.exists():
        return []
    return sorted(p.relative_to(root.parent).as_posix() for p in root.rglob("*.eml"))


def inbound_job_ids() -> list[str]:
    from extensions import get_redis

    return Queue("inbound", connection=get_redis()).job_ids


def job_exists(job_id: str) -> bool:
    from extensions import get_redis

    try:
        Job.fetch(job_id, connection=get_redis())
    except NoSuchJobError:
        return False
    return True


def with_recipients(raw: bytes, recipients: list[str]) -> bytes:
    """What Action Mailbox stores: each recipient prepended in turn (the last ends on top)."""
    for to in recipients:
        raw = f"X-Original-To: {to}\n".encode() + raw
    return raw


def assert_received_once(raw_posted: bytes, source: str, message_id: str, recipients=()) -> object:
    """The one pending row, its stored object = posted bytes + prepended lines, its job queued."""
    from extensions import get_redis

    rows = inbound_rows()
    assert len(rows) == 1, rows
    row = rows[0]
    expected = with_recipients(raw_posted, list(recipients))
    assert row.status == "pending"
    assert row.source == source
    assert row.message_id == message_id
    assert row.checksum == hashlib.sha1(expected).hexdigest()
    assert row.size == len(expected)
    stored = stored_bytes(row)
    assert stored == expected
    assert hashlib.sha1(stored).hexdigest() == row.checksum
    job_id = f"process-inbound-{row.id}"
    assert inbound_job_ids() == [job_id]
    job = Job.fetch(job_id, connection=get_redis())
    assert job.func_name == PROCESS_JOB
    assert job.args == (row.id,)
    return row
