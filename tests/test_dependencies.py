"""The declared dependencies (pyproject.toml) are exactly the third-party modules the package imports.

Run: python -m pytest -q tests/test_dependencies.py
"""
import ast
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")

ROOT = Path(__file__).resolve().parents[1]


def _imported_modules() -> dict[str, str]:
    """Top-level third-party module -> the first file that imports it (lazy imports included)."""
    found = {}
    for path in sorted((ROOT / "textpipe").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top != "textpipe" and top not in sys.stdlib_module_names and top != "__future__":
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def _import_name(requirement: str) -> str:
    """The module a requirement string provides (via the installed metadata, else the normalized name)."""
    dist = re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0]
    by_dist = {}
    for module, dists in importlib.metadata.packages_distributions().items():
        for d in dists:
            by_dist.setdefault(d.lower().replace("_", "-"), set()).add(module)
    modules = by_dist.get(dist.lower().replace("_", "-"), set()) - {"_distutils_hack"}
    normalized = dist.lower().replace("-", "_")
    return normalized if normalized in modules or not modules else sorted(modules)[0]


def _declared() -> tuple[set[str], set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    required = {_import_name(r) for r in project["dependencies"]}
    extras = {_import_name(r) for group, reqs in project.get("optional-dependencies", {}).items()
              if group != "dev" for r in reqs}
    return required, extras


def test_every_required_dependency_is_imported():
    required, _ = _declared()
    imported = _imported_modules()
    assert sorted(required - set(imported)) == [], "declared in pyproject.toml but never imported by textpipe"


def test_every_imported_module_is_declared():
    required, extras = _declared()
    undeclared = {m: f for m, f in _imported_modules().items() if m not in required | extras}
    assert undeclared == {}, "imported by textpipe but not declared in pyproject.toml"
