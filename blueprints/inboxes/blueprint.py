"""The inboxes blueprint object, alone in its module: the view modules import `bp` from here
and the package's __init__ imports the view modules, so each is imported once and no view
module needs another one (or the package) to be loaded first."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("inboxes", __name__, url_prefix="/admin/inboxes")
