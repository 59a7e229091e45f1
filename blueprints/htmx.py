"""htmx conventions shared by every blueprint: one partial per swappable region, and the
full page (which includes the same partial) when the request is not from htmx."""

from __future__ import annotations

from flask import render_template, request


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def respond(full: str, partial: str, status: int = 200, headers: dict | None = None, **context):
    """The partial for htmx, the full page otherwise; caches must keep the two apart."""
    body = render_template(partial if is_htmx() else full, **context)
    return body, status, {"Vary": "HX-Request", **(headers or {})}
