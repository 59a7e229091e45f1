"""The document inside a message's sandboxed frame, served from its own member-only URL.

Not a srcdoc: a srcdoc frame inherits the page's CSP, which (rightly) forbids the inline
styles every HTML mail relies on. Served by URL, the frame gets a policy of its own: the
mail's inline styles, images from us (cid: parts are attachment URLs) and, only after "Load
images", remote ones; never scripts (the iframe's sandbox has no allow-scripts either).
Routes live on the conversations blueprint; the iframe is in _message.html.
"""

from __future__ import annotations

import re

from flask import abort, request
from flask_login import login_required

from blueprints.conversations.blueprint import bp
from blueprints.conversations.pages import visible_conversation
from extensions import db
from models import Message

_DEFERRED_IMAGE = re.compile(r"(<img\b[^>]*?\s)data-remote-src=", re.I)


def frame_policy(images: bool) -> str:
    remote = " https: http:" if images else ""
    return (
        f"default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:{remote}; "
        "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
    )


def html_document(html: str, images: bool) -> str:
    """The sanitiser parked remote image URLs in data-remote-src; `images` turns them on for
    this response only. The page sizes the frame to this document's height (static/thread.js),
    so long words and preformatted lines wrap rather than widen it."""
    if images:
        html = _DEFERRED_IMAGE.sub(r"\1src=", html)
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        '<base target="_blank"><style>body{font:14px/1.5 system-ui,sans-serif;margin:.4rem;'
        "color:#1d2430;overflow-wrap:anywhere}img{max-width:100%;height:auto}"
        "pre{white-space:pre-wrap}</style></head><body>"
        f"{html}</body></html>"
    )


@bp.route("/conversations/<int:conversation_id>/messages/<int:message_pk>/body")
@login_required
def message_body(conversation_id: int, message_pk: int):
    conversation = visible_conversation(conversation_id)  # 404 outside the user's inboxes
    message = db.session.get(Message, message_pk)
    if message is None or message.conversation_id != conversation.id or not message.html_body:
        abort(404, "No such message.")
    images = request.args.get("images") == "1"
    headers = {
        "Content-Security-Policy": frame_policy(images),
        "X-Frame-Options": "SAMEORIGIN",
        # Remote images loaded on request must not tell the tracker where they were read.
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "private, no-store",
    }
    return html_document(message.html_body, images), 200, headers
