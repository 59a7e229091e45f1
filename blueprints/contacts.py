"""The contact page (who the customer is and every conversation with them the user may see),
the contact panel beside a thread, and editing a contact's name and notes from either."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import StringField, TextAreaField
from wtforms.validators import ValidationError

from blueprints.htmx import is_htmx
from blueprints.redirects import local_path
from extensions import db
from models import Contact, Conversation, Inbox
from services import contacts as contact_service
from services.conversation_list import contact_conversations

bp = Blueprint("contacts", __name__, url_prefix="/contacts")


class ContactNameForm(FlaskForm):
    name = StringField("Name", description="As the team sees it; empty shows the email address.")

    def validate_name(self, field):
        if len(" ".join((field.data or "").split())) > contact_service.NAME_MAX:
            raise ValidationError(f"A name has at most {contact_service.NAME_MAX} characters.")


class ContactNotesForm(FlaskForm):
    notes = TextAreaField(
        "Notes about this contact",
        description="Seen by the team only, never sent to the customer.",
    )

    def validate_notes(self, field):
        if len((field.data or "").strip()) > contact_service.NOTES_MAX:
            raise ValidationError(f"Notes have at most {contact_service.NOTES_MAX:,} characters.")


def contact_forms(contact: Contact) -> dict:
    """Blank forms filled from the contact (the panel and the contact page draw both)."""
    return {
        "name": ContactNameForm(obj=contact, formdata=None),
        "notes": ContactNotesForm(obj=contact, formdata=None),
    }


@bp.app_template_global("contact_panel_for")
def contact_panel_for(conversation: Conversation) -> dict:
    """What templates/conversations/_contact_panel.html draws beside a thread: the panel, the
    key its drawing is kept under (blueprints/fragment_cache.py) and its forms, built only
    when it is drawn."""
    panel = contact_service.contact_panel(current_user, conversation)
    return {
        "panel": panel,
        "key": _panel_key(panel, conversation),
        "contact_forms": lambda: contact_forms(panel.contact),
    }


def _panel_key(panel: contact_service.ContactPanel, conversation: Conversation) -> tuple:
    """Everything the panel draws (the contact, the other people on the conversation, the
    contact's other conversations as this agent may see them) and whom for."""
    contact = panel.contact
    return (
        "contact-panel",
        current_user.id,  # never drawn for anyone else
        request.script_root,
        conversation.id,
        contact.id,
        contact.name,
        contact.email,
        contact.notes,
        tuple((p.name, p.address, p.third_party) for p in panel.participants),
        tuple(
            (c.id, c.display_number, c.subject, c.status, c.inbox_id, c.last_activity_at)
            for c in panel.earlier
        ),
        panel.earlier_total,
        tuple(sorted(panel.inbox_names.items())),
    )


def _visible_contact(contact_id: int) -> Contact:
    contact = db.session.get(Contact, contact_id)
    if contact is None or not contact_service.can_see_contact(current_user, contact):
        # 404, not 403: an agent must not learn that a contact exists in another inbox.
        abort(404, "No such contact.")
    return contact


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
    template = "contacts/_conversations.html" if is_htmx() else "contacts/show.html"
    return _contact_page(template, contact, rows, contact_forms(contact))


def _contact_page(template: str, contact: Contact, rows: list, forms: dict, status: int = 200):
    inbox_ids = {row.conversation.inbox_id for row in rows}
    inbox_names = dict(
        db.session.execute(select(Inbox.id, Inbox.name).where(Inbox.id.in_(inbox_ids))).all()
    )
    body = render_template(
        template, contact=contact, rows=rows, inbox_names=inbox_names, contact_forms=forms
    )
    return body, status, {"Vary": "HX-Request"}


@bp.route("/<int:contact_id>/name", methods=["POST"])
@login_required
def update_name(contact_id: int):
    contact = _visible_contact(contact_id)
    form = ContactNameForm()
    return _save(contact, form, "name", "contacts/_identity.html")


@bp.route("/<int:contact_id>/notes", methods=["POST"])
@login_required
def update_notes(contact_id: int):
    contact = _visible_contact(contact_id)
    form = ContactNotesForm()
    return _save(contact, form, "notes", "contacts/_notes.html")


def _save(contact: Contact, form: FlaskForm, name: str, partial: str):
    """Validate, change through the service, answer with the section (htmx) or go back."""
    saved = False
    if form.validate_on_submit():
        try:
            contact_service.update_contact(contact, **{name: form[name].data or ""})
            saved = True
        except contact_service.ContactError as exc:
            form[exc.field].errors = [str(exc)]
    forms = contact_forms(contact)
    if not saved:
        forms[name] = form
    if is_htmx():
        body = render_template(partial, contact=contact, contact_forms=forms, saved=saved)
        return body, (200 if saved else 422), {"Vary": "HX-Request"}
    if not saved:  # without htmx: the contact page, with what to fix beside the field
        rows = contact_conversations(current_user, contact)
        return _contact_page("contacts/show.html", contact, rows, forms, 422)
    back = local_path(request.form.get("next"))
    return redirect(back or url_for("contacts.show", contact_id=contact.id))
