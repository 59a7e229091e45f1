"""The IMAP and SMTP connection tests' answer, run from the wizard and from the settings page
alike (a test button per server, by htmx; without JavaScript the page renders the result)."""

from __future__ import annotations

from flask import render_template

from blueprints.inboxes.forms import ImapForm, connection_test


def test_fragment(which: str, kept_password: str | None, oauth_connection=None):
    """The server's words; after a good IMAP test, the folder choice too (out of band).
    `oauth_connection`: signed in with Microsoft 365 or Google, the test uses its token."""
    result = connection_test(which, kept_password, oauth_connection)
    folders = None
    if which == "imap" and result.ok:
        folders = ImapForm(kept_password=kept_password, oauth=oauth_connection).imap_folders
        folders.offer(result.folders)
    return render_template("inboxes/_test_result.html", result=result, folders=folders, oob=True)
