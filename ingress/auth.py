"""Authentication shared by the Basic-auth ingresses, with constant-time comparison."""

from __future__ import annotations

import hmac

from flask import Request

from ingress import IngressError
from ingress.paths import BASIC_USER

CHALLENGE = {"WWW-Authenticate": 'Basic realm="Action Mailbox"'}


def constant_time_equal(given: str | bytes, expected: str | bytes) -> bool:
    given = given.encode() if isinstance(given, str) else given
    expected = expected.encode() if isinstance(expected, str) else expected
    return hmac.compare_digest(given, expected)


def require_basic_auth(request: Request, password: str) -> None:
    auth = request.authorization
    if auth is None or auth.type != "basic":
        raise IngressError(401, "HTTP Basic authentication is required", CHALLENGE)
    # Both compared every time: the answer takes as long for a wrong user as a wrong password.
    user_ok = constant_time_equal(auth.username or "", BASIC_USER)
    password_ok = constant_time_equal(auth.password or "", password)
    if not (user_ok and password_ok):
        raise IngressError(401, "invalid credentials", CHALLENGE)
