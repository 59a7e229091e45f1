"""Saved replies: the management page (`/saved-replies`) and the composer's picker.

The page lists what the user may use, grouped (for everyone, per inbox, yours); admins
create and change the shared ones, everyone their own personal ones. The picker
(templates/saved_replies/_picker.html, static/replies.js) asks for the replies usable in a
conversation, then for one of them with its variables filled in, as plain text to insert.
Conversations and replies the user may not see are 404, as everywhere.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, make_response, redirect, render_template, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, ValidationError

from blueprints.form_fields import strip
from blueprints.htmx import navigate
from services import saved_replies
from services.access import visible_conversation

bp = Blueprint("saved_replies", __name__)


class ActionForm(FlaskForm):
    """Only the CSRF token: the button itself is the whole request."""


class SavedReplyForm(FlaskForm):
    name = StringField(
        "Name",
        validators=[
            DataRequired("the name is empty"),
            Length(max=saved_replies.NAME_MAX, message="the name is too long"),
        ],
        filters=[strip],
        description="Short, to find it in the composer: type / and the first letters.",
    )
    body = TextAreaField(
        "Text",
        validators=[
            DataRequired("the text is empty"),
            Length(max=saved_replies.BODY_MAX, message="the text is too long"),
        ],
        description="Plain text, as it will be emailed. Variables such as {{contact.first_name}} "
        "are filled in when the reply is inserted (the list is below).",
    )
    scope = SelectField("Who can use it", validate_choice=False)

    def __init__(self, user, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.scope.choices = saved_replies.scope_choices(user)
        if not self.scope.data:
            self.scope.data = saved_replies.PERSONAL

    def validate_scope(self, field):
        if field.data not in {value for value, _ in field.choices}:
            raise ValidationError("choose who can use this reply from the list")


def _no_store(body, status: int = 200):
    return body, status, {"Cache-Control": "no-store"}


def _index_page(form: SavedReplyForm | None = None, status: int = 200):
    return _no_store(
        render_template(
            "saved_replies/index.html",
            groups=saved_replies.grouped_replies(current_user),
            form=form or SavedReplyForm(current_user, formdata=None),
            action_form=ActionForm(formdata=None),
            variables=saved_replies.VARIABLES,
        ),
        status,
    )


def _edit_page(reply, form: SavedReplyForm | None = None, status: int = 200):
    if form is None:
        form = SavedReplyForm(
            current_user,
            formdata=None,
            obj=reply,
            scope=saved_replies.scope_of(reply),
        )
    return _no_store(
        render_template(
            "saved_replies/edit.html",
            reply=reply,
            form=form,
            action_form=ActionForm(formdata=None),
            variables=saved_replies.VARIABLES,
        ),
        status,
    )


def _manageable(reply_id: int):
    reply = saved_replies.visible_reply(current_user, reply_id)
    if reply is None:
        abort(404, "No such saved reply.")
    if not saved_replies.can_manage(current_user, reply):
        abort(403, "Only admins can change shared saved replies.")
    return reply


@bp.get("/saved-replies")
@login_required
def index():
    return _index_page()


@bp.post("/saved-replies")
@login_required
def create():
    form = SavedReplyForm(current_user)
    if form.validate():
        try:
            reply = saved_replies.create_reply(
                current_user, form.name.data, form.body.data, form.scope.data
            )
        except (saved_replies.SavedReplyError, saved_replies.NotAllowed) as exc:
            form.form_errors.append(f"Not saved: {exc}.")
        else:
            flash(f"Saved “{reply.name}”.")
            return redirect(url_for(".index", _anchor=f"reply-{reply.id}"), 303)
    else:
        form.form_errors.append("Not saved: fix what is marked below.")
    return _index_page(form, 422)


@bp.get("/saved-replies/<int:reply_id>/edit")
@login_required
def edit(reply_id: int):
    return _edit_page(_manageable(reply_id))


@bp.post("/saved-replies/<int:reply_id>")
@login_required
def update(reply_id: int):
    reply = _manageable(reply_id)
    form = SavedReplyForm(current_user)
    if form.validate():
        try:
            saved_replies.update_reply(
                current_user, reply, form.name.data, form.body.data, form.scope.data
            )
        except (saved_replies.SavedReplyError, saved_replies.NotAllowed) as exc:
            form.form_errors.append(f"Not saved: {exc}.")
        else:
            flash(f"Saved “{reply.name}”.")
            return redirect(url_for(".index", _anchor=f"reply-{reply.id}"), 303)
    else:
        form.form_errors.append("Not saved: fix what is marked below.")
    return _edit_page(reply, form, 422)


@bp.post("/saved-replies/<int:reply_id>/delete")
@login_required
def delete(reply_id: int):
    reply = _manageable(reply_id)
    if not ActionForm().validate():
        abort(400, "This form expired. Reload the page and try again.")
    name = reply.name
    saved_replies.delete_reply(current_user, reply)
    flash(f"Deleted “{name}”.")
    return navigate(url_for(".index"))  # (htmx: hx-confirm asked first; the whole page follows)


# --- the composer's picker ------------------------------------------------------------


def _conversation(conversation_id: int):
    conversation = visible_conversation(current_user, conversation_id)
    if conversation is None:
        abort(404, "No such conversation.")
    return conversation


@bp.get("/conversations/<int:conversation_id>/saved-replies")
@login_required
def options(conversation_id: int):
    """The picker's list: the replies usable in this conversation, as listbox options."""
    conversation = _conversation(conversation_id)
    values = saved_replies.variable_values(current_user, conversation)
    options = [
        (reply, saved_replies.scope_of(reply), saved_replies.render_text(reply.body, values))
        for reply in saved_replies.usable_replies(current_user, conversation)
    ]
    response = make_response(
        render_template("saved_replies/_options.html", conversation=conversation, options=options)
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/conversations/<int:conversation_id>/saved-replies/<int:reply_id>")
@login_required
def rendered(conversation_id: int, reply_id: int):
    """One reply with its variables filled in for this conversation, as plain text."""
    conversation = _conversation(conversation_id)
    reply = saved_replies.usable_reply(current_user, conversation, reply_id)
    if reply is None:
        abort(404, "No such saved reply.")
    text = saved_replies.render_reply(reply, current_user, conversation)
    response = make_response(text)
    response.headers["Content-Type"] = "text/plain; charset=utf-8"
    response.headers["Cache-Control"] = "no-store"
    return response
