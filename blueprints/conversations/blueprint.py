"""The conversations blueprint itself, apart from its routes: every view module imports `bp`
from here, and the package's __init__ imports the view modules, so nothing imports the module
that imports it."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("conversations", __name__)
