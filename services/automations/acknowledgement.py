"""The auto-acknowledgement (to be written: see services/automations/__init__.py)."""

from __future__ import annotations


def maybe_acknowledge(message, conversation, parsed, is_new, effects) -> None:
    return None
