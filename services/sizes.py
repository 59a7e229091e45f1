"""Sizes as people read them, the same everywhere (binary units, as mail clients show them)."""

from __future__ import annotations


def human_size(size: int) -> str:
    """'5 KB' (whole, at least 1) below a megabyte, '10.5 MB' from there."""
    if size < 1024 * 1024:
        return f"{max(1, round(size / 1024))} KB"
    return f"{size / (1024 * 1024):.1f} MB"
