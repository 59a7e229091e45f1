"""What an upstream spam filter said about a message, from the headers it added.

Read: SpamAssassin's `X-Spam-Flag: YES` and `X-Spam-Status: Yes, score=7.1 required=5.0 ...`,
and rspamd's `X-Spamd-Result: default: True [15.20 / 15.00]; SYMBOL(1.0)...` (the action's
True/False, then the score and the filter's own threshold). rspamd's True is spam; a
configured threshold (SPAM_SCORE_THRESHOLD) also makes spam of a lower score from it up.

These headers are believed only as the filter in front of Threadline wrote them. Anyone can
put `X-Spam-Flag: NO` or `X-Spam-Status: No` in an email they send, so the MTA must strip
X-Spam-* and X-Spamd-* headers arriving from outside before the filter adds its own (as
SpamAssassin's and rspamd's usual setups do): the same caveat as Authentication-Results
(mail/sender_trust.py). A forged "Yes" only sends the forger's own mail to Spam.

Pure Python over the raw headers: no Flask, no database.
"""

from __future__ import annotations

import re
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32

from mail.summary import header_block

_SCORE = re.compile(r"\bscore=(-?\d+(?:\.\d+)?)", re.IGNORECASE)
# "default: True [15.20 / 15.00]" (the metric's name, the action, score / threshold).
_RSPAMD = re.compile(
    r"^\s*[\w-]+\s*:\s*(True|False)\s*\[\s*(-?\d+(?:\.\d+)?)\s*/\s*(-?\d+(?:\.\d+)?)\s*\]",
    re.IGNORECASE,
)


def headers_of(raw: bytes) -> Message:
    """The message's header block only (the body is never read)."""
    return BytesHeaderParser(policy=compat32).parsebytes(header_block(raw))


def upstream_verdict(headers: Message, threshold: float | None = None) -> str | None:
    """Why the upstream filter calls this spam (shown to agents), or None when it does not
    or no filter looked at it. `threshold`: an rspamd score from this up is spam as well as
    what rspamd itself calls spam (True); None trusts the filter's own True/False."""
    for value in _values(headers, "X-Spam-Flag"):
        if value.upper().startswith("YES"):
            return "X-Spam-Flag: YES"
    for value in _values(headers, "X-Spam-Status"):
        if value.lower().startswith("yes"):
            score = _SCORE.search(value)
            return "X-Spam-Status: Yes" + (f", score={score.group(1)}" if score else "")
    for value in _values(headers, "X-Spamd-Result"):
        found = _RSPAMD.match(value)
        if found is None:
            continue
        action, score, own = found.group(1).lower() == "true", float(found[2]), float(found[3])
        if threshold is not None and score >= threshold:
            return f"rspamd score {score:.1f} ≥ {threshold:.1f}"
        if action:
            return f"rspamd: spam (score {score:.1f} / {own:.1f})"
    return None


def _values(headers: Message, name: str) -> list[str]:
    """The header's values, unfolded and stripped (a filter folds long ones)."""
    return [" ".join(str(value).split()) for value in headers.get_all(name, [])]
