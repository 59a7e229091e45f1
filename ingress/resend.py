"""resend ingress: not built yet (issue 22)."""

from __future__ import annotations

from flask import Request

from config import Settings
from ingress import IngressError, RawEmail


def extract(request: Request, settings: Settings) -> list[RawEmail]:
    raise IngressError(501, "the resend ingress is not built yet")
