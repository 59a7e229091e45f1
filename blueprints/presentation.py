"""How stored codes and moments read on a page, as Jinja filters registered once on the app:
the workspace and the inbound log both show why a message joined its thread, and no blueprint
has to import another feature's blueprint for the wording."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask

THREADING_REASONS = {
    "new": "new conversation",
    "reply_token": "joined by reply address",
    "in_reply_to": "joined by In-Reply-To",
    "references": "joined by References",
    "subject": "joined by same subject",
    "manual": "moved here by an agent",
}
AUTO_FLAGS = {"bounce": "bounce", "auto_reply": "auto-reply"}


def register(app: Flask) -> None:
    app.add_template_filter(when)
    app.add_template_filter(threading_reason)
    app.add_template_filter(auto_flag)


def when(moment: datetime | None) -> str:
    """ "5 min ago" for today's activity, a date for anything older."""
    if moment is None:
        return ""
    seconds = (datetime.now(UTC) - moment).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    return moment.strftime("%Y-%m-%d %H:%M")


def threading_reason(reason: str | None) -> str:
    """Why a message joined its thread, in words; an unknown code as itself, none as ""."""
    return THREADING_REASONS.get(reason, reason or "")


def auto_flag(flag: str | None) -> str:
    """Why a message counts as automatic (bounce, auto-reply); an unknown flag as itself."""
    return AUTO_FLAGS.get(flag, flag or "")
