"""The wizard's step plan: its screens, their order and the form sections each reads. Apart
from the views because the test page (step 7) and the template helpers name the same steps."""

from __future__ import annotations

STEP_TITLES = {
    "name": "Name and address",
    "mode": "Connection mode",
    "forwarding": "Forwarding",
    "connection": "IMAP and SMTP servers",
    "identity": "Identity",
    "agents": "Agents",
}
STEP_SECTIONS = {
    "name": ("basics",),
    "mode": ("mode",),
    "forwarding": (),
    "connection": ("imap", "smtp"),
    "identity": ("identity",),
    "agents": ("agents",),
}
TOTAL_STEPS = 6  # five form steps, then the test


def steps_for(mode: str) -> list[str]:
    third = "connection" if mode == "imap" else "forwarding"
    return ["name", "mode", third, "identity", "agents"]
