"""Report files: valid PNGs, and Markdown tables that say what results.json says."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from PIL import Image
from test_select import bench_record, eval_record, pi4_records, write

from edgenet.cli.select import report as report_cmd
from edgenet.decide.report import TABLE_COLUMNS, write_report
from edgenet.decide.select import select


def parse_markdown_tables(text: str) -> dict[str, list[dict]]:
    """``## heading`` -> rows of the first pipe table under it, as {column title: cell text}."""
    tables: dict[str, list[dict]] = {}
    heading, header = None, None
    for line in text.splitlines():
        if line.startswith("## "):
            heading, header = line[3:].strip(), None
        elif line.startswith("|") and heading:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if header is None:
                header = cells
                tables[heading] = []
            elif not all(set(c) <= {"-"} for c in cells):
                tables[heading].append(dict(zip(header, cells, strict=True)))
    return tables


def assert_row_matches(md_row: dict, js_row: dict):
    for key, (title, fmt) in TABLE_COLUMNS.items():
        cell, value = md_row[title], js_row.get(key)
        if value is None or value == "":
            assert cell in ("–", "not measured", ""), (key, cell)
        elif fmt in ("s", "d"):
            assert cell == str(value), (key, cell, value)
        else:
            decimals = int(fmt[1])
            assert float(cell) == pytest.approx(value, abs=0.5 * 10**-decimals + 1e-12), (key, cell, value)


def assert_png(path):
    assert path.exists() and path.stat().st_size > 0
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size[0] > 100 and img.size[1] > 100


def test_report_files_and_tables_match_json(tmp_path):
    records = pi4_records() + [eval_record("b1", 78.9), eval_record("b2", 0.801)]
    sel = select(records, budget_ms=150, min_top1=70)
    path = write_report(tmp_path, records, sel, 150)
    assert path == tmp_path / "REPORT.md"
    for name in ("latency_vs_macs.png", "accuracy_vs_latency.png", "latency_distribution.png"):
        assert_png(tmp_path / name)
    text = path.read_text()
    payload = json.loads((tmp_path / "results.json").read_text())
    assert payload["selection"]["pick"]["variant"] == "b2"
    assert payload["records"] == records
    assert sorted(payload["images"]) == sorted(
        ["latency_vs_macs.png", "accuracy_vs_latency.png", "latency_distribution.png"]
    )
    md = parse_markdown_tables(text)
    (json_table,) = payload["tables"]
    md_rows = md[json_table["setting"]]
    assert (
        [r["variant"] for r in md_rows] == [r["variant"] for r in json_table["rows"]] == ["b4", "b3", "b2", "b1", "b0"]
    )
    for md_row, js_row in zip(md_rows, json_table["rows"], strict=True):
        assert_row_matches(md_row, js_row)
    assert [r["pick"] for r in md_rows] == ["", "", "yes", "", ""]
    assert {r["variant"]: r["top-1 %"] for r in md_rows}["b2"] == "80.1"
    assert "pick: b2" in text and "![latency_vs_macs.png](latency_vs_macs.png)" in text


def test_no_accuracy_no_pareto_picture_and_no_pick(tmp_path):
    records = pi4_records()
    sel = select(records, budget_ms=10)
    write_report(tmp_path, records, sel, 10)
    assert not (tmp_path / "accuracy_vs_latency.png").exists()
    assert_png(tmp_path / "latency_vs_macs.png")
    text = (tmp_path / "REPORT.md").read_text()
    assert "no variant fits 10 ms" in text and "closest: b0" in text
    md = parse_markdown_tables(text)
    assert all(r["pick"] == "" for rows in md.values() for r in rows)


def test_baselines_published_when_not_measured_and_measured_when_present(tmp_path):
    records = pi4_records() + [bench_record("mobilenetv2", 40.0)]
    write_report(tmp_path, records, select(records, budget_ms=150), 150, baselines=True)
    payload = json.loads((tmp_path / "results.json").read_text())
    base = {r["variant"]: r for r in payload["baselines"]}
    assert base["mobilenetv2"]["source"] == "measured" and base["mobilenetv2"]["p50_ms"] == 40.0
    assert base["resnet50"]["p50_ms"] is None and base["resnet50"]["macs"] == 4_100_000_000
    assert "not measured" in base["resnet50"]["source"]
    md = parse_markdown_tables((tmp_path / "REPORT.md").read_text())
    ref = md["Reference models (MobileNetV2, ResNet-50)"]
    assert [r["variant"] for r in ref] == ["mobilenetv2", "resnet50"]
    assert {r["variant"]: r["p50 ms"] for r in ref} == {"mobilenetv2": "40.00", "resnet50": "not measured"}
    for md_row, js_row in zip(ref, payload["baselines"], strict=True):
        assert_row_matches(md_row, js_row)
    # the measured baseline is in the reference table, not among the EfficientNet rows
    assert "mobilenetv2" not in [r["variant"] for r in payload["tables"][0]["rows"]]


def test_several_devices_get_one_table_each(tmp_path):
    records = pi4_records() + [bench_record("b0", 9.0, device="laptop")]
    write_report(tmp_path, records, select(records, budget_ms=150, device="pi4"), 150)
    payload = json.loads((tmp_path / "results.json").read_text())
    assert [t["setting_key"]["device"] for t in payload["tables"]] == ["pi4", "laptop"]
    md = parse_markdown_tables((tmp_path / "REPORT.md").read_text())
    for table in payload["tables"]:
        for md_row, js_row in zip(md[table["setting"]], table["rows"], strict=True):
            assert_row_matches(md_row, js_row)


def test_cli_report_reads_rundir_and_selection(tmp_path):
    records = pi4_records()
    write(tmp_path, records)
    sel = select(records, budget_ms=90)
    (tmp_path / "selection.json").write_text(json.dumps(sel.to_dict()))
    result = CliRunner().invoke(report_cmd, [str(tmp_path), "--baselines"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(tmp_path / "REPORT.md")
    payload = json.loads((tmp_path / "results.json").read_text())
    assert payload["budget_ms"] == 90 and payload["selection"]["pick"]["variant"] == "b1"
    # --budget-ms reselects
    result = CliRunner().invoke(report_cmd, [str(tmp_path), "--budget-ms", "250"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "results.json").read_text())["selection"]["pick"]["variant"] == "b3"
    assert "pick: b3" in result.stderr


def test_cli_report_missing_results(tmp_path):
    result = CliRunner().invoke(report_cmd, [str(tmp_path)])
    assert result.exit_code == 1 and "results.jsonl: no such file" in result.stderr
    assert not list(tmp_path.iterdir())
