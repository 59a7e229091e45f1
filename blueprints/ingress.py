"""Action Mailbox-compatible ingress endpoints: authenticate, extract, receive, answer."""

from __future__ import annotations

from flask import Blueprint, Response, abort, request
from werkzeug.exceptions import RequestEntityTooLarge

from extensions import csrf, get_settings
from ingress import (
    IngressError,
    brevo,
    mailersend,
    mailgun,
    mailjet,
    mandrill,
    postal,
    postmark,
    relay,
    resend,
    sendgrid,
    ses,
    sparkpost,
)
from ingress.auth import require_basic_auth
from ingress.paths import PREFIX, ROUTES
from ingress.receive import IngressUnavailable, receive
from services import ingress_refusals

bp = Blueprint("ingress", __name__, url_prefix=PREFIX)
csrf.exempt(bp)  # providers authenticate with Basic auth or signatures, not sessions

PROVIDERS = {
    "relay": relay,
    "postmark": postmark,
    "sendgrid": sendgrid,
    "mailgun": mailgun,
    "mandrill": mandrill,
    "ses": ses,
    "postal": postal,
    "sparkpost": sparkpost,
    "mailersend": mailersend,
    "mailjet": mailjet,
    "brevo": brevo,
    "resend": resend,
}


def _plain(status: int, text: str = "", headers: dict[str, str] | None = None) -> Response:
    return Response(text + ("\n" if text else ""), status, headers, mimetype="text/plain")


@bp.before_request
def limit_body_size():
    # Ingress bodies may be large; everything else keeps the app-wide limits.
    limit = get_settings().inbound_max_bytes
    request.max_content_length = limit
    request.max_form_memory_size = limit


# Providers that drop a 4xx answer without retrying or telling anyone (SendGrid's Inbound
# Parse; SNS, for SES, counts any 4xx as delivered; Brevo discards every 4xx but 429; Mailjet
# documents nothing, so it is assumed to): an over-size message from them is read up to
# OVERSIZE_CEILING, kept and shown as "too large" (ingress/receive.py) instead of answered
# 413 and lost.
KEEPS_OVERSIZE = frozenset({"sendgrid", "ses", "brevo", "mailjet"})
# How to say "try again later" to each: 503, except to Brevo, which discards a 5xx and
# retries a 429 (after 10 minutes, then 1, 2 and 8 hours).
RETRY_LATER = {"brevo": 429}
OVERSIZE_CEILING = 40 * 1024 * 1024  # SendGrid's 30 MB and SES's 40 MB, with room for a form


def _ingest(name: str, success_status: int) -> Response:
    settings = get_settings()
    if name not in settings.inbound_services:
        abort(404, f"the {name} ingress is not enabled (INBOUND_EMAIL_SERVICE)")
    too_large_over = None
    if name in KEEPS_OVERSIZE:
        too_large_over = settings.inbound_max_bytes
        request.max_content_length = max(settings.inbound_max_bytes, OVERSIZE_CEILING)
    try:
        messages = PROVIDERS[name].extract(request, settings)
        for raw in messages:
            receive(raw, source=name, too_large_over=too_large_over)
    except IngressError as exc:
        head = _head_of_refused_body(name) if exc.status == 415 else None
        _refused(name, exc.status, exc.message, head)
        return _plain(exc.status, exc.message, exc.headers)
    except RequestEntityTooLarge:
        limit, setting = request.max_content_length, settings.inbound_max_bytes
        message = (
            f"the message is larger than INBOUND_EMAIL_MAX_BYTES ({setting} bytes)"
            if limit == setting
            else f"the message is larger than {limit} bytes, the most {name} sends"
        )
        _refused(name, 413, message, _head_of_refused_body(name))
        return _plain(413, message)
    except IngressUnavailable as exc:
        status = RETRY_LATER.get(name, 503)
        _refused(name, status, f"{exc}; retry later")
        return _plain(status, f"{exc}; retry later", {"Retry-After": "60"})
    return _plain(success_status)


def _refused(name: str, status: int, reason: str, head: bytes | None = None) -> None:
    ingress_refusals.record(
        name, status, reason, request.remote_addr, size=request.content_length, head=head
    )


def _head_of_refused_body(name: str) -> bytes | None:
    """The first bytes of a refused relay body (over-size, or the wrong content type), for its
    From/To/Subject, when the post authenticated (never an unauthenticated body): read from
    the WSGI input directly, since the request's own stream refuses to read past the limit."""
    if name != "relay" or request.content_length is None:
        return None
    try:
        require_basic_auth(request, get_settings().inbound_email_password)
    except IngressError:
        return None
    try:
        # never past Content-Length: a server that hands over the raw connection (werkzeug's)
        # would wait for bytes the client never sends
        wanted = min(ingress_refusals.HEAD_BYTES, request.content_length)
        return request.environ["wsgi.input"].read(wanted)
    except (OSError, ValueError):
        return None


@bp.post(ROUTES["relay"])
def relay_inbound():
    return _ingest("relay", 204)


@bp.post(ROUTES["postmark"])
def postmark_inbound():
    return _ingest("postmark", 204)


@bp.post(ROUTES["sendgrid"])
def sendgrid_inbound():
    return _ingest("sendgrid", 204)


@bp.post(ROUTES["mailgun"])
def mailgun_inbound():
    return _ingest("mailgun", 204)


@bp.route(ROUTES["mandrill"], methods=["GET", "HEAD"])
def mandrill_health():
    if "mandrill" not in get_settings().inbound_services:
        abort(404, "the mandrill ingress is not enabled (INBOUND_EMAIL_SERVICE)")
    return _plain(200)


@bp.post(ROUTES["mandrill"])
def mandrill_inbound():
    return _ingest("mandrill", 200)


@bp.post(ROUTES["ses"])
def ses_inbound():
    return _ingest("ses", 204)


@bp.post(ROUTES["postal"])
def postal_inbound():
    return _ingest("postal", 204)


@bp.post(ROUTES["sparkpost"])
def sparkpost_inbound():
    return _ingest("sparkpost", 200)  # its webhook validation expects exactly 200


@bp.post(ROUTES["mailersend"])
def mailersend_inbound():
    return _ingest("mailersend", 204)


@bp.post(ROUTES["mailjet"])
def mailjet_inbound():
    return _ingest("mailjet", 204)


@bp.post(ROUTES["brevo"])
def brevo_inbound():
    return _ingest("brevo", 204)


@bp.post(ROUTES["resend"])
def resend_inbound():
    return _ingest("resend", 204)
