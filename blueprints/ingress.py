"""Action Mailbox-compatible ingress endpoints: authenticate, extract, receive, answer."""

from __future__ import annotations

from flask import Blueprint, Response, abort, request

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
from ingress.paths import PREFIX, ROUTES
from ingress.receive import IngressUnavailable, receive

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


def _ingest(name: str, success_status: int) -> Response:
    if name not in get_settings().inbound_services:
        abort(404, f"the {name} ingress is not enabled (INBOUND_EMAIL_SERVICE)")
    try:
        messages = PROVIDERS[name].extract(request, get_settings())
        for raw in messages:
            receive(raw, source=name)
    except IngressError as exc:
        return _plain(exc.status, exc.message, exc.headers)
    except IngressUnavailable as exc:
        return _plain(503, f"{exc}; retry later", {"Retry-After": "60"})
    return _plain(success_status)


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
    return _ingest("sparkpost", 204)


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
