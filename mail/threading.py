"""Threading rules that need no database: our Message-ID format and subject normalisation."""

from __future__ import annotations

import re

# Prefixes mail clients put in front of a subject when replying or forwarding, in the
# languages our customers' clients speak most: Re, Fwd, Fw, AW (de), SV (sv/da/no), Antw (nl).
_PREFIX = re.compile(r"^\s*(?:re|fwd?|aw|sv|antw|wg|tr|rv|ynt|vs)\s*(?:\[\d+\])?\s*[:：]\s*", re.I)
_OURS = re.compile(r"^conversation/([0-9a-f]{32,64})/messages/(\d+)@", re.I)


def outgoing_message_id(token: str, message_pk: int, domain: str) -> str:
    """The bracketless Message-ID of a reply we send: it names its conversation's token."""
    return f"conversation/{token}/messages/{message_pk}@{domain}"


def token_from_message_id(message_id: str) -> str | None:
    """The conversation token inside one of our own Message-IDs, else None."""
    match = _OURS.match(message_id.strip().strip("<>"))
    return match.group(1).lower() if match else None


def strip_prefixes(subject: str) -> str:
    """Subject without reply/forward prefixes (repeated, any case, in the languages mail
    clients use), whitespace folded; the case is kept."""
    text = " ".join((subject or "").split())
    while True:
        stripped = _PREFIX.sub("", text, count=1)
        if stripped == text:
            return text
        text = stripped


def normalise_subject(subject: str) -> str:
    """The subject as conversations are matched by it: no prefixes, case folded."""
    return strip_prefixes(subject).casefold()
