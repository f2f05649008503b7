"""``--cluster`` parsing and the one-line refusal when Ray is not installed (no cluster started here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgenet.cluster.executor import LocalExecutor, parse_cluster
from edgenet.errors import EdgenetError

REPO = Path(__file__).resolve().parents[1]

# Runs the real CLI in a fresh interpreter in which `import ray` fails, as on a machine without
# the extra: a meta-path finder refuses the module; nothing else is altered.
WITHOUT_RAY = """
import sys
class NoRay:
    def find_spec(self, name, path=None, target=None):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return None
sys.meta_path.insert(0, NoRay())
from edgenet.cli import main
sys.argv = ["edgenet"] + sys.argv[1:]
main()
"""


def test_parse_cluster():
    assert parse_cluster("local").is_local and parse_cluster(None).is_local
    assert parse_cluster("ray://10.0.0.1:10001").address == "ray://10.0.0.1:10001"
    assert parse_cluster("127.0.0.1:6379").address == "127.0.0.1:6379"
    assert parse_cluster("auto").kind == "ray"
    with pytest.raises(EdgenetError, match="--cluster must be"):
        parse_cluster("spark://x")


def test_local_executor_is_the_default():
    from edgenet.cluster.executor import open_executor

    with open_executor("local") as executor:
        assert isinstance(executor, LocalExecutor)


@pytest.mark.parametrize("args", [
    ["eval", "m.tflite", "--data", "data", "--cluster", "ray"],
    ["sweep", "--budget-ms", "5", "--cluster", "ray://127.0.0.1:10001"],
    ["devices", "--cluster", "auto"],
])
def test_cluster_without_ray_is_one_line(tmp_path, args):
    (tmp_path / "m.tflite").write_bytes(b"not read: the --cluster check comes first")
    (tmp_path / "data").mkdir()
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", WITHOUT_RAY, *args], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 1, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines == ["Error: --cluster needs ray, which is not installed: pip install 'edgenet[ray]'"]
