"""How far the fidelity check's agreement can be trusted: near-ties and the coverage of its 95 % interval.

The fidelity check (``edgenet/convert/fidelity.py``) reports, besides the top-1 agreement, the flips, the
near-ties (float top-1/top-2 margin below 2 x the RMS int8 error on that margin) and a 95 % interval: a
cluster bootstrap over the distinct photos, never narrower than Wilson's interval on the samples. This
script checks both on real networks and on simulated data where the truth is known:

* **real**: Lite0/1/2 (ImageNet weights from their packages), int8 with edgenet's calibrator (100 default
  calibration samples, seed 0) as plain min/max, + bias correction, and auto ranges + bias correction; the
  28 evaluation photos of ``benchmarks/quant_quality.py`` (20 foolbox ImageNet photos x 2 views, 8 sample
  photos x 8 views: 104 samples). Per model: the agreement on all 104, flips, near-ties, flips at near-ties,
  and the expected agreement from the margins (``expected_agreement``) against the counted one.
  Then, as a check of the interval, ``--subsets`` random subsets of k photos (k = 3, 8, 14, drawn without
  replacement): how often each method's interval on the subset contains the agreement on all 28 photos.
* **simulated**: G photos x 8 views with a known agreement of 95.5 %, either *correlated* (15 % of photos
  are near-ties whose views each flip with probability 0.3; the others never flip) or *independent* (every
  view flips with probability 0.045). Coverage of the true agreement over ``--trials`` data sets.

Methods compared: Wilson on the samples (views independent), the cluster bootstrap alone (percentile, 2000
resamples), and edgenet's interval (bootstrap, at least Wilson on the samples; Wilson on the photos when
the bootstrap cannot vary).

    .venv/bin/python benchmarks/fidelity_interval.py [--nets lite0,lite1,lite2] [--subsets 400] [--trials 1000]

Writes benchmarks/results/fidelity_interval.json and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from quant_quality import _photos, _weights  # noqa: E402

RESULTS = HERE / "results" / "fidelity_interval.json"
SUBSET_SIZES = (3, 8, 14)
SIM_PHOTOS = (3, 8, 13, 28)
SETTINGS = (("minmax", False), ("minmax", True), ("auto", True))


def intervals(agree: np.ndarray, groups: np.ndarray) -> dict[str, tuple[float, float]]:
    from edgenet.convert.fidelity import agreement_interval, cluster_bootstrap

    return {"wilson_samples": agreement_interval(agree)[0], "bootstrap_only": cluster_bootstrap(agree, groups),
            "edgenet": agreement_interval(agree, groups)[0]}


def coverage(agree: np.ndarray, groups: np.ndarray, truth: float, draws) -> dict:
    """Share of ``draws`` (lists of photo ids) whose interval contains ``truth``, and the mean width, per method."""
    hits: dict[str, int] = {}
    widths: dict[str, list] = {}
    for chosen in draws:
        mask = np.isin(groups, chosen)
        for method, (low, high) in intervals(agree[mask], groups[mask]).items():
            hits[method] = hits.get(method, 0) + int(low - 1e-12 <= truth <= high + 1e-12)
            widths.setdefault(method, []).append(high - low)
    n = len(draws)
    return {m: {"coverage_pct": round(100 * hits[m] / n, 1), "mean_width_pts": round(100 * float(np.mean(widths[m])), 1)}
            for m in hits}


def real(nets: list[str], subsets: int, samples: int) -> list[dict]:
    from PIL import Image

    from edgenet.convert.bias import correct_bias
    from edgenet.convert.calibration import load_calibration
    from edgenet.convert.fidelity import VIEWS, agreement_line, fidelity_metrics, holdout_view
    from edgenet.convert.worker import keras_to_tflite
    from edgenet.family.model import build_model
    from edgenet.family.variants import parse_variant
    from edgenet.runtime.interpreter import TFLiteModel
    from edgenet.weights.keras_files import load_weights

    photos = _photos()
    rows = []
    for net in nets:
        variant = parse_variant(net)
        model = build_model(variant, batch_size=1)
        load_weights(model, variant, _weights(net))
        calib = load_calibration("default", variant.contract, samples, 0, progress=False).array
        # Photo by photo, every view of one before the next (as quant_quality's evaluation set): the grouping.
        xs, groups = [], []
        for photo_id, (_, pixels, label) in enumerate(photos):
            image = Image.fromarray(pixels)
            for view in VIEWS[:2] if label is not None else VIEWS:
                xs.append(holdout_view(image, view, variant.contract))
                groups.append(photo_id)
        xs, groups = np.stack(xs).astype(np.float32), np.asarray(groups)
        reference = np.concatenate([model(xs[i : i + 1], training=False).numpy() for i in range(len(xs))])
        float_bytes = keras_to_tflite(model, "fp32")[0]
        converted: dict[str, bytes] = {}
        for ranges, bias in SETTINGS:
            t0 = time.perf_counter()
            if ranges not in converted:
                converted[ranges] = keras_to_tflite(model, "int8", "int8", calib, calibrator="edgenet",
                                                    ranges=ranges)[0]
            data = converted[ranges]
            if bias:
                data = correct_bias(float_bytes, data, calib[:32])[0]
            tfl = TFLiteModel(data)
            quant = np.concatenate([tfl.run(xs[i : i + 1]) for i in range(len(xs))])
            fid = fidelity_metrics(reference, quant, groups=groups)
            agree = np.argmax(reference, 1) == np.argmax(quant, 1)
            rng = np.random.default_rng(1)
            ids = np.unique(groups)
            row = {"net": net, "setting": ranges + (" + bias" if bias else ""), "fidelity": fid.to_dict(),
                   "line": agreement_line(fid.to_dict()), "seconds": round(time.perf_counter() - t0, 1),
                   "coverage_of_all_28": {str(k): coverage(agree, groups, fid.top1_agreement,
                                                           [rng.choice(ids, k, replace=False) for _ in range(subsets)])
                                          for k in SUBSET_SIZES}}
            rows.append(row)
            print(json.dumps({k: row[k] for k in ("net", "setting", "line")}), file=sys.stderr, flush=True)
    return rows


def simulated(trials: int, views: int = 8) -> list[dict]:
    rng = np.random.default_rng(0)
    scenarios = {
        "correlated": lambda g: (rng.random((g, 1)) < 0.15) & (rng.random((g, views)) < 0.3),
        "independent": lambda g: rng.random((g, views)) < 0.045,
    }
    truth = 1 - 0.15 * 0.3
    rows = []
    for name, flips_of in scenarios.items():
        for g in SIM_PHOTOS:
            groups = np.repeat(np.arange(g), views)
            hits: dict[str, int] = {}
            widths: dict[str, list] = {}
            for _ in range(trials):
                agree = ~flips_of(g).reshape(-1)
                for method, (low, high) in intervals(agree, groups).items():
                    hits[method] = hits.get(method, 0) + int(low - 1e-12 <= truth <= high + 1e-12)
                    widths.setdefault(method, []).append(high - low)
            rows.append({"scenario": name, "photos": g, "views": views, "truth_pct": round(100 * truth, 1),
                         **{m: {"coverage_pct": round(100 * hits[m] / trials, 1),
                                "mean_width_pts": round(100 * float(np.mean(widths[m])), 1)} for m in hits}})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", default="lite0,lite1,lite2", help="real networks ('' for none)")
    parser.add_argument("--subsets", type=int, default=400, help="random photo subsets per k and model")
    parser.add_argument("--trials", type=int, default=1000, help="simulated data sets per scenario and size")
    parser.add_argument("--samples", type=int, default=100, help="calibration samples")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results file (JSON)")
    args = parser.parse_args(argv)

    sim = simulated(args.trials)
    rows = real([n for n in args.nets.split(",") if n], args.subsets, args.samples)
    args.out.write_text(json.dumps({"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                    "command": " ".join(sys.argv[1:]), "simulated": sim, "real": rows}, indent=1),
                        encoding="utf-8")
    methods = ("wilson_samples", "bootstrap_only", "edgenet")
    print("| scenario | photos x views | " + " | ".join(f"{m} coverage % (width pts)" for m in methods) + " |")
    print("|---|---|" + "---:|" * len(methods))
    for r in sim:
        print(f"| {r['scenario']} | {r['photos']} x {r['views']} | " + " | ".join(
            f"{r[m]['coverage_pct']:.1f} ({r[m]['mean_width_pts']:.1f})" for m in methods) + " |")
    print()
    print("| net | setting | agreement on 28 photos (95 % CI) | expected | flips | at near-ties | near-ties | "
          "expected flips | " + " | ".join(f"k={k}: " + " / ".join(methods) for k in SUBSET_SIZES) + " |")
    print("|---|---|---|---:|---:|---:|---:|---:|" + "---|" * len(SUBSET_SIZES))
    for r in rows:
        f = r["fidelity"]
        low, high = f["top1_agreement_ci95"]
        print(f"| {r['net']} | {r['setting']} | {100 * f['top1_agreement']:.1f} % ({100 * low:.1f}-{100 * high:.1f}) "
              f"| {100 * f['expected_agreement']:.1f} % | {f['flips']} | {f['flips_near_tie']} | {f['near_ties']} | "
              f"{(1 - f['expected_agreement']) * f['samples']:.1f} | " + " | ".join(
                  " / ".join(f"{r['coverage_of_all_28'][str(k)][m]['coverage_pct']:.0f}" for m in methods)
                  for k in SUBSET_SIZES) + " |")
    if rows:
        counted = sum(r["fidelity"]["flips"] for r in rows)
        expected = sum((1 - r["fidelity"]["expected_agreement"]) * r["fidelity"]["samples"] for r in rows)
        print(f"\nflips over all {len(rows)} models: counted {counted}, expected {expected:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
