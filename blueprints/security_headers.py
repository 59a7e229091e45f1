"""Security headers on every response: a strict CSP and frame protection on HTML pages.

The policy allows only our own scripts and styles (htmx and static/app.js; no inline code,
no eval), so an HTML injection that slipped past escaping still cannot run. A view that
needs another policy sets its own and it is kept: attachments are sandboxed, the mail frame
(blueprints/conversations/mail_frame.py) may be framed by our pages and allows the mail's
inline styles. A page whose forms may be redirected to another origin (Connect with
Microsoft 365 / Google: the POST answers with a redirect to the provider's sign-in page, and
browsers check form-action against that redirect too) names those origins in
`g.form_action_origins`.
"""

from __future__ import annotations

from flask import Flask, Response, g

PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'"
)
HSTS = "max-age=31536000; includeSubDomains"


def page_policy() -> str:
    origins = g.get("form_action_origins") or ()
    if not origins:
        return PAGE_POLICY
    extended = "form-action 'self' " + " ".join(origins)
    return PAGE_POLICY.replace("form-action 'self'", extended)


def register(app: Flask) -> None:
    settings = app.extensions["threadline.settings"]
    https = settings.session_cookie_secure  # APP_URL is https

    @app.before_request
    def forget_form_action_origins() -> None:
        # g outlives a request when an app context was pushed around it (tests, CLI).
        g.pop("form_action_origins", None)

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        if response.mimetype == "text/html":
            headers.setdefault("Content-Security-Policy", page_policy())
            # frame-ancestors supersedes it where supported; older browsers only know this.
            headers.setdefault("X-Frame-Options", "DENY")
        if https:
            headers.setdefault("Strict-Transport-Security", HSTS)
        return response
