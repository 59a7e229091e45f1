"""Postal HTTP endpoint ("Delivered as the raw message"): RSA signatures over the body.

Requests are built as Postal's HTTP sender builds them: the raw format's fields (id, rcpt_to,
mail_from, message as Ruby's Base64.encode64 with a line break every 60 characters, base64,
size) as compact JSON or as form data, signed with the server key: X-Postal-Signature is
RSA-SHA1 and X-Postal-Signature-256 RSA-SHA256 (PKCS #1 v1.5), both base64. The key is a test
key; the setting is its public half as Postal's DKIM record shows it (the p= value).
"""

from __future__ import annotations

import base64
import dataclasses
import json
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from ingress import IngressError
from ingress.postal import postal_key_problem, public_key
from tests.support.ingress_requests import (
    assert_received_once,
    inbound_job_ids,
    inbound_rows,
    load_fixture,
    stored_keys,
)

POSTAL_URL = "/rails/action_mailbox/postal/inbound_emails"
PLAIN = load_fixture("plain-text.eml")
PLAIN_ID = "plain-text.1@customer.example.com"
RECIPIENT = "support@threadline.test"

# Postal generates a 1024-bit signing key at installation; tests use 2048 bits.
SERVER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def dkim_p_value(key: rsa.RSAPrivateKey) -> str:
    """The p= value Postal prints: the PEM public key without its armour and line breaks."""
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "".join(line for line in pem.decode().splitlines() if not line.startswith("-----"))


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


SERVER_P = dkim_p_value(SERVER_KEY)


@pytest.fixture
def app_config(app_config, extra_settings):
    return {
        **app_config,
        "INBOUND_EMAIL_SERVICE": "postal",
        "POSTAL_INGRESS_PUBLIC_KEY": SERVER_P,
        **extra_settings,
    }


def encode64(data: bytes) -> str:
    """Ruby's Base64.encode64: 60 characters a line, every line ending in a line feed."""
    text = base64.b64encode(data).decode()
    return "".join(text[i : i + 60] + "\n" for i in range(0, len(text), 60))


def raw_payload(raw: bytes, rcpt_to: str | None = RECIPIENT, **fields) -> dict:
    payload = {
        "id": 12345,
        "rcpt_to": rcpt_to,
        "mail_from": "sam@customer.example.com",
        "message": encode64(raw),
        "base64": True,
        "size": len(raw),
    }
    return {**payload, **fields}


def as_json(payload) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def signature(body: bytes, key=SERVER_KEY, algorithm=None) -> str:
    signed = key.sign(body, padding.PKCS1v15(), algorithm or hashes.SHA256())
    return base64.b64encode(signed).decode()


def signed(body: bytes, key=SERVER_KEY, *, sha1: bool = True, sha256: bool = True) -> dict:
    """The headers Postal adds: 3.x sends both signatures (and a key id), 2.x only SHA-1."""
    headers = {}
    if sha256:
        headers["X-Postal-Signature-KID"] = "a" * 64
        headers["X-Postal-Signature-256"] = signature(body, key, hashes.SHA256())
    if sha1:
        headers["X-Postal-Signature"] = signature(body, key, hashes.SHA1())
    return headers


def post(client, body: bytes, headers=None, content_type="application/json"):
    headers = signed(body) if headers is None else headers
    return client.post(POSTAL_URL, data=body, content_type=content_type, headers=headers)


def post_json(client, payload, headers=None):
    return post(client, as_json(payload), headers)


def assert_nothing_received():
    assert inbound_rows() == []
    assert stored_keys() == []
    assert inbound_job_ids() == []


# ---------------------------------------------------------------- good requests


def test_postal_3_raw_message_is_stored_with_its_envelope_recipient(client):
    response = post_json(client, raw_payload(PLAIN))

    assert response.status_code == 204
    assert_received_once(PLAIN, "postal", PLAIN_ID, [RECIPIENT])


def test_postal_2_with_only_the_sha1_signature_is_accepted(client):
    body = as_json(raw_payload(PLAIN))

    assert post(client, body, signed(body, sha256=False)).status_code == 204
    assert_received_once(PLAIN, "postal", PLAIN_ID, [RECIPIENT])


def test_only_the_sha256_signature_is_enough(client):
    body = as_json(raw_payload(PLAIN))

    assert post(client, body, signed(body, sha1=False)).status_code == 204
    assert_received_once(PLAIN, "postal", PLAIN_ID, [RECIPIENT])


@pytest.mark.parametrize("rcpt_to", [None, ""], ids=["null", "empty"])
def test_without_rcpt_to_the_message_is_stored_unchanged(client, rcpt_to):
    assert post_json(client, raw_payload(PLAIN, rcpt_to=rcpt_to)).status_code == 204
    assert_received_once(PLAIN, "postal", PLAIN_ID)


def test_iso_8859_2_8bit_message_is_stored_byte_for_byte(client):
    raw = load_fixture("iso-8859-2-html.eml")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")

    response = post_json(client, raw_payload(raw, rcpt_to="faktury@threadline.test"))

    assert response.status_code == 204
    assert_received_once(
        raw, "postal", "iso-8859-2-html.20250114091244@example.pl", ["faktury@threadline.test"]
    )


def test_inline_images_message_is_stored_byte_for_byte(client):
    raw = load_fixture("inline-images.eml")

    assert post_json(client, raw_payload(raw)).status_code == 204
    assert_received_once(raw, "postal", "inline-images.7f3a@customer.example.com", [RECIPIENT])


def test_form_data_encoding_is_accepted_byte_for_byte(client):
    """ "Sent as form data": Ruby's set_form_data, the same fields with base64 as "true"."""
    raw = load_fixture("iso-8859-2-html.eml")
    fields = {k: str(v).lower() if k == "base64" else v for k, v in raw_payload(raw).items()}
    body = urlencode(fields).encode("ascii")

    response = post(client, body, content_type="application/x-www-form-urlencoded")

    assert response.status_code == 204
    assert_received_once(raw, "postal", "iso-8859-2-html.20250114091244@example.pl", [RECIPIENT])


def test_a_message_sent_as_text_with_base64_false_is_stored(client):
    payload = raw_payload(PLAIN, message=PLAIN.decode("utf-8"), base64=False)

    assert post_json(client, payload).status_code == 204
    assert_received_once(PLAIN, "postal", PLAIN_ID, [RECIPIENT])


@pytest.mark.parametrize(
    "extra_settings",
    [
        {"POSTAL_INGRESS_PUBLIC_KEY": f"v=DKIM1; t=s; h=sha256; p={SERVER_P};"},
        {"POSTAL_INGRESS_PUBLIC_KEY": public_pem(SERVER_KEY)},
        {"POSTAL_INGRESS_PUBLIC_KEY": public_pem(SERVER_KEY).strip().replace("\n", "\\n")},
        {"POSTAL_INGRESS_PUBLIC_KEY": f"  {SERVER_P[:40]}\n{SERVER_P[40:]}  "},
    ],
    indirect=True,
    ids=["whole-dkim-record", "pem", "pem-on-one-line", "p-value-wrapped"],
)
def test_the_key_may_be_given_as_the_record_or_a_pem(client):
    assert post_json(client, raw_payload(PLAIN)).status_code == 204
    assert_received_once(PLAIN, "postal", PLAIN_ID, [RECIPIENT])


# ---------------------------------------------------------------- signature refusals


def _signature_case(name: str, body: bytes) -> dict:
    good = signed(body)
    sha256_by_other = signature(body, OTHER_KEY, hashes.SHA256())
    cases = {
        "none": {},
        "only-the-key-id": {"X-Postal-Signature-KID": good["X-Postal-Signature-KID"]},
        "both-by-another-key": signed(body, OTHER_KEY),
        "sha1-only-by-another-key": signed(body, OTHER_KEY, sha256=False),
        # A valid SHA-1 signature does not rescue a wrong SHA-256 one: no downgrade.
        "sha256-wrong-sha1-right": {**good, "X-Postal-Signature-256": sha256_by_other},
        "sha256-empty-sha1-right": {**good, "X-Postal-Signature-256": ""},
        "sha256-not-base64": {"X-Postal-Signature-256": "not base64 at all!"},
        "sha256-is-a-sha1-signature": {"X-Postal-Signature-256": good["X-Postal-Signature"]},
        "sha1-is-a-sha256-signature": {"X-Postal-Signature": good["X-Postal-Signature-256"]},
        "sha1-empty": {"X-Postal-Signature": ""},
        "signature-of-another-body": signed(body + b" "),
        "sha256-truncated": {"X-Postal-Signature-256": good["X-Postal-Signature-256"][:-8]},
    }
    return cases[name]


SIGNATURE_CASES = [
    "none",
    "only-the-key-id",
    "both-by-another-key",
    "sha1-only-by-another-key",
    "sha256-wrong-sha1-right",
    "sha256-empty-sha1-right",
    "sha256-not-base64",
    "sha256-is-a-sha1-signature",
    "sha1-is-a-sha256-signature",
    "sha1-empty",
    "signature-of-another-body",
    "sha256-truncated",
]


@pytest.mark.parametrize("case", SIGNATURE_CASES)
def test_bad_signature_is_401(client, case):
    body = as_json(raw_payload(PLAIN))

    response = post(client, body, _signature_case(case, body))

    assert response.status_code == 401
    assert_nothing_received()


def test_a_body_changed_after_signing_is_401(client):
    body = as_json(raw_payload(PLAIN))
    tampered = as_json(raw_payload(PLAIN, rcpt_to="attacker@threadline.test"))

    assert post(client, tampered, signed(body)).status_code == 401
    assert_nothing_received()


def test_the_signature_is_checked_before_the_content_type_and_payload(client):
    body = b"not json"
    response = post(client, body, signed(body, OTHER_KEY), content_type="text/plain")

    assert response.status_code == 401


# ---------------------------------------------------------------- content type and payload


@pytest.mark.parametrize(
    "content_type", ["text/plain", "message/rfc822", "multipart/form-data; boundary=x", ""]
)
def test_other_content_types_are_415(client, content_type):
    body = as_json(raw_payload(PLAIN))

    response = post(client, body, content_type=content_type)

    assert response.status_code == 415
    assert_nothing_received()


def test_the_hash_format_is_422_and_says_to_choose_the_raw_format(client):
    """ "Delivered as a hash": parsed fields, no raw message."""
    payload = {
        "id": 12345,
        "rcpt_to": RECIPIENT,
        "mail_from": "sam@customer.example.com",
        "token": "rtmuzogUauKN",
        "subject": "Where is my order?",
        "message_id": "plain-text.1@customer.example.com",
        "timestamp": 1478169798.924355,
        "size": "822",
        "spam_status": "NotSpam",
        "bounce": False,
        "received_with_ssl": True,
        "to": RECIPIENT,
        "cc": None,
        "from": "Sam Customer <sam@customer.example.com>",
        "date": "Thu, 16 Jan 2025 10:00:00 +0000",
        "in_reply_to": None,
        "references": None,
        "plain_body": "Hello, order #1042 has not arrived yet.",
        "html_body": None,
        "attachment_quantity": 0,
        "auto_submitted": None,
        "reply_to": None,
    }

    response = post_json(client, payload)

    assert response.status_code == 422
    assert "Delivered as the raw message" in response.get_data(as_text=True)
    assert_nothing_received()


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b"null",
        b'"message"',
        as_json(raw_payload(PLAIN, message=42)),
        as_json(raw_payload(PLAIN, message=["a"])),
        as_json(raw_payload(PLAIN, message="@@@ not base64 @@@")),
        as_json(raw_payload(PLAIN, message="")),
        as_json(raw_payload(PLAIN, message=encode64(b" \r\n\t"))),
        as_json(raw_payload(PLAIN, message="w6k=\u00e9")),
        as_json(raw_payload(PLAIN, base64="yes")),
        as_json(raw_payload(PLAIN, base64=1)),
        as_json(raw_payload(PLAIN, rcpt_to=42)),
        as_json(raw_payload(PLAIN, rcpt_to=["a@threadline.test"])),
        b'{"message": "Zm9v\\ud800", "base64": false}',
        b'{"message": "' + base64.b64encode(PLAIN) + b'", "rcpt_to": "\\ud800@x.test"}',
        as_json(raw_payload(PLAIN, rcpt_to="support@threadline.test\nBcc: evil@x.test")),
    ],
    ids=[
        "not-json",
        "array",
        "null",
        "string",
        "message-number",
        "message-list",
        "message-not-base64",
        "message-empty",
        "message-blank",
        "message-not-ascii",
        "base64-flag-string",
        "base64-flag-number",
        "rcpt-to-number",
        "rcpt-to-list",
        "text-message-lone-surrogate",
        "rcpt-to-lone-surrogate",
        "rcpt-to-line-break",
    ],
)
def test_malformed_json_payload_is_422(client, body):
    response = post(client, body)

    assert response.status_code == 422
    assert_nothing_received()


@pytest.mark.parametrize(
    "body",
    [
        urlencode([("message", encode64(PLAIN)), ("message", encode64(PLAIN))]),
        urlencode([("message", encode64(PLAIN)), ("base64", "maybe")]),
        urlencode([("message", encode64(PLAIN))]) + "&rcpt_to=%FCber%40threadline.test",
        urlencode([("rcpt_to", RECIPIENT), ("base64", "true")]),
    ],
    ids=["message-twice", "base64-flag-unknown", "rcpt-to-not-utf8", "message-missing"],
)
def test_malformed_form_payload_is_422(client, body):
    response = post(client, body.encode(), content_type="application/x-www-form-urlencoded")

    assert response.status_code == 422
    assert_nothing_received()


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize(
    "extra_settings", [{"INBOUND_EMAIL_SERVICE": "relay"}], indirect=True, ids=["relay-only"]
)
def test_postal_is_404_when_not_enabled(client):
    assert post_json(client, raw_payload(PLAIN)).status_code == 404
    assert_nothing_received()


@pytest.mark.parametrize(
    "extra_settings", [{"INBOUND_EMAIL_MAX_BYTES": "4096"}], indirect=True, ids=["4096-bytes"]
)
def test_oversized_body_is_413_and_nothing_is_stored(client):
    response = post_json(client, raw_payload(PLAIN + b"x" * 5000))

    assert response.status_code == 413
    assert_nothing_received()


@pytest.mark.parametrize(
    "extra_settings",
    [{"POSTAL_INGRESS_PUBLIC_KEY": dkim_p_value(OTHER_KEY)}],
    indirect=True,
    ids=["other-server"],
)
def test_a_message_signed_by_another_postal_server_is_401(client):
    assert post_json(client, raw_payload(PLAIN)).status_code == 401
    assert_nothing_received()


def test_an_unusable_key_answers_503_so_postal_retries(app):
    from extensions import get_settings
    from ingress import postal

    settings = dataclasses.replace(get_settings(), postal_public_key="not a key")
    body = as_json(raw_payload(PLAIN))
    with app.test_request_context(POSTAL_URL, method="POST", data=body, headers=signed(body)):
        from flask import request

        with pytest.raises(IngressError) as refused:
            postal.extract(request, settings)
    assert refused.value.status == 503
    assert "POSTAL_INGRESS_PUBLIC_KEY" in refused.value.message


# ---------------------------------------------------------------- the key setting's check


def _ec_public_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


@pytest.mark.parametrize(
    "value",
    [SERVER_P, f"v=DKIM1; t=s; h=sha256; p={SERVER_P};", public_pem(SERVER_KEY), "", "   "],
    ids=["p-value", "dkim-record", "pem", "empty", "blank"],
)
def test_usable_or_empty_keys_have_no_problem(value):
    assert postal_key_problem(value) is None


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("not a key", "is not a public key"),
        (base64.b64encode(b"just some bytes").decode(), "is not a public key"),
        (SERVER_P[:-20], "is not a public key"),
        ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----", "is not a public key"),
        (_ec_public_pem(), "is not an RSA public key"),
    ],
    ids=["words", "base64-not-a-key", "truncated", "broken-pem", "ec-key"],
)
def test_unusable_keys_are_named_as_a_problem(value, says):
    assert says in postal_key_problem(value)


def test_the_key_is_parsed_once_per_key_string():
    assert public_key(SERVER_P) is public_key(SERVER_P)
