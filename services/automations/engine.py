"""The rules engine (to be written: see services/automations/__init__.py)."""

from __future__ import annotations


def run_rules(message, conversation, parsed, is_new, effects) -> None:
    return None
