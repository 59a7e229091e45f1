"""The layers, checked on the source: every import, at the top of a module or inside a
function, read with the standard library's AST (no import-linter: the rules are two).

- Below the entry points (services/, mail/, ingress/, models/, storage/), nothing imports
  jobs/ or blueprints/: jobs are enqueued by dotted path through services/background.py,
  and presentation stays in blueprints/.
- A blueprint module (one that creates a Blueprint) is imported only from its own feature:
  what several features share lives in modules that create none.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOWER_LAYERS = ("services", "mail", "ingress", "models", "storage")
ENTRY_POINTS = ("jobs", "blueprints")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, name: str | None = None) -> list[tuple[int, str]]:
    """(line, module) of every import in the file (module `name`, by default its place in
    the tree), relative ones resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = (name or module_name(path)).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((node.lineno, base))
            # `from blueprints import inboxes` imports the module blueprints.inboxes
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def known_modules() -> set[str]:
    return {module_name(p) for p in python_files(*LOWER_LAYERS, *ENTRY_POINTS)}


def test_layers_below_the_entry_points_never_import_jobs_or_blueprints():
    modules = known_modules()
    offences = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in python_files(*LOWER_LAYERS)
        for line, name in imports(path)
        if name.split(".")[0] in ENTRY_POINTS and (name in modules or name in ENTRY_POINTS)
    ]
    assert offences == []


def blueprint_modules() -> dict[str, str]:
    """Each module that creates a Blueprint, and its feature: the package right under
    blueprints/ it belongs to, or the module itself for a flat one."""
    out = {}
    for path in python_files("blueprints"):
        if "Blueprint(" in path.read_text():
            name = module_name(path)
            out[name] = ".".join(name.split(".")[:2])
    return out


def test_a_blueprint_module_is_imported_only_by_its_own_feature():
    features = blueprint_modules()
    offences = []
    for path in python_files(*LOWER_LAYERS, *ENTRY_POINTS):
        importer = module_name(path)
        if importer == "blueprints":  # blueprints/__init__.py registers every feature
            continue
        own = ".".join(importer.split(".")[:2])
        for line, name in imports(path):
            feature = features.get(name)
            if feature is not None and feature != own:
                offences.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert offences == []


def test_the_rules_see_imports_inside_functions_and_relative_ones(tmp_path):
    """The checker itself: a lazy import and a relative import are both seen."""
    source = tmp_path / "probe.py"
    source.write_text(
        "def late():\n    from jobs.sweeps import recover_inbound\n\nfrom . import background\n"
    )
    names = [name for _, name in imports(source, "services.probe")]
    assert "jobs.sweeps" in names and "services.background" in names
