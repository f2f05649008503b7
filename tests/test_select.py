"""Selection on recorded results: JSON-lines fixtures written here, read back as a user would."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from edgenet.cli.select import select as select_cmd
from edgenet.decide.select import Selection, analytic_counts, select
from edgenet.errors import EdgenetError
from edgenet.results import append_records, make_record, read_records

# p50 latencies (ms) recorded on a Raspberry Pi 4 at one thread, rounded.
PI4_MS = {"b0": 48.0, "b1": 81.0, "b2": 112.0, "b3": 205.0, "b4": 470.0}


def recorded_samples(p50, runs=101):
    """Timed runs whose linear percentiles are exactly the record's stats below (p50, 1.05, 1.08, 1.15 x p50),
    interleaved as a steady device would produce them."""
    import numpy as np

    knots = ([0.0, 0.5, 0.9, 0.95, 0.99, 1.0], [0.95, 1.0, 1.05, 1.08, 1.15, 1.2])
    ordered = [p50 * float(np.interp(i / (runs - 1), *knots)) for i in range(runs)]
    order = np.random.default_rng(0).permutation(runs)
    return [ordered[i] for i in order]


def bench_record(
    variant,
    p50,
    *,
    device="pi4",
    hostname="raspberrypi",
    threads=1,
    quant="int8",
    error=None,
    created="2025-01-01T00:00:00+00:00",
    sha=None,
    macs=None,
    samples=None,
    name=None,
):
    """A bench record as the harness writes it (p90.. derived from p50 so stats are ordered)."""
    if samples is None and p50 is not None:
        samples = recorded_samples(p50)
    return make_record(
        "bench",
        created_utc=created,
        model={
            "path": f"/models/{name or variant}_{quant}.tflite",
            "name": name or f"{variant}_{quant}",
            "sha256": sha or f"sha-{variant}-{quant}",
            "size_bytes": 1_000_000,
            "variant": variant,
            "quant": quant,
            "macs": macs,
        },
        device={"label": device, "hostname": hostname, "cores": 4},
        settings={"threads": threads, "xnnpack": True, "delegate": "cpu"},
        latency_ms=None
        if error
        else {"p50": p50, "p90": p50 * 1.05, "p95": p50 * 1.08, "p99": p50 * 1.15, "mean": p50, "min": p50 * 0.95},
        runs=None if error else len(samples or ()),
        samples_ms=None if error else samples,
        error=error,
    )


def eval_record(variant, top1, *, quant="int8", sha=None):
    return make_record(
        "eval",
        model={
            "name": f"{variant}_{quant}",
            "sha256": sha or f"sha-{variant}-{quant}",
            "variant": variant,
            "quant": quant,
        },
        accuracy={"top1": top1, "top5": None, "count": 1000, "dataset": "imagenet-val-1k"},
    )


def pi4_records():
    return [bench_record(v, ms) for v, ms in PI4_MS.items()]


def write(tmp_path, records, name="results.jsonl"):
    path = tmp_path / name
    append_records(path, records)
    return path


def test_picks_largest_that_fits_and_explains_every_candidate(tmp_path):
    records = read_records(write(tmp_path, pi4_records()))
    sel = select(records, budget_ms=150)
    assert sel.pick.variant == "b2"
    by = {c.variant: c for c in sel.candidates}
    assert [c.variant for c in sel.candidates] == ["b4", "b3", "b2", "b1", "b0"]  # largest first
    assert by["b2"].reason == "picked" and by["b2"].fits
    assert by["b3"].reason == "over budget by 55.00 ms" and not by["b3"].fits
    assert by["b4"].reason == "over budget by 320.00 ms"
    assert by["b1"].reason == by["b0"].reason == "smaller than the pick"
    assert by["b2"].margin_ms == pytest.approx(38.0)
    assert by["b2"].margin_pct == pytest.approx(100 * 38 / 150)
    assert by["b2"].macs == analytic_counts("b2")["macs"]  # no MACs in the record: analytic count
    assert sel.closest is None


def test_stat_changes_the_latency_held_to_the_budget():
    sel = select(pi4_records(), budget_ms=115, stat="p90")  # b2's p90 is 117.6
    assert sel.pick.variant == "b1"
    assert {c.variant: c.latency_ms for c in sel.candidates}["b2"] == pytest.approx(112 * 1.05)


def test_ties_in_macs_prefer_lower_latency_then_name():
    records = [
        bench_record("b0", 40.0, quant="int8", macs=400_000_000),
        bench_record("b0", 30.0, quant="int8-fast", macs=400_000_000),
        bench_record("lite0", 30.0, quant="int8", macs=400_000_000),
    ]
    sel = select(records, budget_ms=100)
    assert (sel.pick.variant, sel.pick.quant) == ("b0", "int8-fast")
    reasons = {(c.variant, c.quant): c.reason for c in sel.candidates}
    assert reasons[("lite0", "int8")].startswith("same MACs and latency as the pick")
    assert reasons[("b0", "int8")] == "same MACs as the pick but slower"


def test_no_candidate_fits_names_the_closest():
    sel = select(pi4_records(), budget_ms=20)
    assert sel.pick is None
    assert sel.closest.variant == "b0"
    assert all(not c.fits for c in sel.candidates)
    assert "closest: b0" in sel.message and "over budget by 28.00 ms" in sel.message


def test_accuracy_floor_and_unknown_accuracy_flagged():
    records = pi4_records() + [eval_record("b2", 0.741), eval_record("b1", 76.5)]  # fraction and percent
    sel = select(records, budget_ms=300, min_top1=75.0)
    by = {c.variant: c for c in sel.candidates}
    assert by["b2"].top1 == pytest.approx(74.1)
    assert by["b2"].reason == "top-1 74.1 below floor 75" and not by["b2"].fits
    # b3 fits and its accuracy is unknown: it is not disqualified, but flagged.
    assert sel.pick.variant == "b3" and sel.pick.top1 is None and "top-1 unknown" in sel.pick.flags
    assert by["b1"].top1 == pytest.approx(76.5) and by["b1"].flags == ()
    assert any("top-1 unknown" in n for n in sel.notes)


def test_accuracy_matches_by_sha_before_variant():
    records = [
        bench_record("b0", 40.0, sha="aaa"),
        eval_record("b0", 70.0, sha="zzz"),
        eval_record("b0", 77.0, sha="aaa"),
    ]
    assert select(records, budget_ms=100).pick.top1 == pytest.approx(77.0)


def test_mixed_devices_are_refused_with_what_was_found():
    records = pi4_records() + [bench_record("b0", 9.0, device="laptop", hostname="x1")]
    with pytest.raises(EdgenetError) as err:
        select(records, budget_ms=100)
    msg = str(err.value)
    assert "\n" not in msg
    assert "pi4 threads=1" in msg and "laptop threads=1" in msg and "--device" in msg
    # --device narrows it down (label or hostname)
    assert select(records, budget_ms=150, device="pi4").pick.variant == "b2"
    assert select(records, budget_ms=100, device="x1").pick.variant == "b0"


def test_mixed_threads_are_refused_unless_filtered():
    records = pi4_records() + [bench_record("b3", 90.0, threads=4)]
    with pytest.raises(EdgenetError, match="threads=4"):
        select(records, budget_ms=100)
    with pytest.raises(EdgenetError, match="threads=4"):
        select(records, budget_ms=100, device="pi4")  # same device, two settings: still refused
    assert select(records, budget_ms=100, threads=4).pick.variant == "b3"


def test_failed_records_and_other_kinds_are_ignored():
    records = pi4_records() + [
        bench_record("b3", None, error="benchmark child crashed (SIGSEGV)", device="other"),
        make_record("convert", model={"name": "b5_int8", "variant": "b5"}),
    ]
    sel = select(records, budget_ms=150)
    assert sel.pick.variant == "b2" and "b5" not in {c.variant for c in sel.candidates}


def test_latest_measurement_of_a_model_wins():
    records = pi4_records() + [bench_record("b3", 140.0, created="2025-02-01T00:00:00+00:00")]
    sel = select(records, budget_ms=150)
    assert sel.pick.variant == "b3" and sel.pick.latency_ms == 140.0
    assert "measured more than once, the latest result is used: b3" in sel.notes


def test_unknown_device_filter_and_bad_options():
    with pytest.raises(EdgenetError, match="device 'nope'.*found: pi4"):
        select(pi4_records(), budget_ms=100, device="nope")
    with pytest.raises(EdgenetError, match="budget"):
        select(pi4_records(), budget_ms=0)
    with pytest.raises(EdgenetError, match="statistic"):
        select(pi4_records(), budget_ms=10, stat="p42")


def test_selection_round_trips_through_json():
    sel = select(pi4_records() + [eval_record("b1", 78.0)], budget_ms=150, min_top1=70)
    again = Selection.from_dict(json.loads(json.dumps(sel.to_dict())))
    assert again == sel


def test_custom_spec_variants_are_ranked_by_analytic_macs():
    records = [bench_record("b2", 112.0), bench_record("phi=1.5", 140.0), bench_record("b3", 205.0)]
    sel = select(records, budget_ms=150)
    assert sel.pick.variant == "phi=1.5"
    assert analytic_counts("b2")["macs"] < sel.pick.macs < analytic_counts("b3")["macs"]


# --- CLI ---------------------------------------------------------------------------------------


def test_cli_prints_every_candidate_with_reasons(tmp_path):
    path = write(tmp_path, pi4_records())
    result = CliRunner().invoke(select_cmd, [str(path), "--budget-ms", "150"])
    assert result.exit_code == 0, result.output
    for variant in PI4_MS:
        assert f"| {variant} " in result.stdout
    assert "picked" in result.stdout and "over budget by 55.00 ms" in result.stdout
    assert "smaller than the pick" in result.stdout
    assert "pick: b2" in result.stderr
    # The published float top-1 beside the measured one (unknown here), each marked.
    header = [c.strip() for c in result.stdout.splitlines()[0].split("|")]
    (b2_line,) = [line for line in result.stdout.splitlines() if line.startswith("| b2 ")]
    b2 = dict(zip(header, (c.strip() for c in b2_line.split("|")), strict=True))
    assert (b2["measured top-1 %"], b2["published top-1 %"]) == ("–", "80.1")


def test_cli_json(tmp_path):
    path = write(tmp_path, pi4_records())
    result = CliRunner().invoke(select_cmd, [str(path), "--budget-ms", "150", "--stat", "p90", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["pick"]["variant"] == "b2" and payload["stat"] == "p90"
    assert len(payload["candidates"]) == 5 and payload["setting"]["device"] == "pi4"


def test_cli_exit_1_when_nothing_fits_naming_the_closest(tmp_path):
    path = write(tmp_path, pi4_records())
    result = CliRunner().invoke(select_cmd, [str(path), "--budget-ms", "10"])
    assert result.exit_code == 1
    assert "no variant fits 10 ms" in result.stderr and "closest: b0" in result.stderr
    result = CliRunner().invoke(select_cmd, [str(path), "--budget-ms", "10", "--json"])
    assert result.exit_code == 1 and json.loads(result.stdout)["closest"]["variant"] == "b0"


def test_cli_mixed_devices_one_line_error(tmp_path):
    path = write(tmp_path, pi4_records() + [bench_record("b0", 9.0, device="laptop")])
    result = CliRunner().invoke(select_cmd, [str(path), "--budget-ms", "100"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.stderr.count("\n") == 1 and "results mix 2 devices/settings" in result.stderr
    result = CliRunner().invoke(select_cmd, [str(path), "--budget-ms", "100", "--device", "laptop"])
    assert result.exit_code == 0 and "pick: b0" in result.stderr


def test_cli_missing_and_corrupt_files(tmp_path):
    result = CliRunner().invoke(select_cmd, [str(tmp_path / "nope.jsonl"), "--budget-ms", "100"])
    assert result.exit_code == 1 and "nope.jsonl: no such file" in result.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    result = CliRunner().invoke(select_cmd, [str(bad), "--budget-ms", "100"])
    assert result.exit_code == 1 and "bad.jsonl: line 1" in result.stderr


def test_cli_suggests_a_custom_phi_between_pick_and_next(tmp_path):
    path = write(tmp_path, pi4_records())
    result = CliRunner().invoke(select_cmd, [str(path), "--budget-ms", "150", "--suggest-phi", "--json"])
    assert result.exit_code == 0, result.output
    suggestion = json.loads(result.stdout)["suggested_phi"]
    assert suggestion["lo_variant"] == "b2" and suggestion["hi_variant"] == "b3"
    assert analytic_counts("b2")["macs"] < suggestion["macs"] < analytic_counts("b3")["macs"]
    assert suggestion["predicted_ms"] <= 150 and suggestion["spec"] == f"phi={suggestion['phi']:g}"


def test_reference_models_are_never_picked():
    records = pi4_records() + [bench_record("resnet50", 100.0)]
    sel = select(records, budget_ms=150)
    assert sel.pick.variant == "b2" and "resnet50" not in {c.variant for c in sel.candidates}
    assert any("resnet50 is a reference model" in n for n in sel.notes)
