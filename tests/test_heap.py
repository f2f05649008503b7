"""edgenet.runtime.heap: freed memory stays in the process (page faults counted, not timed)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROGRAM = """
import json, resource, sys
import numpy as np
from edgenet.runtime.heap import retain_freed_memory
retained = retain_freed_memory() if sys.argv[1] == "retain" else None
x = np.ones((1, 224, 224, 3), dtype=np.float32)
for _ in range(3):  # settle glibc's adaptive threshold first
    (x.astype(np.float64) / 2.0).sum()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(40):  # a preprocessing step per image: float64 temporaries of 1.2 MB
    v = x.astype(np.float64) / 2.0
    v += np.copysign(0.5, v)
    del v
print(json.dumps({"faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before, "retained": retained}))
"""


def _faults(mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning is Linux-only")
def test_retained_memory_is_reused_instead_of_faulted_in_again():
    default, retained = _faults("default"), _faults("retain")
    assert retained["retained"] is True
    # 40 rounds of two 1.2 MB temporaries: ~590 pages each round when every block is mapped afresh.
    assert default["faults"] > 40 * 200, default
    assert retained["faults"] * 10 < default["faults"], (retained, default)


def _minor_faults(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[7])  # field 10, minflt


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and glibc malloc tuning are Linux-only")
def test_model_server_handles_image_after_image_without_faulting_pages_in(tmp_path):
    import numpy as np
    from fixtures_tflite import build_tiny_tflite_models

    from edgenet.runtime.isolated import IsolatedTFLiteModel

    model = build_tiny_tflite_models(tmp_path, resolution=224).int8
    image = np.random.default_rng(0).uniform(0, 255, (1, 224, 224, 3)).astype(np.float32)
    with IsolatedTFLiteModel(model) as server:
        for _ in range(3):
            server.run(image)
        before = _minor_faults(server._proc.pid)
        for _ in range(20):
            server.run(image)
        per_image = (_minor_faults(server._proc.pid) - before) / 20
    # Quantizing one 224 px image makes float64 temporaries of 1.2 MB (294 pages each): mapped afresh,
    # that is over 500 page faults per image; kept, almost none.
    assert per_image < 100, per_image


def test_cli_retains_freed_memory():
    import inspect

    from edgenet.cli import main

    assert "retain_freed_memory()" in inspect.getsource(main.callback)
