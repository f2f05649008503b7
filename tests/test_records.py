"""Typed record views and the shared queries (edgenet/results/records.py) and the bench table
(edgenet/results/table.py): records written by make_record and by a real benchmark, read back."""

from __future__ import annotations

import dataclasses

import pytest
from fixtures_tflite import tiny_tflite_models

from edgenet import results
from edgenet.bench import BenchParams, run_in_process
from edgenet.bench.listeners import result_row
from edgenet.errors import EdgenetError
from edgenet.results import (
    AccuracyIndex,
    BenchRecord,
    ConvertRecord,
    EvalRecord,
    SettingKey,
    accuracy_index,
    as_record,
    bench_group,
    fraction_from_stored,
    latest,
    usable_bench,
    variant_of,
)
from edgenet.results.table import BENCH_COLUMNS, bench_row, table


def bench(variant="b0", p50=10.0, *, label="pi4", threads=1, created="2025-01-01T00:00:00+00:00", error=None,
          sha=None, name=None, xnnpack=True, delegate="cpu", ran=None):
    return results.make_record(
        "bench",
        created_utc=created,
        model={"path": f"/m/{name or variant}.tflite", "name": name or variant, "sha256": sha or f"sha-{variant}",
               "size_bytes": 1234, "variant": variant, "quant": "int8"},
        device={"label": label, "hostname": "host-" + label, "delegate": ran},
        settings={"threads": threads, "xnnpack": xnnpack, "delegate": delegate},
        latency_ms=None if error else {"init": 5.0, "first": 2 * p50, "mean": p50, "p50": p50, "p90": 1.1 * p50},
        runs=None if error else 3,
        samples_ms=None if error else [p50] * 3,
        error=error,
    )


def evaluation(variant, top1, *, created="2025-01-01T00:00:00+00:00", sha=None):
    return results.make_record(
        "eval", created_utc=created,
        model={"name": f"{variant}_int8", "sha256": sha or f"sha-{variant}", "variant": variant, "quant": "int8"},
        accuracy={"top1": top1, "top5": None, "count": 100, "dataset": "val"},
    )


def test_views_carry_units_in_field_names_and_are_frozen():
    view = as_record(bench("b1", 12.5, threads=2))
    assert isinstance(view, BenchRecord) and view.usable and view.ok
    assert view.latency.p50_ms == 12.5 and view.latency.p90_ms == pytest.approx(13.75)
    assert view.stat_ms("p50") == 12.5 and view.stat_ms("p99") is None and view.stat_ms("init") == 5.0
    assert view.model.size_bytes == 1234 and view.samples_ms == (12.5, 12.5, 12.5)
    assert view.setting == SettingKey("pi4", 2, "cpu", True) and view.variant == "b1"
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.error = "x"
    with pytest.raises(ValueError, match="unknown latency statistic"):
        view.stat_ms("p42")
    assert as_record(view) is view  # views pass through


def test_every_kind_has_its_view_and_an_unknown_kind_is_one_line():
    assert isinstance(as_record(evaluation("b0", 0.7)), EvalRecord)
    assert isinstance(as_record(results.make_record("convert", model={"name": "b0_int8"})), ConvertRecord)
    with pytest.raises(EdgenetError, match="unknown result kind 'weird'"):
        as_record({"kind": "weird"})


def test_top1_is_a_fraction_whatever_the_file_stored():
    """eval writes fractions; older records held percent. The view reads both as a fraction, once."""
    assert fraction_from_stored(0.771) == 0.771
    assert fraction_from_stored(77.1) == pytest.approx(0.771)
    assert fraction_from_stored(None) is None
    old, new = as_record(evaluation("b0", 77.1)), as_record(evaluation("b1", 0.791))
    assert old.top1_fraction == pytest.approx(0.771) and new.top1_fraction == pytest.approx(0.791)


def test_a_failed_or_latency_less_record_is_not_usable():
    failed = as_record(bench("b2", error="b2.tflite: boom"))
    assert not failed.ok and not failed.usable and failed.latency is None
    assert usable_bench([bench("b0"), failed, evaluation("b0", 0.7)]) == [as_record(bench("b0"))]


def test_variant_of_reads_the_manifest_name_else_a_model_name_that_parses():
    assert variant_of(bench("b3")) == "b3"
    custom = bench(None, name="phi=1.5")
    assert variant_of(custom) == as_record(custom).variant and variant_of(custom).startswith("phi=1.5")
    stranger = as_record(bench(None, name="mobilenet_v3_int8"))
    assert stranger.variant is None and stranger.model_label == "mobilenet_v3_int8"


def test_bench_group_refuses_mixed_settings_and_narrows_on_request():
    records = [bench("b0", label="pi4"), bench("b1", label="pi4"), bench("b0", label="laptop", threads=4)]
    with pytest.raises(EdgenetError, match="results mix 2 devices/settings"):
        bench_group(records)
    key, group = bench_group(records, device="pi4")
    assert key.describe() == "pi4 threads=1 delegate=cpu xnnpack on" and [r.variant for r in group] == ["b0", "b1"]
    key, group = bench_group(records, device="host-laptop")  # the hostname matches too
    assert key.threads == 4 and len(group) == 1
    with pytest.raises(EdgenetError, match=r"no successful bench results for threads=8; found: "):
        bench_group(records, threads=8)


def test_latest_wins_and_on_a_tie_the_later_line():
    a, b, c = (as_record(bench("b0", ms, created=t)) for ms, t in
               ((1.0, "2025-01-02T00:00:00+00:00"), (2.0, "2025-01-01T00:00:00+00:00"), (3.0, "2025-01-02T00:00:00+00:00")))
    assert latest([a, b, c]).latency.p50_ms == 3.0
    assert latest([b, a]).latency.p50_ms == 1.0


def test_accuracy_index_prefers_the_same_file_then_the_variant_and_the_latest_eval():
    records = [
        evaluation("b0", 70.0, created="2025-01-01T00:00:00+00:00"),  # percent, old
        evaluation("b0", 0.72, created="2025-01-03T00:00:00+00:00"),  # fraction, newer: wins
        evaluation("b1", 0.75, sha="sha-other-b1-file"),
        results.make_record("eval", model={"name": "b2_int8", "variant": "b2", "quant": "int8"}, error="broken"),
    ]
    index = accuracy_index(records)
    assert isinstance(index, AccuracyIndex)
    assert index.top1_fraction(as_record(bench("b0"))) == pytest.approx(0.72)
    assert index.top1_fraction(as_record(bench("b1", sha="sha-other-b1-file"))) == pytest.approx(0.75)
    assert index.top1_fraction(as_record(bench("b1", sha="unseen"))) == pytest.approx(0.75)  # by variant
    assert index.top1_fraction(as_record(bench("b2"))) is None  # the failed eval is not used


def test_with_model_path_copies_and_keeps_the_original():
    record = bench("b0")
    moved = results.with_model_path(record, "/local/b0.tflite")
    assert as_record(moved).model.path == "/local/b0.tflite" and record["model"]["path"] == "/m/b0.tflite"


def test_bench_row_names_the_delegate_that_ran_never_a_cpu_figure_as_edgetpu():
    cpu = bench_row(bench("b0", 1.23456))
    assert cpu["delegate"] == "cpu" and cpu["p50_ms"] == 1.235 and cpu["status"] == "ok"
    assert bench_row(bench("b0", xnnpack=False))["delegate"] == "cpu (no xnnpack)"
    asked = bench_row(bench("b0", delegate="edgetpu", error="libedgetpu.so.1: not found"))
    assert asked["delegate"] == "-" and asked["status"] == "FAILED" and asked["p50_ms"] is None
    ran = bench_row(bench("b0", delegate="edgetpu", ran={"name": "edgetpu", "version": "16.0"}))
    assert ran["delegate"] == "edgetpu"
    text = table([cpu, asked], BENCH_COLUMNS)
    assert text.splitlines()[0].startswith("| model ") and "FAILED" in text and "RSS MB" in text


@pytest.fixture(scope="module")
def measured():
    params = BenchParams(threads=1, warmup_s=0.02, min_runs=5, min_s=0.02, max_s=0.2)
    return run_in_process(tiny_tflite_models().int8, params)


def test_a_real_measurement_reads_back_through_the_view_and_one_table_row(measured):
    """The listener's row (a live result) and the row of its stored record (--remote) are one row."""
    assert measured.ok, measured.error
    record = measured.to_record()
    view = as_record(results.parse_records(_line(record))[0])
    assert view.usable and view.runs == measured.runs and view.latency.p50_ms == measured.latency.p50
    assert view.latency.init_ms == measured.init_ms and view.model.size_bytes == measured.size_bytes
    assert result_row(measured) == bench_row(record) == bench_row(view)
    assert result_row(measured)["model"] == tiny_tflite_models().int8.name  # the file name, as on the command line


def _line(record: dict) -> str:
    import io

    buffer = io.StringIO()
    results.write_records(buffer, [record])
    return buffer.getvalue()
