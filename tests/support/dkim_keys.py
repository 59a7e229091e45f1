"""A DKIM signing key made in the test, and the record a domain publishes for it."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def new_key() -> tuple[bytes, str]:
    """(private key PEM for dkim.sign, the p= value to publish)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, base64.b64encode(der).decode()


def key_record(key: tuple[bytes, str]) -> str:
    return f"v=DKIM1; k=rsa; p={key[1]}"
