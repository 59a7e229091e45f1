"""The settings' Addresses tab: an inbox's aliases (more addresses that are this inbox: mail
to them is routed here and a reply goes out from the one the customer wrote to). Add, Remove
and Send test email are POST forms; the logic, and what refuses an address, is
services/inbox_aliases.py. Each alias shows whether its test email came back through it."""

from __future__ import annotations

from flask import abort, flash, redirect, url_for
from flask_login import current_user

from blueprints.guards import admin_required
from blueprints.inboxes.blueprint import bp
from blueprints.inboxes.forms.aliases import AliasActionForm, AliasForm
from blueprints.inboxes.shared import get_inbox
from models import Inbox, InboxAddress
from services import inbox_aliases
from services.inbox_test_mail import TestMailError


def tab_context(inbox: Inbox, tab: str, extra: dict) -> dict:
    """The list (each alias with its verification state) and the forms, for the tab."""
    if tab != "aliases":
        return {}
    return {
        "aliases": [(alias, *inbox_aliases.status(alias)) for alias in inbox.aliases],
        "alias_form": extra.get("alias_form") or AliasForm(formdata=None),
        "alias_action": AliasActionForm(formdata=None),
    }


def _render(inbox: Inbox, status: int, **extra):
    from blueprints.inboxes.settings import render_settings  # it renders this tab too

    return render_settings(inbox, "aliases", status=status, **extra)


def _back(inbox: Inbox):
    return redirect(url_for("inboxes.edit", inbox_id=inbox.id, section="aliases"), 303)


@bp.post("/<int:inbox_id>/aliases")
@admin_required
def add_alias(inbox_id: int):
    inbox = get_inbox(inbox_id)
    form = AliasForm()
    if form.validate_on_submit():
        try:
            alias = inbox_aliases.add(inbox, form.address.data)
        except inbox_aliases.AliasError as exc:
            form.address.errors.append(str(exc))
        else:
            flash(f"{alias.address} added. Send a test email to check that it reaches this inbox.")
            return _back(inbox)
    return _render(inbox, 422, alias_form=form)


def _posted_alias(inbox: Inbox, alias_id: int) -> InboxAddress:
    if not AliasActionForm().validate_on_submit():
        abort(400, "The form expired: reload the page and try again.")
    alias = inbox_aliases.find(inbox, alias_id)
    if alias is None:
        abort(404, "This inbox has no such address.")
    return alias


@bp.post("/<int:inbox_id>/aliases/<int:alias_id>/remove")
@admin_required
def remove_alias(inbox_id: int, alias_id: int):
    inbox = get_inbox(inbox_id)
    alias = _posted_alias(inbox, alias_id)
    address = alias.address
    inbox_aliases.remove(alias)
    flash(f"{address} removed: mail to it no longer reaches this inbox.")
    return _back(inbox)


@bp.post("/<int:inbox_id>/aliases/<int:alias_id>/test")
@admin_required
def test_alias(inbox_id: int, alias_id: int):
    inbox = get_inbox(inbox_id)
    alias = _posted_alias(inbox, alias_id)
    try:
        inbox_aliases.send_test(inbox, alias, current_user.email)
    except TestMailError as exc:
        return _render(inbox, 422, alias_error=(alias.id, str(exc)))
    flash(
        f"Test email sent to {alias.address}. It is verified once the email arrives here "
        "through that address; reload this page in a minute."
    )
    return _back(inbox)
