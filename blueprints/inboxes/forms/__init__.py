"""The inbox forms: one Flask-WTF form per section of an inbox, shared by the setup wizard
(a step shows one or two sections) and the settings page (a card saves one or three).

A form's `values()` are its fields as plain data (strings, lists of strings, booleans),
without passwords: the wizard keeps them in its Redis draft, services/inbox_saving.py writes
them to the inbox, and `Form(formdata=None, data=values)` shows them again. A blank password
field means "keep the stored one" (`kept_password`), and a password is never rendered back.

The live IMAP/SMTP tests stay in services/inbox_connections.py; `check_sections` runs them
as the forms' last check, once every field is right. An inbox signed in with Microsoft 365
or Google (`oauth`) is tested with its access token instead of a password.
"""

from __future__ import annotations

from blueprints.inboxes.forms.sections import (
    AgentsForm,
    BasicsForm,
    IdentityForm,
    ModeForm,
    SectionForm,
)
from blueprints.inboxes.forms.servers import ImapForm, SmtpForm
from services import inbox_setup
from services.inbox_connections import ConnectionResult, test_imap, test_smtp
from services.oauth import PROVIDERS, OAuthError, OAuthRevoked, access_token

SECTION_FORMS: dict[str, type[SectionForm]] = {
    "basics": BasicsForm,
    "mode": ModeForm,
    "imap": ImapForm,
    "smtp": SmtpForm,
    "identity": IdentityForm,
    "agents": AgentsForm,
}


def make_forms(
    sections,
    values: dict,
    *,
    posted=(),
    kept: dict | None = None,
    inbox_id: int | None = None,
    oauth_connection=None,
) -> dict[str, SectionForm]:
    """The forms of these sections: a posted one reads the request, the others show `values`.
    `values` are updated with what was posted, so SMTP knows the mode just chosen.
    `oauth_connection`: the inbox (or draft) is signed in with Microsoft 365 or Google."""
    values, kept, forms = dict(values), kept or {}, {}
    for section in sections:
        options: dict = {} if section in posted else {"formdata": None, "data": values}
        if section == "basics":
            options["inbox_id"] = inbox_id
        elif section in ("imap", "smtp"):
            options["kept_password"] = kept.get(section)
            options["oauth"] = oauth_connection
        if section == "smtp":
            options["required"] = inbox_setup.smtp_required(values)
        elif section == "agents":
            options["auto_assign"] = values["auto_assign"]
        forms[section] = form = SECTION_FORMS[section](**options)
        if section in posted:
            values.update(form.values())
    return forms


def values_of(forms: dict[str, SectionForm], base: dict) -> dict:
    """`base` with every form's values on top."""
    values = dict(base)
    for form in forms.values():
        values.update(form.values())
    return values


def typed_passwords(forms: dict[str, SectionForm]) -> dict[str, str]:
    return {k: forms[k].password_field.data or "" for k in ("imap", "smtp") if k in forms}


def check_sections(
    forms: dict[str, SectionForm], values: dict
) -> tuple[bool, dict[str, ConnectionResult]]:
    """Validate the forms (IMAP only in IMAP mode); once the servers' fields are right, test
    the servers live: a failing test is the form's error unless its override is ticked."""
    checked = [f for name, f in forms.items() if name != "imap" or values["mode"] == "imap"]
    valid = all([form.validate() for form in checked])
    if not valid or "smtp" not in forms:
        return valid, {}
    imap, smtp = forms.get("imap"), forms["smtp"]
    tested = [
        which
        for which, shown in (
            ("imap", imap is not None and values["mode"] == "imap"),
            ("smtp", bool(values["smtp_host"])),
        )
        if shown and not values[f"{which}_override"]
    ]
    token, refused = signed_in_token(smtp.oauth) if tested else ("", "")
    if refused:  # no test can sign in; the fix is to reconnect (or to save anyway)
        errors, results = {f"{which}_test": refused for which in tested}, {}
    else:
        errors, results = inbox_setup.check_connections(
            values, imap.password() if imap else None, smtp.password(), oauth_token=token
        )
    if imap is not None and "imap_test" in errors:
        imap.form_errors.append(errors["imap_test"])
    if imap is not None and "imap_folders" in errors:
        imap.imap_folders.errors.append(errors["imap_folders"])
    if "smtp_test" in errors:
        smtp.form_errors.append(errors["smtp_test"])
    show_results(forms, results)
    return not errors, results


def show_results(forms: dict[str, SectionForm], results: dict[str, ConnectionResult]) -> None:
    """After a good IMAP test, the folders become check boxes of the server's folders."""
    imap = results.get("imap")
    if imap is not None and imap.ok and "imap" in forms:
        forms["imap"].imap_folders.offer(imap.folders)


def connection_test(
    which: str, kept_password: str | None, oauth_connection=None
) -> ConnectionResult:
    """A test button: sign in with the posted fields (a blank password uses the kept one),
    or with the access token when the inbox is signed in with Microsoft 365 or Google."""
    form = (
        ImapForm(kept_password=kept_password, oauth=oauth_connection)
        if which == "imap"
        else SmtpForm(kept_password=kept_password, oauth=oauth_connection, required=True)
    )
    missing = form.missing_for_test()
    if missing:
        return ConnectionResult(False, "Fill in first: " + " ".join(missing))
    token, refused = signed_in_token(oauth_connection)
    if refused:
        return ConnectionResult(False, refused)
    tester = test_imap if which == "imap" else test_smtp
    return tester(form.values(), form.password() or "", oauth_token=token)


def signed_in_token(connection) -> tuple[str, str]:
    """(access token, "") for a signed-in inbox, ("", "") for a password one, and ("", what
    went wrong) when the provider would not give a token (revoked, unreachable)."""
    if connection is None:
        return "", ""
    try:
        return access_token(connection), ""
    except OAuthRevoked as error:
        label = PROVIDERS[connection.provider].label
        return "", f"{error.words} Reconnect with {label} to sign in again."
    except OAuthError as error:
        return "", f"No access token: {error.words}. Try again in a moment."
