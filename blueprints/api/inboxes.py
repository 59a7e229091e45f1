"""What a caller can see around its conversations: its inboxes with their open counts, the
labels in use there, and a contact with the conversations the caller may read."""

from __future__ import annotations

from blueprints.api.blueprint import ApiError, api_user, bp, json_response
from blueprints.api.inputs import find
from blueprints.api.serialise import contact_json, conversation_json, iso
from extensions import db
from models import Contact
from services.access import visible_inboxes_query
from services.conversation_list import contact_conversations
from services.labels import labels_visible_to
from services.workspace import count_open


@bp.get("/inboxes")
def inboxes():
    rows = db.session.scalars(visible_inboxes_query(api_user())).all()
    open_counts = count_open(api_user(), [i.id for i in rows])["per_inbox"]
    return json_response(
        {
            "inboxes": [
                {
                    "id": inbox.id,
                    "name": inbox.name,
                    "support_address": inbox.support_address,
                    "mode": inbox.mode,
                    "open_conversations": open_counts.get(inbox.id, 0),
                }
                for inbox in rows
            ]
        }
    )


@bp.get("/labels")
def labels():
    """Labels used in the caller's inboxes (every label for an admin), as the sidebar shows."""
    return json_response(
        {
            "labels": [
                {"name": label.name, "display_name": label.display_name, "color": label.color}
                for label in labels_visible_to(api_user())
            ]
        }
    )


@bp.get("/contacts/<int:contact_id>")
def contact(contact_id: int):
    found = find(Contact, contact_id)
    rows = contact_conversations(api_user(), found) if found is not None else []
    if found is None or (not rows and not api_user().is_admin):
        raise ApiError(404, f"contact {contact_id}: no such contact")
    return json_response(
        {
            **contact_json(found),
            "created_at": iso(found.created_at),
            "conversations": [conversation_json(row) for row in rows],
        }
    )
