"""The agent workspace: conversation list, thread view and the actions on a thread (htmx).

Every region that htmx swaps is one `_partial.html` that the full page includes too; an
`HX-Request` gets the partial alone. Conversations outside the user's inboxes are 404
everywhere (page, fragments, actions), so nobody learns that they exist.

`bp` lives in blueprint.py and the views register their routes on it when imported here;
pages.py builds what every response is made of (the data comes from services/workspace.py).
"""

from __future__ import annotations

from blueprints.conversations import (  # noqa: F401  (their routes and context processors)
    bulk,
    drafts,
    forwarding,
    fragment_keys,
    list_views,
    mail_frame,
    merge,
    sending,
    spam_actions,
    thread_actions,
    thread_views,
)
from blueprints.conversations.blueprint import bp

__all__ = ["bp"]
