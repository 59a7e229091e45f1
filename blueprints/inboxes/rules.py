"""Automation rules, managed by admins: an inbox's in its settings (the Rules tab, new/edit
pages under /admin/inboxes/<id>/rules) and the global ones (inbox NULL, run for every inbox
first) under /admin/rules, on a blueprint of their own (`global_bp`). One set of views and
templates serves both; `Scope` says which and builds the links.

The rule form re-renders itself for "Add condition", "Remove", "Try it" (a dry run of the
rule as typed against a stored email, nothing saved), so it works without JavaScript."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select

from blueprints.guards import admin_required
from blueprints.inboxes.blueprint import bp
from blueprints.inboxes.forms.rules import ActionRow, RuleForm
from blueprints.inboxes.shared import get_inbox
from extensions import db
from models import Inbox, InboxMember, Message, User
from models.automations import AutomationRule
from services import automation_settings

global_bp = Blueprint("rules", __name__, url_prefix="/admin/rules")

SAMPLES = 20


@dataclass
class Scope:
    """An inbox's rules, or (inbox None) the global ones: the links of each."""

    inbox: Inbox | None

    def url(self, name: str, **values) -> str:
        if self.inbox is None:
            return url_for(f"rules.{name}", **values)
        return url_for(f"inboxes.{name}", inbox_id=self.inbox.id, **values)

    @property
    def list_url(self) -> str:
        if self.inbox is None:
            return url_for("rules.index")
        return url_for("inboxes.edit", inbox_id=self.inbox.id, section="rules")


class ButtonForm(FlaskForm):
    """Only the CSRF token: move, enable/disable and delete are buttons."""


def user_names() -> dict[int, str]:
    return dict(db.session.execute(select(User.id, User.name)).all())


def rules_context(inbox: Inbox | None) -> dict:
    """What the rules list needs (the settings' Rules tab and the global page)."""
    from services.automations.catalog import describe_action, describe_condition

    names = user_names()

    def summary(rule: AutomationRule) -> str:
        joiner = " and " if rule.match == "all" else " or "
        when = joiner.join(describe_condition(c) for c in rule.conditions) or "(no condition)"
        then = "; ".join(describe_action(a, names) for a in rule.actions) or "(no action)"
        return f"When {when}: {then}."

    return {
        "scope": Scope(inbox),
        "rules": automation_settings.rules_of(inbox),
        "global_rules": automation_settings.rules_of(None) if inbox else [],
        "summary": summary,
        "button_form": ButtonForm(formdata=None),
    }


@global_bp.get("")
@admin_required
def index():
    return render_template("admin/rules.html", **rules_context(None))


def _options(inbox: Inbox | None) -> dict:
    """The people, saved replies and sample emails the rule form offers."""
    from services.automations.catalog import usable_saved_replies

    users = list(db.session.scalars(select(User).where(User.active).order_by(User.name)))
    members = set()
    if inbox is not None:
        query = select(InboxMember.user_id).where(InboxMember.inbox_id == inbox.id)
        members = set(db.session.scalars(query))
    assignees = [u for u in users if u.is_admin or u.id in members]
    query = select(Message).where(Message.direction == "incoming")
    if inbox is not None:
        query = query.where(Message.inbox_id == inbox.id)
    samples = db.session.scalars(query.order_by(Message.id.desc()).limit(SAMPLES))
    return {
        "people": [(str(u.id), u.name) for u in users],
        "assignees": [(str(u.id), u.name + (" (admin)" if u.is_admin else "")) for u in assignees],
        "replies": [(str(r.id), r.name) for r in usable_saved_replies(inbox)],
        "samples": [
            (str(m.id), f"{m.subject or '(no subject)'} — {m.from_display}") for m in samples
        ],
    }


def _stored_data(rule: AutomationRule) -> dict:
    """A stored rule as the form's data."""
    actions = []
    for action in rule.actions:
        row = dict(action)
        if "user_id" in row:
            row["user_id"] = str(row["user_id"])
        if "user_ids" in row:
            row["user_ids"] = [str(i) for i in row["user_ids"]]
        if "labels" in row:
            row["labels"] = ", ".join(row["labels"])
        if "hours" in row:
            row["hours"] = str(row["hours"])
        if "saved_reply_id" in row:
            row["saved_reply_id"] = str(row["saved_reply_id"])
        actions.append(row)
    return {
        "name": rule.name,
        "match": rule.match,
        "conditions": [dict(c) for c in rule.conditions],
        "actions": actions,
        "stop_after": rule.stop_after,
        "enabled": rule.enabled,
    }


def rule_page(inbox: Inbox | None, rule: AutomationRule | None = None):
    """New or edit: show the form; on POST add/remove a row, try the rule, or save it."""
    options = _options(inbox)
    if request.method == "GET":
        data = _stored_data(rule) if rule else None
        form = RuleForm(formdata=None, data=data, **options)
        return _render(inbox, rule, form)
    form = RuleForm(**options)
    if not form.validate_on_submit():  # only the CSRF token and the all/any choice
        return _render(inbox, rule, form, status=422)
    go = request.form.get("go", "save")
    added = None
    if go in ("add_condition", "add_action"):
        rows = form.conditions if go == "add_condition" else form.actions
        if len(rows) < rows.max_entries:
            added = rows.append_entry()
            form.fill_choices()
        return _render(inbox, rule, form, added=added)
    if go.startswith("remove_"):
        name, _, index = go.removeprefix("remove_").partition("-")
        rows = {"condition": form.conditions, "action": form.actions}.get(name)
        if rows is not None and index.isdigit() and int(index) < len(rows.entries):
            rows.entries.pop(int(index))
        return _render(inbox, rule, form)
    if go == "refresh":
        return _render(inbox, rule, form)
    clean = _validated(inbox, form)
    if clean is None:
        return _render(inbox, rule, form, status=422)
    if go == "try":
        return _render(inbox, rule, form, trial=_dry_run(inbox, clean, form.sample.data))
    saved = automation_settings.save_rule(
        inbox, rule, clean, enabled=form.enabled.data, stop_after=form.stop_after.data
    )
    flash(f"The rule “{saved.name}” is saved.")
    return redirect(Scope(inbox).list_url, 303)


def _validated(inbox: Inbox | None, form: RuleForm):
    from services.automations.catalog import RuleError, validate_rule

    conditions, condition_rows = form.rows("conditions")
    actions, action_rows = form.rows("actions")
    try:
        return validate_rule(inbox, form.name.data, form.match.data, conditions, actions)
    except RuleError as exc:
        form.show_error(exc.where, str(exc), {"conditions": condition_rows, "actions": action_rows})
        return None


def _dry_run(inbox: Inbox | None, clean, message_id: str):
    """The engine's verdict on one stored email, or a note saying what is missing."""
    from services.automations.engine import dry_run

    message = db.session.get(Message, int(message_id)) if (message_id or "").isdigit() else None
    if message is None or message.direction != "incoming":
        return {"missing": "Choose one of the emails in the list."}
    if inbox is not None and message.inbox_id != inbox.id:
        return {"missing": "Choose one of this inbox's emails."}
    result = dry_run(inbox or db.session.get(Inbox, message.inbox_id), clean, message)
    return {"message": message, "result": result}


def _render(inbox, rule, form: RuleForm, status: int = 200, added=None, trial=None):
    from services.automations.catalog import CONDITIONS, TEXT_OPS

    param_types: dict[str, list[str]] = {}
    for kind, names in ActionRow.PARAMETERS.items():
        for name in names:
            param_types.setdefault(name, []).append(kind)
    context = {
        "inbox": inbox,
        "rule": rule,
        "form": form,
        "scope": Scope(inbox),
        "added": added,
        "trial": trial,
        "conditions_spec": CONDITIONS,
        "text_ops": TEXT_OPS,
        "op_labels": {name: spec.ops for name, spec in CONDITIONS.items()},
        "param_types": param_types,
    }
    return render_template("inboxes/rule.html", **context), status


def _rule_or_404(inbox: Inbox | None, rule_id: int) -> AutomationRule:
    rule = automation_settings.rule_of(inbox, rule_id)
    if rule is None:
        abort(404, "There is no such rule.")
    return rule


def _button(inbox: Inbox | None, rule_id: int) -> AutomationRule:
    """The rule a list button names, once the form's CSRF token checks out."""
    rule = _rule_or_404(inbox, rule_id)
    if not ButtonForm().validate_on_submit():
        abort(400, "The form expired; open the rules again.")
    return rule


def move(inbox: Inbox | None, rule_id: int):
    rule = _button(inbox, rule_id)
    step = -1 if request.form.get("direction") == "up" else 1
    automation_settings.move_rule(inbox, rule, step)
    return redirect(Scope(inbox).list_url + f"#rule-{rule.id}", 303)


def toggle(inbox: Inbox | None, rule_id: int):
    rule = _button(inbox, rule_id)
    automation_settings.set_enabled(rule, not rule.enabled)
    flash(f"The rule “{rule.name}” is {'enabled' if rule.enabled else 'disabled'}.")
    return redirect(Scope(inbox).list_url + f"#rule-{rule.id}", 303)


def delete(inbox: Inbox | None, rule_id: int):
    rule = _button(inbox, rule_id)
    name = rule.name
    automation_settings.delete_rule(rule)
    flash(f"The rule “{name}” is deleted.")
    return redirect(Scope(inbox).list_url, 303)


def edit(inbox: Inbox | None, rule_id: int):
    return rule_page(inbox, _rule_or_404(inbox, rule_id))


def register_rule_routes(blueprint: Blueprint, prefix: str, with_inbox: bool) -> None:
    """The rule views on `blueprint`, under the same endpoint names for both scopes (so
    `Scope.url` needs only the blueprint's name): an inbox's take `inbox_id` from the path."""

    def scoped(view):
        def inbox_view(inbox_id: int, **kwargs):
            return view(get_inbox(inbox_id), **kwargs)

        def global_view(**kwargs):
            return view(None, **kwargs)

        return admin_required(inbox_view if with_inbox else global_view)

    for path, endpoint, view, methods in (
        ("/new", "rule_new", rule_page, ["GET", "POST"]),
        ("/<int:rule_id>", "rule_edit", edit, ["GET", "POST"]),
        ("/<int:rule_id>/move", "rule_move", move, ["POST"]),
        ("/<int:rule_id>/toggle", "rule_toggle", toggle, ["POST"]),
        ("/<int:rule_id>/delete", "rule_delete", delete, ["POST"]),
    ):
        blueprint.add_url_rule(prefix + path, endpoint, scoped(view), methods=methods)


register_rule_routes(bp, "/<int:inbox_id>/rules", with_inbox=True)
register_rule_routes(global_bp, "", with_inbox=False)
