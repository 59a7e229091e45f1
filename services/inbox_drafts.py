"""The setup wizard's draft between steps: in Redis with a TTL, keyed by a random id.

Not in the session cookie, which is signed but readable. Passwords are Fernet-encrypted
with the app's key before they reach Redis, like the database columns. A Microsoft 365 or
Google sign-in made in the wizard is a database row (OAuthConnection.draft_id) until the
inbox is created.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field

from extensions import get_redis
from models.base import secret_box
from models.inboxes import new_forward_token
from services import oauth
from services.inbox_setup import DEFAULTS
from services.oauth_status import server_values

TTL_SECONDS = 24 * 3600


def _key(draft_id: str) -> str:
    return f"threadline:inbox-draft:{draft_id}"


@dataclass
class Draft:
    id: str
    user_id: int
    forward_token: str
    values: dict = field(default_factory=lambda: dict(DEFAULTS))
    secrets: dict = field(default_factory=dict)  # {"imap"|"smtp": Fernet token}
    # Set when the IMAP/SMTP step passed its tests (or was overridden) with these values.
    connection_checked: bool = False

    def password(self, which: str) -> str | None:
        token = self.secrets.get(which)
        return secret_box.decrypt(token) if token else None

    def set_password(self, which: str, plain: str) -> None:
        if plain:
            self.secrets[which] = secret_box.encrypt(plain)

    def passwords(self) -> dict:
        return {"imap": self.password("imap"), "smtp": self.password("smtp")}

    def update(self, values: dict) -> None:
        """What a step posted, valid or not, so back and forth lose nothing."""
        previous_mode = self.values["mode"]
        self.values.update(values)
        if self.values["mode"] != previous_mode:
            # Forwarding inboxes answer from the continuity address; IMAP ones from their own.
            imap = self.values["mode"] == "imap"
            self.values["reply_to_style"] = "inbox" if imap else "continuity"


def new_draft(user_id: int, values: dict) -> Draft:
    """Made by the wizard's first POST (opening the wizard writes nothing)."""
    draft = Draft(secrets.token_urlsafe(16), user_id, new_forward_token())
    draft.update(values)
    save(draft)
    return draft


def load(draft_id: str, user_id: int) -> Draft | None:
    """The draft if it exists, has not expired and belongs to this admin."""
    raw = get_redis().get(_key(draft_id))
    if raw is None:
        return None
    data = json.loads(raw)
    if data.get("user_id") != user_id:
        return None
    values = dict(DEFAULTS)
    values.update(data.get("values", {}))
    return Draft(
        draft_id,
        user_id,
        data["forward_token"],
        values,
        data.get("secrets", {}),
        data.get("connection_checked", False),
    )


def save(draft: Draft) -> None:
    data = {
        "user_id": draft.user_id,
        "forward_token": draft.forward_token,
        "values": draft.values,
        "secrets": draft.secrets,
        "connection_checked": draft.connection_checked,
    }
    get_redis().set(_key(draft.id), json.dumps(data), ex=TTL_SECONDS)


def discard(draft: Draft) -> None:
    get_redis().delete(_key(draft.id))


def use_oauth(draft: Draft, conn) -> None:
    """Signed in during the wizard: the provider's servers and the mailbox fill the IMAP and
    SMTP step, which is tested again (with the token) on Next."""
    draft.update(server_values(conn.provider, conn.mailbox))
    draft.connection_checked = False
    save(draft)


def forget_oauth(draft: Draft) -> None:
    """Disconnect in the wizard: the draft's sign-in is deleted (commits); passwords again."""
    oauth.disconnect(draft_id=draft.id)
    draft.connection_checked = False
    save(draft)
