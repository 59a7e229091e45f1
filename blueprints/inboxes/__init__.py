"""Admin inbox pages: the list (index.py), the setup wizard (wizard.py, steps.py), its test
email step (test_mail.py), the settings (settings.py; the Addresses tab: aliases.py) and the
connection tests both run (connection_tests.py), and signing an inbox in with Microsoft 365
or Google (oauth.py); wizard and settings show the same Flask-WTF form per inbox section
(forms/). Each inbox's health page is the inbound log's (blueprints/inbound.py).

`bp` lives in blueprint.py so that every view module imports it from there rather than from
another view module; importing the views here, once, registers their routes on it.
"""

from __future__ import annotations

from blueprints.inboxes import (  # noqa: F401
    aliases,
    archive,
    blocked_senders,
    hours,
    index,
    oauth,
    rules,
    settings,
    shared,
    signature,
    test_mail,
    wizard,
)
from blueprints.inboxes.blueprint import bp
from blueprints.inboxes.rules import global_bp

__all__ = ["bp", "global_bp"]
