"""The package's import graph, read with ``ast``: every import of every module, lazy ones inside
functions included, relative (``from ..x import y``) and absolute (``import edgenet.x``) alike.

A leaf module (standard library only) so tests can check any package with it, including a synthetic
one written to a temporary folder: :func:`module_graph` gives module -> imported modules,
:func:`cycles` the strongly connected groups of more than one module (or a module importing itself).
"""

from __future__ import annotations

import ast
from pathlib import Path


def module_name(root: Path, path: Path) -> str:
    """``edgenet/convert/worker.py`` -> ``edgenet.convert.worker``; a package's ``__init__`` is the package."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(importer: str, is_package: bool, level: int, module: str | None) -> str:
    """The absolute name ``from <level dots><module>`` means inside ``importer``."""
    base = importer.split(".")
    if not is_package:
        base = base[:-1]  # a module's own package
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def imports(root: Path, path: Path) -> set[str]:
    """Every module of the package at ``root`` that ``path`` imports, at any depth of its code."""
    package = root.name
    me = module_name(root, path)
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name == package or a.name.startswith(package + "."))
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if not node.module or not (node.module == package or node.module.startswith(package + ".")):
                    continue
                target = node.module
            else:
                target = _resolve(me, is_package, node.level, node.module)
            found.add(target)
            # ``from . import x`` / ``from .pkg import mod``: x may be a module of its own.
            found.update(f"{target}.{a.name}" for a in node.names)
    return found


def module_graph(root: str | Path) -> dict[str, set[str]]:
    """module -> the package's modules it imports (names that are not modules, e.g. functions, dropped)."""
    root = Path(root)
    paths = {module_name(root, p): p for p in sorted(root.rglob("*.py"))}
    graph = {}
    for name, path in paths.items():
        targets = set()
        for target in imports(root, path):
            while target and target not in paths:  # ``edgenet.convert.worker.float_ops`` -> its module
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                targets.add(target)  # a module importing its own package's __init__ is not a cycle edge
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other, directly or around a loop (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # recursion depth: the package's longest import chain (tens)
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1 or v in graph.get(v, ()):
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)
