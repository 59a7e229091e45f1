"""What a new password must be: long enough and not one everybody tries first.

No Flask and no database here: config/checks.py checks ADMIN_PASSWORD with the same rule that
every form and the CLI use. Passwords chosen before the rule existed still sign in.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

MIN_LENGTH = 12
MAX_LENGTH = 1024
_COMMON_FILE = Path(__file__).with_name("common_passwords.txt")


@cache
def common_passwords() -> frozenset[str]:
    """A short list of leaked passwords of 12+ characters (shorter ones fail on length)."""
    lines = _COMMON_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip())


def password_problem(password: str | None, email: str = "", name: str = "") -> str | None:
    """None when `password` may be used, else what to change, as one sentence fragment."""
    password = password or ""
    if len(password) < MIN_LENGTH:
        return f"the password must have at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"the password can have at most {MAX_LENGTH} characters"
    lowered = password.lower()
    if lowered in common_passwords() or len(set(lowered)) <= 2:
        return "this password is on the list of passwords attackers try first; choose another"
    personal = {email.strip().lower(), email.strip().lower().split("@")[0], name.strip().lower()}
    if lowered in personal - {""}:
        return "the password must not be your email address or your name"
    return None
