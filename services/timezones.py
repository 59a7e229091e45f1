"""Agents' time zones: snooze times are typed and shown in the agent's own zone."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from models import User


@lru_cache(maxsize=1)
def zone_names() -> list[str]:
    """Every IANA zone name this machine knows ("UTC" first), for the profile's select."""
    names = sorted(n for n in available_timezones() if "/" in n and not n.startswith("Etc/"))
    return ["UTC", *names]


def is_zone(name: str) -> bool:
    if not name or name not in set(zone_names()):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def user_zone(user: User) -> ZoneInfo:
    """The user's zone; UTC when unset or no longer known to this machine."""
    name = getattr(user, "timezone", None) or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local(moment: datetime | None, user: User) -> str:
    """ "2026-11-23 09:00 WET" in the user's zone."""
    if moment is None:
        return ""
    return moment.astimezone(user_zone(user)).strftime("%Y-%m-%d %H:%M %Z")
