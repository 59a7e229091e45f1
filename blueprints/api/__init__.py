"""JSON API v1 for integrations and scripts: per-user bearer tokens, never the session cookie.

Agents reach only the inboxes they belong to, admins all. Anything outside a user's
inboxes answers 404 exactly like something that does not exist. Errors are
`{"error": "..."}` naming the field to fix.

`bp` lives in blueprint.py with the errors and the token check every request passes; the
views (openapi.py, inboxes.py, conversations.py, messages.py) register their routes on it
when imported here, read requests with inputs.py and answer with serialise.py's shapes.
"""

from __future__ import annotations

from blueprints.api import conversations, inboxes, messages, openapi  # noqa: F401  (routes)
from blueprints.api.blueprint import bp

__all__ = ["bp"]
