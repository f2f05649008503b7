"""The precision rungs of the accuracy budget: float fallback for the worst ops, its measured latency cost.

Real conversions of the tiny variant calibrated on real photos; no timing thresholds (latency ratios
are only checked to be measured, positive numbers).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.slow

NOT_IO = ("INPUT", "QUANTIZE", "DEQUANTIZE")


@pytest.fixture(scope="module")
def tiny(tiny_int8, tiny_variant):
    """(Keras model, float bytes, plain int8 bytes, calibration samples, held-out samples).

    The shared tiny conversion (conftest ``tiny_int8``), held out on more photos: its own held-out photo
    (rocket) and three more scikit-image photos, 8 views each.
    """
    import skimage.data
    from PIL import Image

    from edgenet.convert.fidelity import VIEWS, holdout_view

    model, float_bytes, int8_bytes, calib, rocket_views = tiny_int8
    images = [Image.fromarray(getattr(skimage.data, n)()[..., :3]) for n in ("cat", "retina", "hubble_deep_field")]
    more = np.stack([holdout_view(im, v, tiny_variant.contract) for im in images for v in VIEWS]).astype(np.float32)
    return model, float_bytes, int8_bytes, calib, np.concatenate([rocket_views, more])


def _ranked(float_bytes, int8_bytes, calib) -> list[str]:
    from edgenet.convert.tensor_errors import measure_report

    return [t.name for t in measure_report(float_bytes, int8_bytes, calib).ranked() if t.op not in NOT_IO]


def test_float_nodes_stay_float_and_the_rest_int8_with_int8_io(tiny):
    from edgenet.convert.worker import keras_to_tflite, precision_ops
    from edgenet.runtime.interpreter import TFLiteModel
    from edgenet.runtime.tflite_graph import read_graph

    model, float_bytes, int8_bytes, calib, _ = tiny
    ranked = _ranked(float_bytes, int8_bytes, calib)
    asked = ranked[:3]
    data, _ = keras_to_tflite(model, "int8", "int8", calib, calibrator="edgenet", float_nodes=tuple(asked))
    # Read from the bytes: exactly the asked ops compute in float, every other op as in plain int8.
    assert sorted(o["tensor"] for o in precision_ops(data)) == sorted(asked)
    assert all(o["dtype"] == "float32" for o in precision_ops(data))
    assert precision_ops(int8_bytes) == []
    plain_ops = [op.opcode for op in read_graph(int8_bytes).operators]
    mixed_ops = [op.opcode for op in read_graph(data).operators]
    assert [o for o in mixed_ops if o not in ("QUANTIZE", "DEQUANTIZE")] == \
        [o for o in plain_ops if o not in ("QUANTIZE", "DEQUANTIZE")]
    assert mixed_ops.count("DEQUANTIZE") >= 3 and mixed_ops.count("QUANTIZE") > plain_ops.count("QUANTIZE")
    tfl = TFLiteModel(data)
    assert tfl.input_details[0]["dtype"] == np.int8 and tfl.output_details[0]["dtype"] == np.int8


def _ladder(tiny, rank_calls: list):
    from edgenet.convert.bias import correct_bias
    from edgenet.convert.fidelity import fidelity_metrics
    from edgenet.convert.paired_latency import paired_latency
    from edgenet.convert.worker import keras_to_tflite, precision_ops
    from edgenet.runtime.interpreter import TFLiteModel

    model, float_bytes, _, calib, held = tiny
    reference = np.concatenate([model(held[i : i + 1], training=False).numpy() for i in range(len(held))])
    origin: dict = {}

    def convert(method, float_nodes=()):
        data = keras_to_tflite(model, "int8", "int8", calib, calibrator="edgenet", ranges=method,
                               keep_histograms=True, float_nodes=tuple(float_nodes))[0]
        if not float_nodes:
            origin[data] = (method, False)
        return data

    def correct(data):
        fixed, summary = correct_bias(float_bytes, data, calib)
        if data in origin:
            origin[fixed] = (origin[data][0], True)
        return fixed, summary.to_dict()

    def fidelity(data):
        tfl = TFLiteModel(data)
        return fidelity_metrics(reference, np.concatenate([tfl.run(held[i : i + 1]) for i in range(len(held))]),
                                images=4).to_dict()

    def float_rung(base, names):
        method, bias = origin[base]
        data = convert(method, names)
        return correct(data)[0] if bias else data

    def rank(data):
        rank_calls.append(data)
        return _ranked(float_bytes, data, calib)

    return dict(convert=convert, correct_bias=correct, fidelity=fidelity,
                precision=[("float", float_rung)], rank=rank,
                upgraded=lambda d: [o["tensor"] for o in precision_ops(d)],
                latency=lambda a, b: paired_latency(a, b, pairs=6))


def test_float_rung_climbs_only_while_unmet_and_keeps_what_it_names(tiny):
    from edgenet.convert.api import _quality_note
    from edgenet.convert.quality import LADDER, RepairPlan, repair
    from edgenet.convert.request import QualityReport
    from edgenet.convert.worker import precision_ops

    calls: list = []
    parts = _ladder(tiny, calls)
    fn = {k: parts[k] for k in ("convert", "correct_bias", "fidelity")}
    rest = {k: parts[k] for k in ("precision", "rank", "upgraded", "latency")}
    # Met by plain int8: no precision rung, nothing ranked.
    data, _, record = repair(RepairPlan(**fn, **rest, min_agreement_pct=1.0))
    assert len(record["budget"]["steps"]) == 1 and calls == [] and record["budget"]["full_integer"]
    assert precision_ops(data) == []

    # Unreachable (100 %) with a latency limit no rung can break: the ladder climbs K = 1, 2, 4.
    data, fid, record = repair(RepairPlan(**fn, **rest, min_agreement_pct=100.0, max_latency_cost_pct=1e6, max_ops=4))
    budget = record["budget"]
    steps = budget["steps"]
    floats = [s for s in steps if s.get("precision") == "float"]
    # 100 % is never met by the lower bound of an interval on a few dozen views: every rung is tried.
    assert len(steps) == len(LADDER) + 3 and not budget["met"]
    assert len(calls) == 1  # ranked once, on the best integer rung's bytes
    # K doubles; what the bytes hold is what was named; each rung is compared with plain int8 on paired flips.
    assert [len(s["ops"]) for s in floats] == [1, 2, 4]
    assert all(s["vs_plain_int8"]["p_value"] <= 1.0 for s in floats)
    for s in floats:
        assert s["latency_vs_plain_int8"]["ratio_of_minima"] > 0 and s["latency_vs_plain_int8"]["median_pair_ratio"] > 0
        assert s["accepted"]
    if record.get("precision"):
        assert sorted(o["tensor"] for o in precision_ops(data)) == sorted(record["precision"]["ops"])
        assert not budget["full_integer"] and budget["latency_vs_plain_int8"]["ratio_of_minima"] > 0
    else:  # no float rung beat the best integer one: the kept model is full-integer
        assert precision_ops(data) == [] and budget["full_integer"]
    note = _quality_note(QualityReport.from_dict(record))  # the summary line the CLI prints and the manifest keeps
    assert note.startswith("accuracy budget 100 % top-1 agreement: ")
    if record.get("precision"):
        assert f"+ float for {len(record['precision']['ops'])} op(s)" in note and "x plain int8" in note
    if not budget["met"]:
        assert f"ladder stopped: {budget['stopped']}" in note

    # A latency limit every rung breaks (any measured ratio > 0 is a cost above -100 %): the first float rung
    # is measured, refused, and the ladder stops there with the reason.
    data, _, record = repair(RepairPlan(**fn, **rest, min_agreement_pct=100.0, max_latency_cost_pct=-100.0, max_ops=4))
    floats = [s for s in record["budget"]["steps"] if s.get("precision")]
    assert len(floats) == 1 and not floats[0]["accepted"]
    assert "--max-latency-cost" in record["budget"]["stopped"]
    assert precision_ops(data) == [] and record["budget"]["full_integer"]
    note = _quality_note(QualityReport.from_dict(record))
    assert "still full-integer" in note and "over --max-latency-cost -100 %" in note


def test_allow_float_is_refused_for_edgetpu_and_without_a_budget(tmp_path):
    from click.testing import CliRunner
    from conftest import TINY_SPEC

    from edgenet.cli import main

    for extra in (["--target", "edgetpu", "--min-agreement", "99"], []):
        result = CliRunner().invoke(main, ["convert", TINY_SPEC, "--calibrator", "edgenet", "--allow-float",
                                           *extra, "-o", str(tmp_path / "out"), "--quiet"])
        assert result.exit_code == 2 and "Traceback" not in result.output  # a usage error, from ConvertRequest
        errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 and "--allow-float" in errors[0], result.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_convert_allow_float_records_ops_agreement_and_latency(tmp_path, calib_and_holdout):
    from click.testing import CliRunner
    from conftest import TINY_SPEC

    from edgenet.cli import main
    from edgenet.convert.worker import precision_ops
    from edgenet.runtime.interpreter import TFLiteModel

    calib, held = calib_and_holdout
    result = CliRunner().invoke(main, ["convert", TINY_SPEC, "--calibrator", "edgenet", "--min-agreement", "100",
                                       "--allow-float", "--calib", str(calib), "--samples", "8", "--holdout",
                                       str(held), "-o", str(tmp_path / "out"), "--quiet", "--json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    manifest = json.loads(open(row["manifest_path"]).read())
    quality = manifest["quality"]
    budget = quality["budget"]
    assert manifest["inputs"]["allow_float"] is True and manifest["inputs"]["max_latency_cost"] == 10.0
    floats = [s for s in budget["steps"] if s.get("precision") == "float"]
    assert floats and not budget["met"]  # 100 % is never met by the lower bound of one photo's views
    for s in floats:  # every float rung's cost was measured against plain int8
        assert s["latency_vs_plain_int8"]["ratio_of_minima"] > 0 and s["latency_vs_plain_int8"]["pairs"] > 0
    assert budget["stopped"] and ("met" if budget["met"] else "NOT met") in result.stderr
    data = open(row["model_path"], "rb").read()
    kept = sorted(o["tensor"] for o in precision_ops(data))
    if quality.get("precision"):  # the manifest names exactly what the bytes run in float
        assert kept == sorted(quality["precision"]["ops"]) and not budget["full_integer"]
        assert budget["latency_vs_plain_int8"]["ratio_of_minima"] > 0
        assert "float for" in result.stderr and "x plain int8" in result.stderr
    else:
        assert kept == [] and budget["full_integer"]
    tfl = TFLiteModel(data)
    assert manifest["io"] == "int8" and tfl.input_details[0]["dtype"] == np.int8
    # The fidelity check after conversion still runs and is what the budget reached.
    assert round(100 * row["fidelity"]["top1_agreement"], 3) == budget["reached_pct"]
    # 8 views of one photo cannot show 100 % beyond doubt: the interval's lower bound stays below the target.
    low, high = budget["reached_ci95_pct"]
    assert low <= budget["reached_pct"] <= high and low < 100.0 and budget["met_at_ci_lower_bound"] is False
    assert f"95 % CI {low:.1f}-{high:.1f} %" in result.stderr


def test_int16_rung_gives_the_named_tensors_16_bits_and_stays_full_integer(tiny):
    from edgenet.convert.quality import RepairPlan, repair
    from edgenet.convert.worker import _int16_rung, precision_ops

    calls: list = []
    parts = _ladder(tiny, calls)
    _, float_bytes, _, calib, _ = tiny
    parts["precision"] = [("int16", _int16_rung(lambda: float_bytes, calib, "int8"))]
    data, fid, record = repair(RepairPlan(**parts, min_agreement_pct=100.0, max_latency_cost_pct=1e6, max_ops=2))
    budget = record["budget"]
    int16 = [s for s in budget["steps"] if s.get("precision") == "int16"]
    assert int16 and len(calls) == 1
    for step in int16:  # what the bytes hold: some tensors in int16, every one of them asked for or its consumer
        assert step["ops"] and step["ranges"] == "minmax" and step["bias_correction"] is False
        assert step["latency_vs_plain_int8"]["ratio_of_minima"] > 0
    # The integer rung the precision rungs must beat: the best by SQNR (then expected, then counted agreement).
    base = max((s for s in budget["steps"] if not s.get("precision")),
               key=lambda s: (s["sqnr_db"], s["expected_agreement"], s["top1_agreement"]))
    if record.get("precision"):  # kept only because it raised the agreement, counted and expected
        assert record["precision"]["kind"] == "int16"
        assert {o["dtype"] for o in precision_ops(data)} == {"int16"}
        assert budget["full_integer"] and not budget["int8_only"]
        assert fid["top1_agreement"] > base["top1_agreement"]
        assert fid["expected_agreement"] >= base["expected_agreement"]
    else:
        assert precision_ops(data) == [] and budget["int8_only"]


def test_allow_int16_is_refused_for_edgetpu_in_one_line(tmp_path):
    from click.testing import CliRunner
    from conftest import TINY_SPEC

    from edgenet.cli import main

    result = CliRunner().invoke(main, ["convert", TINY_SPEC, "--calibrator", "edgenet", "--allow-int16",
                                       "--target", "edgetpu", "--min-agreement", "99", "-o", str(tmp_path / "o")])
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output  # usage error, ConvertRequest
    assert len(errors) == 1 and "--allow-int16" in errors[0], result.output


def _constructed(n: int, flips_of: dict):
    """The budget's callables over constructed logits: ``flips_of[(ranges, bias)]`` is the set of held-out samples
    that rung flips (one image per sample). Conversion and bias correction only name the rung they made."""
    from edgenet.convert.fidelity import fidelity_metrics

    ref = np.zeros((n, 3))
    ref[:, 0] = 2.0
    evaluated: list = []

    def fidelity(data: bytes) -> dict:
        evaluated.append(data)
        quant = ref.copy()
        quant[sorted(flips_of[data]), 1] = 3.0
        return fidelity_metrics(ref, quant, groups=np.arange(n)).to_dict()

    return dict(convert=lambda method: (method, False), correct_bias=lambda data: ((data[0], True), {"ops": 1}),
                fidelity=fidelity), evaluated


def test_budget_is_met_only_by_the_lower_bound_of_its_interval():
    from edgenet.convert.quality import LADDER, RepairPlan, repair

    # 24 views, no flip: 100 % counted, but the interval's lower bound (86 %) misses 99.5: the ladder climbs on.
    parts, evaluated = _constructed(24, {rung: set() for rung in LADDER})
    _, fid, record = repair(RepairPlan(**parts, min_agreement_pct=99.5))
    budget = record["budget"]
    assert fid["top1_agreement"] == 1.0 and not budget["met"] and len(evaluated) == len(LADDER)
    assert budget["reached_ci95_pct"][0] < 99.5 and budget["met_at_ci_lower_bound"] is False
    assert (record["ranges"], record["bias_correction"]) == ("minmax", None)  # nothing beat plain int8
    # 800 views, no flip: lower bound 99.52 % meets 99.5 at plain int8, which stops the ladder there.
    parts, evaluated = _constructed(800, {rung: set() for rung in LADDER})
    _, _, record = repair(RepairPlan(**parts, min_agreement_pct=99.5))
    assert record["budget"]["met"] and len(evaluated) == 1 and record["budget"]["reached_ci95_pct"][0] >= 99.5


def test_budget_keeps_plain_int8_unless_a_rung_beats_it_on_paired_flips():
    from edgenet.convert.quality import RepairPlan, repair

    plain = set(range(10))
    # Bias correction flips 6 other samples: a better rate (98.5 vs 97.5 %), but 10 vs 6 discordant is chance;
    # auto ranges fix 9 of plain's flips and add one: McNemar p = 0.02, so it replaces plain int8.
    flips = {("minmax", False): plain, ("minmax", True): set(range(200, 206)), ("auto", False): {0, 300},
             ("auto", True): plain}
    parts, _ = _constructed(400, flips)
    data, fid, record = repair(RepairPlan(**parts, min_agreement_pct=99.9))
    steps = record["budget"]["steps"]
    assert steps[0]["vs_plain_int8"] is None
    assert steps[1]["vs_plain_int8"]["only_a"] == 10 and not steps[1]["vs_plain_int8"]["b_better"]
    assert steps[2]["vs_plain_int8"]["b_better"] and steps[2]["vs_plain_int8"]["p_value"] < 0.05
    assert data == ("auto", False) and fid["flips"] == 2 and not record["budget"]["met"]
    assert record["budget"]["vs_plain_int8"]["only_a"] == 9
    # Without the auto rung's fix, the better-looking bias rung still does not replace plain int8.
    parts, _ = _constructed(400, {**flips, ("auto", False): plain})
    data, _, record = repair(RepairPlan(**parts, min_agreement_pct=99.9))
    assert data == ("minmax", False) and record["budget"]["vs_plain_int8"] is None


def test_budget_keeps_a_rung_that_is_closer_on_the_close_calls_though_too_few_flips_differ_to_count():
    from edgenet.convert.fidelity import fidelity_metrics
    from edgenet.convert.quality import RepairPlan, repair

    # 60 views of 30 photos; each rung's error is a multiple of one fixed noise. Bias correction halves it: it fixes
    # 3 of plain int8's 7 flips and adds none (too few to count, p = 0.25) but quarters the squared error on every
    # close call (p < 0.001 over the 30 photos), so it replaces plain int8. Auto ranges change nothing.
    rng = np.random.default_rng(3)
    ref = rng.normal(size=(60, 5))
    noise = rng.normal(scale=0.2, size=(60, 5))
    scale = {("minmax", False): 1.0, ("minmax", True): 0.5, ("auto", False): 1.0, ("auto", True): 0.5}

    def fidelity(data):
        return fidelity_metrics(ref, ref + scale[data] * noise, groups=np.repeat(np.arange(30), 2)).to_dict()

    data, fid, record = repair(RepairPlan(convert=lambda method: (method, False),
                                          correct_bias=lambda d: ((d[0], True), {"ops": 1, "channels": 2}),
                                          fidelity=fidelity, min_agreement_pct=99.9))
    steps = record["budget"]["steps"]
    bias = steps[1]["vs_plain_int8"]
    assert (bias["only_a"], bias["only_b"]) == (3, 0) and not bias["fewer_flips"]
    assert bias["closer"] and bias["b_better"] and bias["close_error_ratio"] == pytest.approx(0.25, rel=1e-3)
    assert not steps[2]["vs_plain_int8"]["b_better"]  # the same model as plain int8
    assert data == ("minmax", True) and record["budget"]["vs_plain_int8"]["closer"]
    # The summary line says why: the paired evidence against plain int8.
    from edgenet.convert.api import _quality_note
    from edgenet.convert.request import QualityReport

    note = _quality_note(QualityReport.from_dict(record))
    assert "with bias correction (1 ops, 2 biases moved), which beats plain int8 on the choice photos (flips only " \
           "plain int8 / only this 3 / 0; close-call error 0.25x, p = " in note
    # Plain int8 kept after the ladder: the line says no rung beat it.
    scale.update({("minmax", True): 1.0, ("auto", True): 1.0})
    _, _, record = repair(RepairPlan(convert=lambda method: (method, False),
                                     correct_bias=lambda d: ((d[0], True), {"ops": 1, "channels": 2}),
                                     fidelity=fidelity, min_agreement_pct=99.9))
    note = _quality_note(QualityReport.from_dict(record))
    assert "with plain int8 (min/max ranges), no rung beating it on the choice photos; still full-integer" in note


def test_budget_reports_on_images_its_choice_never_saw():
    from edgenet.convert.fidelity import fidelity_metrics
    from edgenet.convert.quality import LADDER, RepairPlan, repair

    parts, _ = _constructed(400, {rung: set(range(10)) for rung in LADDER})
    ref = np.zeros((50, 3))
    ref[:, 0] = 1.0
    reported: list = []

    def report(data):
        reported.append(data)
        return fidelity_metrics(ref, ref, groups=np.arange(50)).to_dict()

    _, fid, record = repair(RepairPlan(**parts, min_agreement_pct=99.0, report=report))
    assert reported == [("minmax", False)] and fid["samples"] == 50  # the returned fidelity is the report's
    budget = record["budget"]
    assert budget["choice_samples"] == 400 and budget["report"]["samples"] == 50
    assert budget["reached_pct"] == 97.5 and budget["report"]["top1_agreement_pct"] == 100.0


def test_repair_plan_refuses_what_cannot_run():
    from edgenet.convert.quality import RepairPlan

    parts, _ = _constructed(4, {})
    for bad in ({"weight_rounding": True}, {"min_agreement_pct": float("nan")}, {"min_agreement_pct": -1.0},
                {"precision": (("float", lambda b, n: b),)}):
        with pytest.raises(ValueError):
            RepairPlan(**parts, **bad)
