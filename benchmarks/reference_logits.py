"""How much the traced float reference saves the fidelity check: eager per-sample Keras calls against the one traced
graph (:func:`edgenet.convert.worker.traced`) the conversion now shares between the converter and the reference.

    .venv/bin/python benchmarks/reference_logits.py [--views 512] [--reps 5]

The tiny variant (``phi=0,width=0.25,depth=0.25,resolution=64``, random weights: the cost does not depend on them)
computes its logits on ``--views`` seeded inputs both ways, interleaved eager-traced, traced-eager, ... ``--reps``
times; the traced side includes its one-off trace, as a conversion pays it (once, shared with the converter). Per-pair
ratios eager/traced, their median and minimum, and the largest logit difference between the two ways.

Results: ``benchmarks/results/reference_logits.json``, with the machine line of :mod:`edgenet.runtime.envinfo`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
SPEC = "phi=0,width=0.25,depth=0.25,resolution=64"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=512)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS / "reference_logits.json")
    args = parser.parse_args()

    from edgenet.convert.worker import traced
    from edgenet.family.model import build_model
    from edgenet.family.variants import parse_variant
    from edgenet.fsutil import atomic_write_text
    from edgenet.runtime.envinfo import cpu_model, isa_features, load_average, measured_on

    variant = parse_variant(SPEC)
    model = build_model(variant, batch_size=None)
    res = variant.resolution
    views = np.random.default_rng(0).uniform(0, 255, (args.views, res, res, 3)).astype(np.float32)

    def eager() -> np.ndarray:
        return np.concatenate([model(views[i : i + 1], training=False).numpy() for i in range(len(views))])

    def trace() -> np.ndarray:
        serve = traced(model, None)  # a fresh trace each time: what one conversion pays
        return np.concatenate([serve(views[i : i + 32]).numpy() for i in range(0, len(views), 32)])

    seconds: dict[str, list[float]] = {"eager": [], "traced": []}
    outputs = {}
    for rep in range(args.reps):
        for name in (("eager", "traced") if rep % 2 == 0 else ("traced", "eager")):
            started = time.perf_counter()
            outputs[name] = (eager if name == "eager" else trace)()
            seconds[name].append(time.perf_counter() - started)
    ratios = [e / t for e, t in zip(seconds["eager"], seconds["traced"], strict=True)]
    device = {"cpu_model": cpu_model(), "machine": os.uname().machine, "isa": isa_features(),
              "cores": os.cpu_count(), "load_1m": load_average()}
    result = {
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": f"benchmarks/reference_logits.py --views {args.views} --reps {args.reps}",
        "machine": measured_on(device),
        "variant": SPEC,
        "views": args.views,
        "eager_s": [round(s, 3) for s in seconds["eager"]],
        "traced_s": [round(s, 3) for s in seconds["traced"]],
        "ratio_eager_over_traced": {"median": round(statistics.median(ratios), 2), "min": round(min(ratios), 2)},
        "max_abs_logit_difference": float(np.max(np.abs(outputs["eager"] - outputs["traced"]))),
    }
    text = json.dumps(result, indent=2)
    atomic_write_text(args.out, text + "\n")
    print(text)


if __name__ == "__main__":
    main()
