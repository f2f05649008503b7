"""How much the traced float reference saves the fidelity check, three ways side by side: eager per-sample Keras
calls; one call per sample of the graph traced with the converter's static batch of 1 (what a conversion did until
the 157-photo default set made its held-out set 288 views); and the graph traced without a static batch, 32 samples
a call (what :meth:`edgenet.convert.worker.Conversion.logits` does now).

    .venv/bin/python benchmarks/reference_logits.py [--views 512] [--reps 5]

The tiny variant (``phi=0,width=0.25,depth=0.25,resolution=64``, random weights: the cost does not depend on them)
computes its logits on ``--views`` seeded inputs each way, the order rotating every round, ``--reps`` rounds; each
traced way includes its one-off trace, as a conversion pays it. Per-round ratios against the batched trace, their
median and minimum, and the largest logit difference from the eager logits.

Results: ``benchmarks/results/reference_logits.json``, with the machine line of :mod:`edgenet.runtime.envinfo`.
"""

from __future__ import annotations

import argparse
import json
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
    from edgenet.runtime.envinfo import device_info

    variant = parse_variant(SPEC)
    model = build_model(variant, batch_size=None)
    res = variant.resolution
    views = np.random.default_rng(0).uniform(0, 255, (args.views, res, res, 3)).astype(np.float32)

    def eager() -> np.ndarray:
        return np.concatenate([model(views[i : i + 1], training=False).numpy() for i in range(len(views))])

    def per_row() -> np.ndarray:
        serve = traced(model, 1)  # a fresh trace each time: what one conversion pays
        return np.concatenate([serve(views[i : i + 1]).numpy() for i in range(len(views))])

    def batched() -> np.ndarray:
        serve = traced(model, None)
        return np.concatenate([serve(views[i : i + 32]).numpy() for i in range(0, len(views), 32)])

    ways = {"eager": eager, "traced_per_row": per_row, "traced_batched": batched}
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    outputs = {}
    names = list(ways)
    for rep in range(args.reps):
        for name in names[rep % 3:] + names[: rep % 3]:  # the order rotates every round
            started = time.perf_counter()
            outputs[name] = ways[name]()
            seconds[name].append(time.perf_counter() - started)
    ratios = {name: [a / b for a, b in zip(seconds[name], seconds["traced_batched"], strict=True)]
              for name in ("eager", "traced_per_row")}
    result = {
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": f"benchmarks/reference_logits.py --views {args.views} --reps {args.reps}",
        "machine": device_info()["measured_on"],
        "variant": SPEC,
        "views": args.views,
        **{f"{name}_s": [round(x, 3) for x in seconds[name]] for name in ways},
        **{f"ratio_{name}_over_traced_batched": {"median": round(statistics.median(r), 2), "min": round(min(r), 2)}
           for name, r in ratios.items()},
        "max_abs_logit_difference_from_eager": {name: float(np.max(np.abs(outputs[name] - outputs["eager"])))
                                                for name in ("traced_per_row", "traced_batched")},
    }
    text = json.dumps(result, indent=2)
    atomic_write_text(args.out, text + "\n")
    print(text)


if __name__ == "__main__":
    main()
