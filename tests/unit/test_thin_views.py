"""Views parse the request, call a service and render: none commits or rolls back. The
services own their transactions (a refusal is raised before anything changes), so a view
cannot save half a change or throw away what a service meant to keep."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The app-wide error handler rolls back a request that failed unexpectedly.
EXEMPT = {"blueprints/__init__.py"}


def session_calls(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        (node.lineno, node.func.attr)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("commit", "rollback")
    ]


def test_no_view_commits_or_rolls_back():
    offences = []
    for path in sorted((ROOT / "blueprints").rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        if name in EXEMPT:
            continue
        offences += [f"{name}:{line} calls {call}()" for line, call in session_calls(path)]
    assert offences == [], "move the write into a service:\n" + "\n".join(offences)
