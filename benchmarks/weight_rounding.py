"""Error-compensating int8 weight rounding (GPTQ, edgenet.convert.rounding) against round-to-nearest.

For each network (real ImageNet Lite0/1/2 from their packages; ``--digits`` adds the swish+SE
network of the test suite trained on scikit-learn digits) one process builds the Keras model,
runs edgenet's calibrator once (``--samples`` of the embedded calibration set, seed 0, min/max
ranges) and compares, on the evaluation photographs of ``benchmarks/quant_quality.py`` (never the
calibration images):

* plain int8 (TF's converter: weights rounded to nearest);
* plain + bias correction (edgenet.convert.bias, 32 calibration samples);
* weight rounding (GPTQ on ``--rounding-samples`` calibration samples);
* weight rounding + bias correction (measured on the re-rounded model);
* with ``--sequential``: the same, ops in execution order, each one's inputs measured again after the
  earlier ones are re-rounded (``round_weights(..., sequential=True)``; with ``--target float_output``
  also for that target);
* with ``--target float_output``: weight rounding (and + bias correction) towards the float model's
  op outputs (``round_weights(..., target="float_output")``, ridge ``--ridge``), next to the default;
* ceiling: the float model with its weights rounded to nearest int8, float activations (not
  deployable; benchmarks/mixed_int16.py ``weights_only``) -- what round-to-nearest weights cost;
  and the same with the re-rounded weights (``with_weights_of``) -- what is left of the weights' error;
* with ``--seeds N``: rounding + bias correction again with seeds 1..N-1 (other random pixels for the
  Hessians; same samples), to show how much the agreement moves at the same SQNR.

Each row also has its flips (sample indices and their float top-1/top-2 margins) and a smooth estimate
of the agreement from the float margins and the error on the top-2 difference (``flip_risk``), with how
many dB of SQNR that estimate says 99.5 % would take; the JSON's ``near_ties`` counts the evaluation
samples whose float margin is small.

Top-1 agreement with the float Keras model, logits SQNR, top-1 on the labelled photos, time taken
by the repair, and latency against plain int8 (interleaved, single thread; the graph is unchanged
so it should be 1.00).

    .venv/bin/python benchmarks/weight_rounding.py [--nets lite0,lite1,lite2] [--digits]

Writes benchmarks/results/weight_rounding.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from quant_quality import _latency_ratio, _photos  # noqa: E402

RESULTS = HERE / "results" / "weight_rounding.json"


#: Float top-1 over top-2 logit margins counted as near-ties in the results (logits of the Lite nets).
MARGINS = (0.1, 0.2, 0.5)


def flip_risk(reference: np.ndarray, out: np.ndarray, fidelity) -> dict:
    """How the flips relate to the float model's near-ties, and what the error would have to be for 99.5 %.

    ``fidelity`` (:func:`edgenet.convert.fidelity.fidelity_metrics` of the same logits) has the smooth estimate
    of the agreement, ``expected_agreement = 1 - mean_i Phi(-m_i / sigma)`` (``m_i`` the float top-1 over top-2
    margin, ``sigma`` its ``margin_error_rms``); ``db_for_99_5`` is how much the error would have to shrink (in
    dB of SQNR) for that estimate to reach 99.5 % on these samples."""
    from scipy.optimize import brentq
    from scipy.special import ndtr

    top2 = np.sort(reference, axis=1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    flips = np.nonzero(np.argmax(out, axis=1) != np.argmax(reference, axis=1))[0]
    sigma = fidelity.margin_error_rms

    def expected(s: float) -> float:
        return float(np.mean(ndtr(-margin / s))) if s > 0 else 0.0

    target = 0.005
    shrink = brentq(lambda s: expected(s) - target, 1e-6, sigma) if expected(sigma) > target else sigma
    return {"flips": flips.tolist(), "flip_margins": [round(float(margin[i]), 3) for i in flips],
            "sigma_top2_diff": round(sigma, 4),
            "expected_agreement_pct": round(100 * fidelity.expected_agreement, 2),
            "db_for_99_5": round(float(20 * np.log10(sigma / shrink)), 1) if sigma > 0 else 0.0}


def measure(net: str, args, model, calib, xs, labelled, labels) -> list[dict]:
    from mixed_int16 import weights_only, with_weights_of

    from edgenet.convert.bias import DEFAULT_BIAS_SAMPLES, correct_bias
    from edgenet.convert.fidelity import fidelity_metrics
    from edgenet.convert.rounding import round_weights
    from edgenet.convert.worker import keras_to_tflite
    from edgenet.runtime.interpreter import TFLiteModel
    from edgenet.runtime.tflite_graph import read_graph

    reference = np.concatenate([model(xs[i : i + 1], training=False).numpy() for i in range(len(xs))])
    top2 = np.sort(reference, axis=1)[:, -2:]
    args.near_ties[net] = {f"float_margin_below_{m}": int(np.sum(top2[:, 1] - top2[:, 0] < m)) for m in MARGINS}
    args.near_ties[net]["samples"] = len(xs)
    float_bytes = keras_to_tflite(model, "fp32")[0]
    plain = keras_to_tflite(model, "int8", "int8", calib, calibrator="edgenet")[0]

    def signature(data: bytes):
        g = read_graph(data)
        return [(op.opcode, tuple((g.tensors[t].shape, g.tensors[t].dtype, g.tensors[t].quantization)
                                  for t in op.inputs + op.outputs if t >= 0)) for op in g.operators]

    rows = []

    def row(setting: str, data: bytes, seconds: float = 0.0, **extra) -> None:
        tfl = TFLiteModel(data)
        out = np.concatenate([tfl.run(xs[i : i + 1]) for i in range(len(xs))])
        f = fidelity_metrics(reference, out)
        r = {"net": net, "setting": setting, "top1_agreement_pct": round(100 * f.top1_agreement, 2),
             "sqnr_db": round(f.sqnr_db, 2), "samples": len(xs), "seconds": round(seconds, 1),
             **flip_risk(reference, out, f), **extra}
        if len(labelled):
            r["top1_float_pct"] = round(100 * float(np.mean(np.argmax(reference[labelled], 1) == labels)), 1)
            r["top1_pct"] = round(100 * float(np.mean(np.argmax(out[labelled], 1) == labels)), 1)
        if "ceiling" not in setting:
            r["same_graph_as_plain"] = signature(data) == signature(plain)
            r["latency_vs_plain"] = 1.0 if data is plain else round(_latency_ratio(plain, data, args.reps,
                                                                                   args.runs), 3)
        rows.append(r)
        print(json.dumps(r), file=sys.stderr, flush=True)

    row("plain int8 (round to nearest)", plain)
    t0 = time.perf_counter()
    bias = correct_bias(float_bytes, plain, calib[:DEFAULT_BIAS_SAMPLES])[0]
    row("plain + bias correction", bias, time.perf_counter() - t0)
    t0 = time.perf_counter()
    used = calib[args.rounding_start : args.rounding_start + args.rounding_samples]
    rounded, summary = round_weights(float_bytes, plain, used, ops=args.ops)
    for _ in range(args.passes - 1):  # again, its inputs now from re-rounded upstream weights
        rounded, summary = round_weights(float_bytes, rounded, used, ops=args.ops)
    seconds = time.perf_counter() - t0
    row("weight rounding (GPTQ)", rounded, seconds, rounding=summary.to_dict())
    t0 = time.perf_counter()
    both = correct_bias(float_bytes, rounded, calib[:DEFAULT_BIAS_SAMPLES])[0]
    row("weight rounding + bias correction", both, seconds + time.perf_counter() - t0)
    row("ceiling: re-rounded int8 weights only, float activations (not deployable)",
        with_weights_of(float_bytes, rounded))
    for seed in range(1, args.seeds):  # the same repair, other random pixels for the Hessians
        t0 = time.perf_counter()
        other = round_weights(float_bytes, plain, used, ops=args.ops, seed=seed)[0]
        other = correct_bias(float_bytes, other, calib[:DEFAULT_BIAS_SAMPLES])[0]
        row(f"weight rounding + bias correction, seed {seed}", other, time.perf_counter() - t0)
    if args.target == "float_output":  # the upstream-aware target, side by side with the default one
        t0 = time.perf_counter()
        rounded, summary = round_weights(float_bytes, plain, used, ops=args.ops, target="float_output",
                                         ridge=args.ridge)
        seconds = time.perf_counter() - t0
        row(f"weight rounding (GPTQ), float_output target, ridge {args.ridge}", rounded, seconds,
            rounding=summary.to_dict())
        t0 = time.perf_counter()
        both = correct_bias(float_bytes, rounded, calib[:DEFAULT_BIAS_SAMPLES])[0]
        row(f"weight rounding, float_output target, ridge {args.ridge} + bias correction", both,
            seconds + time.perf_counter() - t0)
    if args.sequential:  # each op's inputs re-measured after the ops before it are re-rounded
        for target in ("weights", "float_output") if args.target == "float_output" else ("weights",):
            label = "sequential weight rounding" + (f", float_output target, ridge {args.ridge}"
                                                    if target == "float_output" else "")
            t0 = time.perf_counter()
            rounded, summary = round_weights(float_bytes, plain, used, ops=args.ops, target=target,
                                             ridge=args.ridge, sequential=True)
            seconds = time.perf_counter() - t0
            row(label, rounded, seconds, rounding=summary.to_dict())
            t0 = time.perf_counter()
            both = correct_bias(float_bytes, rounded, calib[:DEFAULT_BIAS_SAMPLES])[0]
            row(label + " + bias correction", both, seconds + time.perf_counter() - t0)
    row("ceiling: int8 weights (nearest) only, float activations (not deployable)", weights_only(float_bytes))
    return rows


def rounding_ops() -> tuple[str, ...]:
    from edgenet.convert.rounding import ROUNDED_OPS

    return ROUNDED_OPS


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", default="lite0,lite1,lite2")
    parser.add_argument("--digits", action="store_true", help="also the swish+SE digits network (trains it)")
    parser.add_argument("--samples", type=int, default=100, help="calibration samples for the ranges")
    parser.add_argument("--rounding-samples", type=int, default=32)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--act-order", action="store_true", help="ablation: GPTQ's act-order")
    parser.add_argument("--damping", type=float, default=None, help="ablation: H damping (default 0.01)")
    parser.add_argument("--pixels", type=int, default=None, help="ablation: pixels per sample (default 256)")
    parser.add_argument("--passes", type=int, default=1, help="ablation: rounding passes (default 1)")
    parser.add_argument("--rounding-start", type=int, default=0, help="ablation: first calibration sample rounded on")
    parser.add_argument("--target", choices=("weights", "float_output"), default="weights",
                        help="float_output: also the upstream-aware target (rows added next to the default's)")
    parser.add_argument("--seeds", type=int, default=1,
                        help="also rounding + bias correction with seeds 1..N-1 (pixels drawn for the Hessians)")
    parser.add_argument("--sequential", action="store_true",
                        help="also sequential rounding (each op's inputs re-measured after earlier ops re-rounded)")
    parser.add_argument("--ridge", type=float, default=None, help="float_output target's ridge (default 0.01)")
    parser.add_argument("--ops", default=None,
                        help="ablation: only these opcodes re-rounded, comma-separated (default all three)")
    args = parser.parse_args(argv)
    args.ops = tuple(args.ops.split(",")) if args.ops else rounding_ops()
    import edgenet.convert.rounding as rounding

    rounding.ACT_ORDER = args.act_order or rounding.ACT_ORDER
    rounding.DAMPING = rounding.DAMPING if args.damping is None else args.damping
    rounding.PIXELS_PER_SAMPLE = args.pixels or rounding.PIXELS_PER_SAMPLE
    warnings.filterwarnings("ignore")
    from mixed_int16 import digits_net, imagenet_net

    rows = []
    near_ties = args.near_ties = {}
    for net in [n for n in args.nets.split(",") if n]:
        rows += measure(net, args, *imagenet_net(net, args.samples))
    if args.digits:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            rows += measure("digits", args, *digits_net(Path(tmp), args.samples))
    photos = _photos()
    args.out.write_text(json.dumps({
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "command": " ".join(sys.argv[1:]),
        "distinct": {"imagenet_photos": len(photos), "imagenet_labelled": sum(p[2] is not None for p in photos)},
        "near_ties": near_ties, "rows": rows}, indent=1), encoding="utf-8")
    print("| net | setting | top-1 agree % | expected % | dB to 99.5 % | SQNR dB | top-1 % (float) | seconds |"
          " latency vs plain |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        top1 = f"{r['top1_pct']} ({r['top1_float_pct']})" if "top1_pct" in r else "-"
        lat = f"{r['latency_vs_plain']:.2f}x" if "latency_vs_plain" in r else "-"
        print(f"| {r['net']} | {r['setting']} | {r['top1_agreement_pct']:.1f} | {r['expected_agreement_pct']:.1f} | "
              f"{r['db_for_99_5']} | {r['sqnr_db']:.1f} | {top1} | {r['seconds']} | {lat} |")
    print(json.dumps(near_ties))
    return 0


if __name__ == "__main__":
    sys.exit(main())
