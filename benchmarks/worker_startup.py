"""What keeping scikit-learn and matplotlib out of the conversion worker saves, side by side.

    .venv/bin/python benchmarks/worker_startup.py [--reps 8]

Every conversion runs in a fresh worker process that imports TensorFlow and Keras; Keras imports scikit-learn and
matplotlib at start-up whenever they are installed, and no conversion uses them. The worker keeps them out
(:func:`edgenet.convert.worker.skip_unused_imports`). Each round starts two fresh processes that import
TensorFlow and Keras, one as the worker does and one without skipping, the order alternating every
round; ``--reps`` rounds. Wall-clock seconds of each process from start to exit, per-round ratios (skipping over
not skipping), their median and minimum.

Results: ``benchmarks/results/worker_startup.json``, with the machine line of :mod:`edgenet.runtime.envinfo`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

#: The two ways, as the code a fresh process runs: the worker's way skips, the other imports what Keras finds.
WAYS = {
    "skipping": "from edgenet.convert.worker import skip_unused_imports; skip_unused_imports(); import tensorflow, keras",
    "not_skipping": "import edgenet.convert.worker; import tensorflow, keras",
}


def _once(code: str) -> float:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        sys.exit(f"worker_startup.py: importing TensorFlow and Keras failed (exit {proc.returncode}): {last}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=8)
    parser.add_argument("--out", type=Path, default=RESULTS / "worker_startup.json")
    args = parser.parse_args()

    from edgenet.fsutil import atomic_write_text
    from edgenet.runtime.envinfo import device_info

    _once(WAYS["not_skipping"])  # warm the page cache and the bytecode: neither way pays for it
    names = list(WAYS)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(args.reps):
        for name in names if rep % 2 == 0 else names[::-1]:  # the order alternates every round
            seconds[name].append(_once(WAYS[name]))
    ratios = [a / b for a, b in zip(seconds["skipping"], seconds["not_skipping"], strict=True)]
    result = {
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": f"benchmarks/worker_startup.py --reps {args.reps}",
        "machine": device_info()["measured_on"],
        "what": "a fresh process importing TensorFlow and Keras, start to exit",
        **{f"{name}_s": [round(x, 3) for x in seconds[name]] for name in names},
        **{f"median_{name}_s": round(statistics.median(seconds[name]), 3) for name in names},
        "ratio_skipping_over_not_skipping": {"median": round(statistics.median(ratios), 3),
                                             "min": round(min(ratios), 3), "max": round(max(ratios), 3)},
    }
    text = json.dumps(result, indent=2)
    atomic_write_text(args.out, text + "\n")
    print(text)


if __name__ == "__main__":
    main()
