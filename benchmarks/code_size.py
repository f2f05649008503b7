"""How big is edgenet's library and how wide is its surface, at two git revisions side by side?

The "One engine" wave promises the same features in fewer lines and fewer entry points, and the "One face"
wave one set of options. This script measures both at two revisions of this repository (default: the last
commit before the wave, ``d148cd3``, and the working tree):

* library lines: lines of ``edgenet/**/*.py`` (all lines, and code lines without blanks, comments and
  docstrings), per top-level folder;
* public entry points: top-level functions and classes without a leading underscore, and ``__all__`` names;
* the command line: commands, options, distinct option names, and option names declared with more than one
  meaning (type, flag/value or choices differ) -- read from the real click tree, each revision imported in its
  own child process from a temporary ``git worktree``.

    .venv/bin/python benchmarks/code_size.py                       # d148cd3 vs the working tree
    .venv/bin/python benchmarks/code_size.py --before d148cd3 --after HEAD

Writes ``benchmarks/results/code_size.json`` (``--out``) and prints a table. Counting is exact and does not
depend on the machine.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import os
import subprocess
import sys
import tempfile
import tokenize
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Printed by a child process that imports one revision's CLI (run with that revision on sys.path).
_CLI_PROBE = r"""
import json, click
from edgenet.cli import main
commands, options = [], []
def walk(cmd, path):
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            walk(sub, path + [name])
    else:
        commands.append(" ".join(path))
    for p in cmd.params:
        if isinstance(p, click.Option):
            kind = "flag" if p.is_flag else type(p.type).__name__
            choices = sorted(map(str, p.type.choices)) if isinstance(p.type, click.Choice) else None
            for name in p.opts:
                if name.startswith("--"):
                    options.append({"command": " ".join(path), "name": name, "kind": kind, "choices": choices,
                                    "hidden": bool(p.hidden)})
walk(main, [])
print(json.dumps({"commands": commands, "options": options}))
"""


def _code_lines(source: str) -> int:
    """Lines holding code: not blank, not only a comment, not part of a docstring."""
    docstring_lines: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                docstring_lines.update(range(first.lineno, first.end_lineno + 1))
    lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                        tokenize.ENDMARKER):
            continue
        lines.update(range(tok.start[0], tok.end[0] + 1))
    return len(lines - docstring_lines)


def _public(source: str) -> tuple[int, int]:
    tree = ast.parse(source)
    defs = sum(1 for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
               and not n.name.startswith("_"))
    exported = 0
    for n in tree.body:
        if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in n.targets):
            if isinstance(n.value, (ast.List, ast.Tuple)):
                exported = len(n.value.elts)
    return defs, exported


def library(tree: Path) -> dict:
    per_folder: Counter = Counter()
    code_per_folder: Counter = Counter()
    defs = exported = files = 0
    for path in sorted((tree / "edgenet").rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        rel = path.relative_to(tree / "edgenet")
        folder = rel.parts[0] if len(rel.parts) > 1 else "(top)"
        per_folder[folder] += source.count("\n")
        code_per_folder[folder] += _code_lines(source)
        d, e = _public(source)
        defs, exported, files = defs + d, exported + e, files + 1
    return {"files": files, "lines": sum(per_folder.values()), "code_lines": sum(code_per_folder.values()),
            "public_defs": defs, "all_names": exported,
            "lines_per_folder": dict(sorted(per_folder.items())),
            "code_lines_per_folder": dict(sorted(code_per_folder.items()))}


def cli(tree: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree))
    out = subprocess.run([sys.executable, "-c", _CLI_PROBE], cwd=tree, env=env, capture_output=True, text=True,
                         timeout=300, check=True).stdout
    probe = json.loads(out.strip().splitlines()[-1])
    meanings: dict[str, set] = {}
    for opt in probe["options"]:
        meanings.setdefault(opt["name"], set()).add((opt["kind"], tuple(opt["choices"] or ())))
    return {"commands": len(probe["commands"]), "options": len(probe["options"]),
            "option_names": len(meanings), "hidden_options": sum(o["hidden"] for o in probe["options"]),
            "names_with_several_meanings": sorted(n for n, m in meanings.items() if len(m) > 1)}


def measure(rev: str | None) -> dict:
    if rev is None:
        return {"revision": "working tree", "library": library(ROOT), "cli": cli(ROOT)}
    with tempfile.TemporaryDirectory(prefix="edgenet-size-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(tree), rev], check=True)
        try:
            return {"revision": rev, "library": library(tree), "cli": cli(tree)}
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default="d148cd3", help="git revision before the change")
    parser.add_argument("--after", default=None, help="git revision after (default: the working tree)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "code_size.json")
    args = parser.parse_args(argv)
    before, after = measure(args.before), measure(args.after)
    rows = [("library lines", "lines"), ("library code lines", "code_lines"), ("modules", "files"),
            ("public functions and classes", "public_defs"), ("__all__ names", "all_names")]
    print(f"{'':32} {before['revision']:>14} {after['revision']:>14}")
    for label, key in rows:
        print(f"{label:32} {before['library'][key]:>14} {after['library'][key]:>14}")
    for label, key in [("commands", "commands"), ("options", "options"), ("distinct option names", "option_names"),
                       ("hidden options", "hidden_options")]:
        print(f"{label:32} {before['cli'][key]:>14} {after['cli'][key]:>14}")
    for side in (before, after):
        print(f"option names with several meanings at {side['revision']}: "
              f"{', '.join(side['cli']['names_with_several_meanings']) or 'none'}")
    result = {"script": "benchmarks/code_size.py", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": "not relevant (exact counts)", "before": before, "after": after}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    tmp.replace(args.out)
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
