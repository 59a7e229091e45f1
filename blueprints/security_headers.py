"""Security headers on every response: a strict CSP and frame protection on HTML pages.

The policy allows only our own scripts and styles (htmx and static/app.js; no inline code,
no eval), so an HTML injection that slipped past escaping still cannot run. A view that
needs another policy sets its own and it is kept: attachments are sandboxed, the mail frame
(blueprints/conversations/mail_frame.py) may be framed by our pages and allows the mail's
inline styles.
"""

from __future__ import annotations

from flask import Flask, Response

PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'"
)
HSTS = "max-age=31536000; includeSubDomains"


def register(app: Flask) -> None:
    settings = app.extensions["threadline.settings"]
    https = settings.session_cookie_secure  # APP_URL is https

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        if response.mimetype == "text/html":
            headers.setdefault("Content-Security-Policy", PAGE_POLICY)
            # frame-ancestors supersedes it where supported; older browsers only know this.
            headers.setdefault("X-Frame-Options", "DENY")
        if https:
            headers.setdefault("Strict-Transport-Security", HSTS)
        return response
