"""The two-factor blueprint itself, apart from its routes, so every module can import it."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("two_factor", __name__)

# Pages that show a secret or recovery codes must never be cached or restored from history.
NO_STORE = {"Cache-Control": "no-store"}
