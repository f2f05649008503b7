"""The edgenet.result/1 schema (edgenet/results/schema.py): records, atomic append, reading and CSV export."""

from __future__ import annotations

import csv
import io
import json

import pytest

from edgenet import results
from edgenet.errors import InputFileError


def _record(p50: float = 1.25, **kw) -> dict:
    return results.make_record(
        "bench",
        model={"path": "m.tflite", "name": "m", "size_bytes": 123},
        device={"label": "pi4", "runtime": {"name": "ai_edge_litert", "version": "2.3.0"}},
        settings={"threads": 2, "xnnpack": True, "delegate": "cpu"},
        latency_ms={"init": 3.0, "first": 2.0, "mean": p50, "p50": p50},
        runs=3,
        failed_runs=0,
        samples_ms=[p50, p50, p50],
        **kw,
    )


def test_make_record_fills_every_field():
    record = _record()
    assert list(record) == list(results.FIELDS)
    assert record["schema"] == results.SCHEMA and record["kind"] == "bench"
    assert list(record["latency_ms"]) == list(results.NESTED_FIELDS["latency_ms"])
    assert record["latency_ms"]["p99"] is None and record["accuracy"] is None
    assert record["device"]["delegate"] is None
    assert record["created_utc"].endswith("+00:00")


def test_make_record_rejects_unknown_kind_and_field_and_flattens_errors():
    with pytest.raises(ValueError, match="kind"):
        results.make_record("speed")
    with pytest.raises(ValueError, match="latency_ms field"):
        results.make_record("bench", latency_ms={"median": 1.0})
    assert results.make_record("bench", error="a\nb  c")["error"] == "a b c"
    assert results.make_record("bench", peak_rss_mb=float("nan"))["peak_rss_mb"] is None


def test_append_and_read_round_trip(tmp_path):
    path = tmp_path / "out" / "r.jsonl"
    results.append_records(path, [_record(1.0)])
    results.append_records(path, [_record(2.0), _record(3.0)])
    got = results.read_records(path)
    assert [r["latency_ms"]["p50"] for r in got] == [1.0, 2.0, 3.0]
    assert results.read_records(path, kind="eval") == []
    assert not list(tmp_path.glob("out/.*tmp*"))


def test_failed_append_keeps_earlier_records(tmp_path):
    path = tmp_path / "r.jsonl"
    results.append_records(path, [_record(1.0)])
    before = path.read_bytes()
    bad = _record(2.0)
    bad["model"]["manifest"] = {"unserialisable": object()}
    with pytest.raises(TypeError):
        results.append_records(path, [_record(5.0), bad])
    nan = _record(2.0)
    nan["latency_ms"]["p50"] = float("nan")  # bypassing make_record: strict JSON refuses it
    with pytest.raises(ValueError):
        results.append_records(path, [nan])
    assert path.read_bytes() == before
    assert len(results.read_records(path)) == 1


def test_read_records_names_file_and_line(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(_record()) + "\n\n{not json\n")
    with pytest.raises(InputFileError, match=r"r\.jsonl: line 3: not valid JSON"):
        results.read_records(path)
    path.write_text(json.dumps({"schema": "other/9"}) + "\n")
    with pytest.raises(InputFileError, match="line 1: not an edgenet.result/1 record"):
        results.read_records(path)
    with pytest.raises(InputFileError, match="no such file"):
        results.read_records(tmp_path / "absent.jsonl")


def test_csv_flattens_with_dotted_names_and_matches_json(tmp_path):
    records = [_record(1.0 / 3.0), _record(2.5, error="boom")]
    path = results.write_csv(tmp_path / "r.csv", records)
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert len(rows) == 2
    assert "latency_ms.p50" in rows[0] and "device.runtime.version" in rows[0] and "samples_ms" not in rows[0]
    assert float(rows[0]["latency_ms.p50"]) == records[0]["latency_ms"]["p50"]  # exact round trip
    assert rows[0]["device.runtime.name"] == "ai_edge_litert"
    assert rows[0]["latency_ms.p99"] == "" and rows[1]["error"] == "boom"
    with_samples = list(csv.DictReader(io.StringIO(results.records_to_csv(records, include_samples=True))))
    assert json.loads(with_samples[0]["samples_ms"]) == records[0]["samples_ms"]
    flat = results.flatten_record(records[0])
    assert flat["settings.threads"] == 2 and flat["model.size_bytes"] == 123
