"""Bounded polling and plain-HTTP relay posts for tests that drive real processes."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from base64 import b64encode

from ingress import relayer


def wait_for(predicate, timeout: float, interval: float = 0.2):
    """Call `predicate` until it returns something truthy or `timeout` seconds pass; return
    its last value (the caller asserts on it, so a timeout fails with the caller's message)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def post_relay_over_http(web_url: str, raw: bytes, password: str) -> int:
    """POST one message to a running server's relay ingress, as the relay command does;
    returns the HTTP status."""
    credentials = b64encode(f"{relayer.USERNAME}:{password}".encode()).decode()
    request = urllib.request.Request(
        web_url + relayer.RELAY_PATH,
        data=raw,
        headers={"Content-Type": "message/rfc822", "Authorization": f"Basic {credentials}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
