"""The arrows of the Architecture page (docs/architecture.md) hold: a folder imports only from folders below it.

Every relative import in edgenet/ is read with ``ast`` (lazy imports inside functions included, since
they are how heavy layers stay optional, not a licence to import upwards). Between modules there is no
cycle at all, even through imports inside functions (the graph: ``tests/graph.py``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import edgenet

PACKAGE = Path(edgenet.__file__).resolve().parent
#: Height of each folder (and top-level module) in the diagram of docs/architecture.md: imports must go strictly down.
RANK = {
    "cli": 10, "sweep": 9, "decide": 8, "quant": 8, "edgetpu": 7, "cluster": 7, "bench": 6, "evaluation": 6,
    "convert": 6,
    "devices": 5.5,  # above results and runtime (it validates replies and probes the runtime), below bench
    "results": 5, "runtime": 5, "weights": 5, "family": 4, "pixels": 3,
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


# ---- no cycles between modules (tests/graph.py reads every import, lazy ones included) ----------------------------

def test_no_import_cycle_between_modules():
    from graph import cycles, module_graph

    assert cycles(module_graph(PACKAGE)) == []


def _package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_the_cycle_checker_catches_the_old_mixed_worker_pair(tmp_path):
    """The pair this package had (convert/mixed.py <-> convert/worker.py, each importing the other inside a
    function), rebuilt in a synthetic package: found; with the shared piece moved down into a module both
    import, gone."""
    from graph import cycles, module_graph

    old = _package(tmp_path / "old" / "edgenet", {
        "__init__.py": "",
        "convert/__init__.py": "",
        "convert/mixed.py": "def upgrade():\n    from .worker import float_ops\n    return float_ops\n",
        "convert/worker.py": "def rung():\n    from .mixed import upgrade\n    return upgrade\n\n"
                             "def float_ops():\n    return []\n",
    })
    assert cycles(module_graph(old)) == [["edgenet.convert.mixed", "edgenet.convert.worker"]]
    fixed = _package(tmp_path / "new" / "edgenet", {
        "__init__.py": "",
        "convert/__init__.py": "",
        "convert/precision.py": "def float_ops():\n    return []\n",
        "convert/mixed.py": "def upgrade():\n    from .precision import float_ops\n    return float_ops\n",
        "convert/worker.py": "from .precision import float_ops\n\ndef rung():\n    from .mixed import upgrade\n"
                             "    return upgrade, float_ops\n",
    })
    assert cycles(module_graph(fixed)) == []


@pytest.mark.parametrize("spelling", [
    "import edgenet.convert.worker\n",
    "from edgenet.convert import worker\n",
    "from edgenet.convert.worker import rung\n",
    "def f():\n    from ..convert import worker\n",
    "def f():\n    from . import worker\n",
])
def test_every_spelling_of_an_import_is_an_edge(tmp_path, spelling):
    """Absolute and relative, module-level and lazy: each closes the loop worker -> mixed -> worker."""
    from graph import cycles, module_graph

    root = _package(tmp_path / "edgenet", {
        "__init__.py": "",
        "convert/__init__.py": "",
        "convert/mixed.py": spelling,
        "convert/worker.py": "def rung():\n    from .mixed import upgrade\n",
    })
    assert cycles(module_graph(root)) == [["edgenet.convert.mixed", "edgenet.convert.worker"]]
