"""The benchmark harness with real interpreters, real tiny models and real child processes."""

from __future__ import annotations

import csv
import dataclasses
import io
import json

import numpy as np
import pytest
from click.testing import CliRunner
from fixtures_tflite import tiny_tflite_models, with_unused_edgetpu_op_code

from edgenet import results
from edgenet.bench import BenchParams, BenchParamsError, BenchResult, LatencyStats, measure, run_in_child, run_settings
from edgenet.bench.child import SLEEP_ENV
from edgenet.cli.bench import bench

# short but real: a fraction of a second per setting
FAST = {"warmup_s": 0.05, "min_runs": 20, "min_s": 0.05, "max_s": 0.3}
FAST_ARGS = ["--warmup-s", "0.05", "--min-runs", "20", "--min-s", "0.05", "--max-s", "0.3"]


@pytest.fixture(scope="session")
def tiny():
    return tiny_tflite_models()


@pytest.fixture()
def bad_models(tmp_path, tiny):
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(tiny.int8.read_bytes()[:1500])
    return garbage, truncated


def _check_ordering(result: BenchResult, params: BenchParams) -> None:
    lat = result.latency
    assert result.ok, result.error
    assert lat.min <= lat.p50 <= lat.p90 <= lat.p95 <= lat.p99 <= lat.max
    assert lat.min <= lat.mean <= lat.max and lat.std >= 0
    assert result.runs >= params.min_runs and result.failed_runs == 0
    assert result.init_ms > 0 and result.first_ms > 0
    assert result.peak_rss_mb > 1


def test_bench_in_child_gives_sane_statistics(tiny):
    params = BenchParams(threads=2, **FAST)
    result = run_in_child(tiny.int8, params)
    _check_ordering(result, params)
    assert result.params.threads == 2
    assert result.runtime["name"] == "ai_edge_litert" and result.delegate is None
    assert result.size_bytes == tiny.int8.stat().st_size
    record = result.to_record()
    assert record["settings"]["threads"] == 2 and record["runs"] == len(record["samples_ms"])
    assert record["latency_ms"]["p50"] == float(np.percentile(record["samples_ms"], 50, method="linear"))


def test_the_child_records_its_resident_memory_after_the_first_run(tiny):
    """What --max-memory-mb is held to: the child's private + file-backed resident memory once the model has run,
    which holds at least what init and the first run added, and never exceeds the child's peak."""
    result = run_in_child(tiny.int8, BenchParams(**FAST))
    assert result.ok, result.error
    rss = result.rss_after_first_run_mb
    added = result.init_memory_mb["anon"] + result.init_memory_mb["file"]
    assert 1 < rss <= result.peak_rss_mb + 0.01 and rss >= added
    view = results.as_record(result.to_record())
    assert view.rss_after_first_run_mb == rss


def test_latency_stats_match_numpy():
    samples = [5.0, 1.0, 3.0, 2.0, 4.0, 10.0]
    stats = LatencyStats.from_samples(samples)
    assert stats.p50 == 3.5 and stats.min == 1.0 and stats.max == 10.0
    assert stats.p90 == pytest.approx(float(np.percentile(samples, 90)))
    assert stats.std == pytest.approx(float(np.std(samples, ddof=1)))
    assert LatencyStats.from_samples([]) is None


class _FlakyBackend:
    """A backend (the runner's only interface) whose every third invocation fails."""

    def __init__(self):
        self.calls = 0

    def init(self):
        pass

    def run_once(self):
        self.calls += 1
        if self.calls % 3 == 0:
            raise RuntimeError("tensor data corrupted")


def test_failed_invocations_are_counted_and_invalidate():
    raw = measure(_FlakyBackend(), BenchParams(warmup_s=0.0, min_runs=9, min_s=0.0, max_s=5.0))
    assert raw["failed_runs"] >= 3
    assert "tensor data corrupted" in raw["error"]


def test_params_validation_is_one_line():
    with pytest.raises(BenchParamsError, match="threads"):
        BenchParams(threads=0)
    with pytest.raises(BenchParamsError, match="max_s"):
        BenchParams(min_s=5, max_s=1)
    with pytest.raises(BenchParamsError, match="delegate"):
        BenchParams(delegate="gpu")
    assert BenchParams(warmup_s=1, max_s=30).effective_timeout_s == 91


def test_corrupt_and_truncated_models_fail_in_one_line_and_sweep_continues(tiny, bad_models):
    garbage, truncated = bad_models
    out = run_settings([garbage, truncated, tiny.fp32], [BenchParams(**FAST)], label="test")
    assert [r.ok for r in out] == [False, False, True]
    for result, path in zip(out[:2], bad_models, strict=True):
        assert str(path) in result.error and "\n" not in result.error
        assert result.latency is None
    assert out[2].device["label"] == "test"


def test_hanging_child_is_killed(tiny, monkeypatch):
    monkeypatch.setenv(SLEEP_ENV, "120")
    params = BenchParams(timeout_s=2.0, **FAST)
    out = run_settings([tiny.int8, tiny.fp32], [params])
    assert all("timed out after 2 s" in r.error for r in out)
    monkeypatch.delenv(SLEEP_ENV)
    # The hook lives in the child only. A fresh child's start-up (imports) is not what this checks, and on a
    # busy machine it can take longer than the 2 s above.
    assert run_in_child(tiny.int8, dataclasses.replace(params, timeout_s=120.0)).ok


def _invoke(args):
    return CliRunner().invoke(bench, args, catch_exceptions=False)


def test_cli_json_and_csv_outputs_agree(tiny, tmp_path):
    jpath, cpath = tmp_path / "r.jsonl", tmp_path / "r.csv"
    jpath.write_text(json.dumps(results.make_record("eval")) + "\n")  # an earlier record must survive
    res = _invoke([str(tiny.int8), str(tiny.fp32), "--threads", "1,2", *FAST_ARGS, "--results", str(jpath),
                   "--csv", str(cpath), "--label", "ci"])
    assert res.exit_code == 0, res.output
    assert "tiny_int8.tflite" in res.stdout and "p50 ms" in res.stdout
    records = results.read_records(jpath)
    assert [r["kind"] for r in records] == ["eval"] + ["bench"] * 4
    bench_records = records[1:]
    assert [(r["model"]["name"], r["settings"]["threads"]) for r in bench_records] == [
        ("tiny_int8", 1), ("tiny_int8", 2), ("tiny_fp32", 1), ("tiny_fp32", 2)]
    rows = list(csv.DictReader(io.StringIO(cpath.read_text())))
    assert len(rows) == 4
    for row, record in zip(rows, bench_records, strict=True):
        assert record["device"]["label"] == "ci" and record["error"] is None
        assert row["model.sha256"] == record["model"]["sha256"]
        assert float(row["latency_ms.p50"]) == record["latency_ms"]["p50"]
        assert int(row["runs"]) == record["runs"] >= 20
        assert int(row["settings.threads"]) == record["settings"]["threads"]


def test_cli_json_to_stdout_is_pure_json_lines(tiny):
    res = _invoke([str(tiny.int8), *FAST_ARGS, "--json", "-"])
    assert res.exit_code == 0, res.output
    records = results.parse_records(res.stdout)
    assert len(records) == 1 and records[0]["latency_ms"]["p50"] > 0


def test_cli_failed_model_one_line_continue_nonzero_exit(tiny, bad_models, tmp_path):
    garbage, _ = bad_models
    jpath = tmp_path / "r.jsonl"
    res = _invoke([str(garbage), str(tiny.int8), *FAST_ARGS, "--results", str(jpath)])
    assert res.exit_code == 1
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "garbage.tflite" in errors[0]
    assert "Traceback" not in res.output
    assert "1 of 2 setting(s) failed" in res.stderr
    records = results.read_records(jpath)
    assert [r["error"] is None for r in records] == [False, True]


def test_cli_edgetpu_with_missing_library_never_labels_edgetpu(tiny, tmp_path):
    marked = tmp_path / "marked_edgetpu.tflite"
    marked.write_bytes(with_unused_edgetpu_op_code(tiny.int8.read_bytes()))
    jpath = tmp_path / "r.jsonl"
    res = _invoke([str(marked), "--delegate", "edgetpu", "--edgetpu-lib", "/nonexistent/libedgetpu.so.1",
                   *FAST_ARGS, "--results", str(jpath)])
    assert res.exit_code == 1
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "/nonexistent/libedgetpu.so.1" in errors[0]
    (record,) = results.read_records(jpath)
    assert record["error"] and record["device"]["delegate"] is None
    assert record["latency_ms"]["p50"] is None and record["runs"] == 0
    # an uncompiled model is refused before any delegate is loaded
    res = _invoke([str(tiny.int8), "--delegate", "edgetpu", *FAST_ARGS])
    assert res.exit_code == 1 and "not compiled for the Edge TPU" in res.stderr


def test_cli_rejects_bad_thread_list(tiny):
    res = CliRunner().invoke(bench, [str(tiny.int8), "--threads", "1,x"])
    assert res.exit_code == 2 and "'--threads'" in res.output and "'x' is not a whole number" in res.output


# --- --remote against a real sshd on localhost (Debian openssh-server: /usr/sbin/sshd) -------------


import sshd  # noqa: E402

_free_port = sshd.free_port
local_sshd = sshd.local_sshd  # the fixture


def test_cli_remote_over_ssh_merges_records(tiny, local_sshd, tmp_path):
    import sys

    host, options = local_sshd
    jpath = tmp_path / "remote.jsonl"
    ssh_args = [arg for option in options for arg in ("--ssh-option", option)]
    res = _invoke([str(tiny.int8), str(tiny.fp32), "--threads", "1,2", *FAST_ARGS, "--remote", host, *ssh_args,
                   "--remote-command", f"{sys.executable} -m edgenet.cli.bench", "--results", str(jpath),
                   "--label", "loopback"])
    assert res.exit_code == 0, res.output
    records = results.read_records(jpath)
    assert [(r["model"]["path"], r["settings"]["threads"]) for r in records] == [
        (str(tiny.int8), 1), (str(tiny.int8), 2), (str(tiny.fp32), 1), (str(tiny.fp32), 2)]
    assert all(r["error"] is None and r["device"]["label"] == "loopback" for r in records)
    assert records[0]["model"]["size_bytes"] == tiny.int8.stat().st_size
    assert "tiny_int8" in res.stdout


def test_cli_remote_unreachable_is_one_line(tiny):
    res = CliRunner().invoke(bench, [str(tiny.int8), "--remote", "nobody@127.0.0.1", "--ssh-option",
                                     f"Port={_free_port()}", "--ssh-option", "ConnectTimeout=3"])
    assert res.exit_code == 1
    assert "127.0.0.1: unreachable" in res.output and "Traceback" not in res.output


def test_records_from_elsewhere_go_through_the_same_listeners(tiny, tmp_path):
    """``bench --remote`` replays the records that came back through the listeners of a local run."""
    from edgenet.bench import ConsoleTableListener, CsvListener, JsonLinesListener, ProgressListener
    from edgenet.bench.listeners import replay

    live_table, again_table, live_progress, again_progress = (io.StringIO() for _ in range(4))
    out = run_settings([tiny.int8], [BenchParams(**FAST)], [ProgressListener(live_progress),
                       CsvListener(tmp_path / "live.csv"), ConsoleTableListener(live_table)])
    records = [r.to_record() for r in out]
    replay(records, [ProgressListener(again_progress), CsvListener(tmp_path / "again.csv"),
                     ConsoleTableListener(again_table), JsonLinesListener(tmp_path / "again.jsonl")])
    assert (tmp_path / "again.csv").read_text() == (tmp_path / "live.csv").read_text()
    assert again_table.getvalue() == live_table.getvalue() and "tiny_int8.tflite" in again_table.getvalue()
    assert again_progress.getvalue() and again_progress.getvalue() in live_progress.getvalue()
    assert results.read_records(tmp_path / "again.jsonl") == records


def test_a_percentile_raises_the_runs_and_the_time_cap_together(tiny):
    """One rule (BenchParams.for_stat): p99 needs 368 runs for both ends of its interval, and the cap grows with
    them, so the cap can no longer stop the runs before the statistic can be judged."""
    from edgenet.decide.confidence import interval_for

    base = BenchParams(min_runs=30, min_s=1.5, max_s=20.0)
    p99 = base.for_stat("p99")
    assert p99.min_runs == 368 and p99.max_s == pytest.approx(20.0 * 368 / 30)
    assert p99.max_s / p99.min_runs == pytest.approx(base.max_s / base.min_runs)  # the same time per run allowed
    assert p99.effective_timeout_s > p99.max_s and p99.min_s == base.min_s
    assert base.for_stat("p50") is base and base.for_stat("mean") is base  # 30 runs bound a median already
    assert p99.for_stat("p99") is p99
    result = run_in_child(tiny.int8, BenchParams(**FAST).for_stat("p99"))
    assert result.ok and result.runs >= 368
    assert interval_for(result.samples_ms, "p99").bounded
