"""benchmarks/: every script and results file is indexed, and the scripts use only edgenet's public API."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
SCRIPTS = sorted(BENCHMARKS.glob("*.py"))


def private_imports(source: str) -> list[str]:
    """Every private name of edgenet that ``source`` imports or reaches: ``from edgenet.x import _y``,
    a private module (``edgenet._tf``, ``edgenet.x._y``) or an attribute ``module._y`` of an imported
    edgenet module."""
    found = []
    edgenet_names: set[str] = set()  # local names bound to edgenet modules
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "edgenet":
            if any(part.startswith("_") for part in node.module.split(".")):
                found.append(node.module)
            for alias in node.names:
                if alias.name.startswith("_"):
                    found.append(f"{node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "edgenet":
                    if any(part.startswith("_") for part in alias.name.split(".")):
                        found.append(alias.name)
                    edgenet_names.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                and isinstance(node.value, ast.Name | ast.Attribute)):
            base = node.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name) and base.id in edgenet_names:
                found.append(ast.unparse(node))
    return found


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_imports_only_public_names(script):
    assert private_imports(script.read_text(encoding="utf-8")) == []


def test_the_check_finds_private_imports():
    source = ("from edgenet.convert.fidelity import VIEWS, _view\nfrom edgenet._tf import tf\n"
              "import edgenet.convert.calibrator as calibrator\ncalibrator._interpreter = None\n"
              "from edgenet.convert.api import convert_variants\n")
    assert private_imports(source) == ["edgenet.convert.fidelity._view", "edgenet._tf", "calibrator._interpreter"]


def test_every_script_and_results_file_is_indexed():
    index = (BENCHMARKS / "README.md").read_text(encoding="utf-8")
    files = [*SCRIPTS, *sorted((BENCHMARKS / "results").iterdir())]
    assert [f.name for f in files if f"`{f.name}`" not in index and not f.name.startswith(".")] == []
