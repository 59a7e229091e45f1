"""The contact page: who the customer is and every conversation with them the user may see."""

from __future__ import annotations

from flask import Blueprint, abort, make_response, render_template, request
from flask_login import current_user, login_required
from sqlalchemy import select

from extensions import db
from models import Contact, Inbox
from services.conversation_list import contact_conversations

bp = Blueprint("contacts", __name__, url_prefix="/contacts")


@bp.route("/<int:contact_id>")
@login_required
def show(contact_id: int):
    contact = db.session.get(Contact, contact_id)
    if contact is None:
        abort(404, "No such contact.")
    rows = contact_conversations(current_user, contact)
    if not rows and not current_user.is_admin:
        # 404, not 403: an agent must not learn that a contact exists in another inbox.
        abort(404, "No such contact.")
    inbox_ids = {row.conversation.inbox_id for row in rows}
    inbox_names = dict(
        db.session.execute(select(Inbox.id, Inbox.name).where(Inbox.id.in_(inbox_ids))).all()
    )
    hx = bool(request.headers.get("HX-Request"))
    template = "contacts/_conversations.html" if hx else "contacts/show.html"
    response = make_response(
        render_template(template, contact=contact, rows=rows, inbox_names=inbox_names)
    )
    response.headers.add("Vary", "HX-Request")
    return response
