"""Connect an inbox with Microsoft 365 or Google (services/oauth.py does the OAuth 2.0 work):
Connect from the settings' Connection tab or from the wizard's IMAP/SMTP step (the inbox
does not exist yet, so the sign-in belongs to the draft until it is created), the provider's
callback, and Disconnect.

Connect posts the page's form (the wizard keeps what was typed) and answers with a redirect
to the provider's sign-in page: 303 for a plain form, HX-Redirect for htmx, whose XHR could
not follow it to another origin. The callback is the one GET that writes (it stores the
tokens): the provider can only come back with a GET.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from blueprints.guards import admin_required
from blueprints.htmx import navigate
from blueprints.inboxes.blueprint import bp
from blueprints.inboxes.forms.oauth import ConnectForm, DisconnectForm
from blueprints.inboxes.settings import render_settings
from blueprints.inboxes.shared import get_inbox
from blueprints.inboxes.wizard import load_draft, read_step, render_step
from extensions import db
from models import Inbox
from services import inbox_drafts, inbox_saving, oauth, oauth_status

CALLBACK_PATH = "/admin/oauth/callback"  # services.oauth.redirect_uri(): APP_URL + this


def enabled_provider(name: str) -> oauth.Provider:
    provider = oauth.PROVIDERS.get(name)
    if provider is None or not provider.enabled:
        abort(404, "Signing in with this provider is not configured on this server.")
    return provider


def connection_tab(inbox_id: int) -> str:
    return url_for("inboxes.edit", inbox_id=inbox_id, section="connection")


def wizard_servers(draft_id: str) -> str:
    return url_for("inboxes.wizard_step", draft_id=draft_id, step="connection")


@bp.post("/<int:inbox_id>/oauth/<provider>/connect")
@admin_required
def connect(inbox_id: int, provider: str):
    inbox = get_inbox(inbox_id)
    chosen = enabled_provider(provider)
    form = ConnectForm()
    url = started(form, chosen, inbox_id=inbox.id)
    if url is None:
        return render_settings(inbox, "connection", status=422, section="connection", connect=form)
    return navigate(url)


@bp.post("/new/<draft_id>/oauth/<provider>/connect")
@admin_required
def wizard_connect(draft_id: str, provider: str):
    """The step's fields are kept in the draft first, as Next or Back would."""
    draft = load_draft(draft_id)
    chosen = enabled_provider(provider)
    forms = read_step(draft, "connection")
    inbox_drafts.save(draft)
    form = ConnectForm()
    url = started(form, chosen, draft_id=draft.id)
    if url is None:
        return render_step(draft, "connection", forms, 422, connect=form)
    return navigate(url)


def started(form: ConnectForm, provider: oauth.Provider, **target) -> str | None:
    """The provider's sign-in URL, or None with what to fix on the form."""
    if not form.validate():
        return None
    try:
        return oauth.start(provider.name, form.mailbox.data, current_user.id, **target)
    except oauth.OAuthError as error:
        form.mailbox.errors.append(error.words)
        return None


@bp.post("/<int:inbox_id>/oauth/disconnect")
@admin_required
def disconnect(inbox_id: int):
    inbox = get_inbox(inbox_id)
    if not DisconnectForm().validate():
        abort(400, "This form expired. Reload the page and try again.")
    signed_in = inbox.oauth
    oauth.disconnect(inbox)
    if signed_in is not None:
        flash(signed_out(signed_in))
    return navigate(connection_tab(inbox.id))


@bp.post("/new/<draft_id>/oauth/disconnect")
@admin_required
def wizard_disconnect(draft_id: str):
    draft = load_draft(draft_id)
    if not DisconnectForm().validate():
        abort(400, "This form expired. Reload the page and try again.")
    read_step(draft, "connection")  # what was typed stays, as with Back
    signed_in = oauth.connection_for_draft(draft.id)
    if signed_in is not None:
        flash(signed_out(signed_in))
    inbox_drafts.forget_oauth(draft)
    return navigate(wizard_servers(draft.id))


def signed_out(conn) -> str:
    label = oauth.PROVIDERS[conn.provider].label
    return f"Disconnected from {label}: {conn.mailbox} now needs its password (or connect again)."


def callback():
    """Where the provider sends the admin back: store the tokens, then return to the page
    Connect was pressed on. What the provider refused is shown in its words (400)."""
    args = request.args
    state = args.get("state", "")
    pending = oauth.pending_target(state) or {}
    try:
        conn = oauth.complete(
            state,
            args.get("code"),
            args.get("error"),
            args.get("error_description"),
            current_user.id,
        )
    except oauth.OAuthError as error:
        return callback_failed(error.words, pending)
    connected = f"Connected to {oauth.PROVIDERS[conn.provider].label} as {conn.mailbox}."
    if conn.inbox is not None:
        inbox_saving.use_oauth_servers(conn.inbox, conn)
        flash(connected)
        return redirect(connection_tab(conn.inbox.id), 303)
    draft = inbox_drafts.load(conn.draft_id, current_user.id)
    if draft is None:
        return callback_failed(
            "The inbox draft this sign-in was for has expired. Start again with New inbox.", {}
        )
    inbox_drafts.use_oauth(draft, conn)
    flash(connected)
    return redirect(wizard_servers(draft.id), 303)


def callback_failed(words: str, pending: dict):
    """The error page, with a way back to the page Connect was pressed on, if known."""
    back, back_text = url_for("inboxes.index"), "Back to the inboxes"
    inbox = db.session.get(Inbox, pending["inbox_id"]) if pending.get("inbox_id") else None
    if inbox is not None:
        back, back_text = connection_tab(inbox.id), f"Back to {inbox.name}'s connection settings"
    elif pending.get("draft_id"):
        back, back_text = wizard_servers(pending["draft_id"]), "Back to the new inbox"
    page = render_template("inboxes/oauth_error.html", words=words, back=back, back_text=back_text)
    return page, 400


@bp.app_context_processor
def reconnect_banner():
    """base.html's banner on every page; the query runs only where it is shown (admins)."""
    return {"oauth_reconnects": oauth_status.reconnects_needed}


# The callback's path is outside the blueprint's /admin/inboxes prefix (it is what admins
# register with Microsoft and Google, so it stays short and fixed), yet it is an inbox page:
# its endpoint is inboxes.oauth_callback, and the inboxes' template helpers apply.
bp.record_once(
    lambda state: state.app.add_url_rule(
        CALLBACK_PATH, "inboxes.oauth_callback", admin_required(callback), methods=["GET"]
    )
)
