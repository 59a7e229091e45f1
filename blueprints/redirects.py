"""The one rule for redirect targets taken from a request (`next`, `return_to`): a local
path only, so no parameter can send a user to another host (an open redirect)."""

from __future__ import annotations

from urllib.parse import urlsplit


def local_path(target: str | None, prefix: str = "/") -> str | None:
    """`target` if it is a path on this site under `prefix`, else None: the caller falls back.
    A backslash is refused too, since browsers read `/\\host` as `//host`."""
    parts = urlsplit(target or "")
    local = bool(target) and not parts.scheme and not parts.netloc and "\\" not in target
    return target if local and target.startswith(prefix) else None
