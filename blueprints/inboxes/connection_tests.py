"""The IMAP and SMTP connection tests' answer, run from the wizard and from the settings page
alike (a test button per server, by htmx; without JavaScript the page renders the result)."""

from __future__ import annotations

from flask import render_template

from blueprints.inboxes.forms import ImapForm, connection_test


def test_fragment(which: str, kept_password: str | None):
    """The server's words; after a good IMAP test, the folder choice too (out of band)."""
    result = connection_test(which, kept_password)
    folders = None
    if which == "imap" and result.ok:
        folders = ImapForm(kept_password=kept_password).imap_folders
        folders.offer(result.folders)
    return render_template("inboxes/_test_result.html", result=result, folders=folders, oob=True)
