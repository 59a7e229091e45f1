"""htmx conventions shared by every blueprint: one partial per swappable region, and the
full page (which includes the same partial) when the request is not from htmx."""

from __future__ import annotations

from flask import redirect, render_template, request


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def respond(full: str, partial: str, status: int = 200, headers: dict | None = None, **context):
    """The partial for htmx, the full page otherwise; caches must keep the two apart."""
    body = render_template(partial if is_htmx() else full, **context)
    return body, status, {"Vary": "HX-Request", **(headers or {})}


def navigate(url: str, *, status: int = 303, htmx_status: int = 204):
    """Load `url` as a whole page: a plain request follows a redirect, but htmx would swap
    the redirected page into the fragment (or, cross-origin, could not follow it at all),
    so it gets HX-Redirect instead. The statuses are the caller's: Flask-Login's sign-in
    redirect keeps its 302, and some callers answer htmx with 200 rather than 204."""
    if is_htmx():
        return "", htmx_status, {"HX-Redirect": url, "Vary": "HX-Request"}
    response = redirect(url, status)
    response.headers["Vary"] = "HX-Request"
    return response
