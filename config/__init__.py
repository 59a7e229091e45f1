"""Threadline's configuration: reading it (settings.py) and checking it (checks.py).

The names other modules import live here, so `from config import Settings` stays the one
way in whichever module holds them.
"""

from __future__ import annotations

from config.checks import ConfigError, Problem
from config.settings import ALIASES, DATA_ROOT, PROJECT_ROOT, Settings, load_env_file

__all__ = [
    "ALIASES",
    "DATA_ROOT",
    "PROJECT_ROOT",
    "ConfigError",
    "Problem",
    "Settings",
    "load_env_file",
]
