"""The arrows of the Architecture page (docs/architecture.md) hold: a folder imports only from folders below it.

Every relative import in edgenet/ is read with ``ast`` (lazy imports inside functions included, since
they are how heavy layers stay optional, not a licence to import upwards).
"""

from __future__ import annotations

import ast
from pathlib import Path

import edgenet

PACKAGE = Path(edgenet.__file__).resolve().parent
#: Height of each folder (and top-level module) in the diagram of docs/architecture.md: imports must go strictly down.
RANK = {
    "cli": 9, "decide": 8, "quant": 8, "edgetpu": 7, "cluster": 7, "bench": 6, "evaluation": 6, "convert": 6,
    "results": 5, "runtime": 5, "devices": 5, "weights": 5, "family": 4, "pixels": 3,
    "_tf": 2, "fsutil": 1, "logs": 1, "process": 1, "numbers": 1, "errors": 0, "_version": 0,
}


def _unit(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imports_of(path: Path) -> set[str]:
    """The edgenet units (folders or top-level modules) that ``path`` imports from, relatively."""
    unit = _unit(path)
    inside_folder = len(path.relative_to(PACKAGE).parts) > 1
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        up = node.level - (1 if inside_folder else 0)  # levels above the package root's children
        if up > 1 or (up == 0 and node.level == 1 and inside_folder):
            continue  # ``from .x`` inside a folder: the same unit
        target = (node.module or "").split(".")[0]
        if not target:  # ``from .. import results``
            found.update(alias.name for alias in node.names if alias.name in RANK)
        elif target in RANK and target != unit:
            found.add(target)
    return found


def test_every_unit_has_a_rank():
    units = {_unit(p) for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE}
    units.discard("__main__")
    assert units <= set(RANK), units - set(RANK)


def test_imports_point_down_only():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.parent == PACKAGE and path.name in ("__init__.py", "__main__.py"):
            continue  # the public re-exports and ``python -m edgenet`` sit on top of everything
        unit = _unit(path)
        for target in imports_of(path):
            if RANK[target] >= RANK[unit]:
                upward.append(f"{path.relative_to(PACKAGE)} ({unit}) imports {target}")
    assert upward == []


def test_the_checker_sees_lazy_and_package_imports(tmp_path):
    listeners = PACKAGE / "bench" / "listeners.py"
    assert "results" in imports_of(listeners)  # ``from .. import results`` and ``from ..results.table``
    assert "_tf" in imports_of(PACKAGE / "family" / "model.py")  # a lazy import inside a function
