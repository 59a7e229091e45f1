"""Screenshots at a laptop's and a phone's width, and the checks every page gets at both:
no sideways scrolling, no serious or critical axe-core finding.

Screenshots go to $TEST_ARTIFACTS when set (CI keeps them), else to the test's tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

LAPTOP, PHONE = (1280, 800), (390, 844)


def artifacts(tmp_path: Path) -> Path:
    path = Path(os.environ.get("TEST_ARTIFACTS") or tmp_path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def sideways_overflow(page) -> int:
    """How many CSS pixels the page is wider than the window (0: no sideways scrolling)."""
    return page.evaluate(
        "Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - window.innerWidth"
    )


def check_both_widths(page, tmp_path: Path, name: str) -> None:
    """Screenshot `name` at 1280 and 390 px; at each width the page must not scroll sideways
    and axe-core must find nothing serious. Leaves the page at the laptop width."""
    from tests.e2e.conftest import serious_violations

    shots = artifacts(tmp_path)
    for width, height in (PHONE, LAPTOP):
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(50)  # one layout pass after the resize
        # caret="initial": Playwright would hide the caret with a style attribute, which an
        # htmx swap afterwards copies and the CSP then refuses.
        page.screenshot(path=str(shots / f"{name}-{width}.png"), full_page=True, caret="initial")
        overflow = sideways_overflow(page)
        assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at {width}px"
        assert serious_violations(page) == [], f"{name} at {width}px"
