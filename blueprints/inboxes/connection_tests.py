"""The IMAP and SMTP connection tests, run from the wizard and from the settings page alike
(a test button per server, by htmx or as a plain form submit)."""

from __future__ import annotations

from flask import render_template, request

from services import inbox_setup
from services.inbox_connections import ConnectionResult, test_imap, test_smtp

CONNECTION_FIELDS = ("host", "port", "security", "username", "password", "auth_method")


def run_test(which: str, values: dict, kept_password: str | None, typed: str = ""):
    """One connection test; a blank password field uses the kept one."""
    fields = inbox_setup.check_imap if which == "imap" else inbox_setup.check_smtp
    password = typed or kept_password or ""
    args = (values, bool(password)) if which == "imap" else (values, bool(password), True)
    missing = {k: v for k, v in fields(*args).items() if k.split("_", 1)[1] in CONNECTION_FIELDS}
    if missing:
        return ConnectionResult(False, "Fill in first: " + " ".join(missing.values()))
    tester = test_imap if which == "imap" else test_smtp
    return tester(values, password)


def test_fragment(which: str, values: dict, kept_password: str | None):
    typed = request.form.get(f"{which}_password", "")
    values = {**values, **inbox_setup.read_section(request.form, which)}
    result = run_test(which, values, kept_password, typed)
    return render_template(
        "inboxes/_test_result.html", which=which, result=result, values=values, oob=True
    )
