"""A real Ray cluster on this machine: a head and a worker node, every address on 127.0.0.1.

One cluster per module (starting one costs ~15 s on 2 cores). The worker node holds the fake
devices ``beta`` (its CPU) and ``pi`` (a board behind the localhost sshd the suite starts).
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from fixtures_tflite import tiny_tflite_models
from test_bench import local_sshd  # noqa: F401 - the real sshd fixture on 127.0.0.1

from edgenet import results
from edgenet.bench import BenchParams
from edgenet.cli import main
from edgenet.cluster.devices import resource_name
from edgenet.cluster.executor import RayExecutor
from edgenet.devices import Device

REPO = Path(__file__).resolve().parents[1]
FAST = BenchParams(warmup_s=0.05, min_runs=10, min_s=0.3, max_s=1.0)
MB = 1024 * 1024


def _node_args(**extra) -> dict:
    return dict(num_cpus=1, node_ip_address="127.0.0.1", object_store_memory=80 * MB, memory=3000 * MB, **extra)


@pytest.fixture(scope="module")
def ray_cluster():
    # Ray rewrites 127.0.0.1 into the machine's routable address unless told this is a
    # single-machine setup; this keeps every socket of the test cluster on loopback.
    old = os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args=_node_args(
        include_dashboard=False, resources={resource_name("alpha"): 1}))
    worker = cluster.add_node(**_node_args(resources={resource_name("beta"): 1, resource_name("pi"): 1}))
    ray.init(address=cluster.address, _node_ip_address="127.0.0.1", logging_level="ERROR", log_to_driver=False)
    try:
        yield cluster, worker
    finally:
        ray.shutdown()
        cluster.shutdown()
        if old is None:
            os.environ.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)
        else:
            os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = old


@pytest.fixture(scope="module")
def tiny():
    return tiny_tflite_models()


def _node_id(node) -> str:
    return node.node_id[:8]


def test_latency_jobs_on_one_device_never_overlap(ray_cluster, tiny):
    _, worker = ray_cluster
    executor = RayExecutor(ray_cluster[0].address)
    beta, alpha = Device("beta"), Device("alpha")
    futures = [executor.submit_latency(beta, [tiny.int8], [1], FAST),
               executor.submit_latency(beta, [tiny.fp32], [1], FAST),
               executor.submit_latency(alpha, [tiny.int8], [1], FAST)]
    records = [r for f in futures for r in f.result(timeout=300)]
    assert [r["error"] for r in records] == [None, None, None]
    assert [r["device"]["label"] for r in records] == ["beta", "beta", "alpha"]
    assert [r["model"]["path"] for r in records] == [str(tiny.int8), str(tiny.fp32), str(tiny.int8)]
    assert records[0]["model"]["sha256"] == records[2]["model"]["sha256"]
    spans = sorted((s for s in executor.timeline if s.device == "beta"), key=lambda s: s.started)
    assert len(spans) == 2 and spans[0].ended <= spans[1].started, spans
    # Each device's jobs ran on the node that holds it.
    assert all(s.node.endswith(_node_id(worker)) for s in spans)
    (alpha_span,) = [s for s in executor.timeline if s.device == "alpha"]
    assert not alpha_span.node.endswith(_node_id(worker))


def test_device_no_node_holds_is_failed_with_the_reason(ray_cluster, tiny):
    executor = RayExecutor(ray_cluster[0].address)
    (record,) = executor.latency(Device("gamma"), [tiny.int8], [1], FAST)
    assert "gamma: no node of the cluster holds it" in record["error"] and record["device"]["label"] == "gamma"


def test_ssh_device_from_a_cluster_task(ray_cluster, tiny, local_sshd):  # noqa: F811
    host, options = local_sshd
    edgenet = f"env PYTHONPATH={REPO} {sys.executable} -m edgenet"
    pi = Device("pi", host=host, ssh_options=tuple(options), command=edgenet, threads=(1, 2))
    executor = RayExecutor(ray_cluster[0].address)
    (check,) = executor.check_devices([pi])
    assert check.ok and check.reachable and check.runtime, check
    records = executor.latency(pi, [tiny.int8], pi.threads, FAST)
    assert [(r["error"], r["settings"]["threads"], r["device"]["label"]) for r in records] == [
        (None, 1, "pi"), (None, 2, "pi")]
    assert records[0]["model"]["path"] == str(tiny.int8)
    assert records[0]["model"]["sha256"] == __import__("hashlib").sha256(tiny.int8.read_bytes()).hexdigest()
    (span,) = [s for s in executor.timeline if s.device == "pi"]
    assert span.node.endswith(_node_id(ray_cluster[1]))


def _eval(args):
    res = CliRunner().invoke(main, ["eval", *args, "--quiet"])
    assert res.exit_code == 0, res.output
    return res


def test_sharded_eval_gives_the_local_counts(ray_cluster, digits_model, tmp_path):
    cluster, _ = ray_cluster
    models = [str(digits_model.fp32), str(digits_model.int8)]
    data = str(digits_model.data.test_dir)
    _eval([*models, "--data", data, "--results", str(tmp_path / "local.jsonl")])
    _eval([*models, "--data", data, "--results", str(tmp_path / "ray.jsonl"), "--cluster", cluster.address,
           "--shard-images", "64"])
    local, ray_ = results.read_records(tmp_path / "local.jsonl"), results.read_records(tmp_path / "ray.jsonl")
    assert len(local) == len(ray_) == 2
    for a, b in zip(local, ray_, strict=True):
        assert a["accuracy"] == b["accuracy"]
        assert a["model"]["sha256"] == b["model"]["sha256"]
    assert local[0]["accuracy"]["count"] == digits_model.data.test_count
    assert local[1]["accuracy"]["agreement_top1"] is not None


def test_node_removed_mid_eval_still_yields_complete_records(ray_cluster, digits_model):
    from edgenet.evaluation.classifier import open_classifier
    from edgenet.evaluation.evaluate import evaluate, load_dataset

    cluster, _ = ray_cluster
    extra = cluster.add_node(**_node_args())
    executor = RayExecutor(cluster.address)
    dataset = load_dataset(digits_model.data.test_dir)
    clf = open_classifier(str(digits_model.int8))
    removed = threading.Event()
    ran_on: list[str] = []
    done_at_removal: list[int] = []

    def on_shard(index, total, payload):
        ran_on.append(payload["node"])
        # After the first finished shard: the rest are queued or running on every node, the extra one included.
        if not removed.is_set():
            removed.set()
            done_at_removal.append(len(ran_on))
            cluster.remove_node(extra, allow_graceful=False)

    sharded = executor.evaluate(clf, dataset, progress=False, shard_images=16, on_shard=on_shard)
    assert removed.is_set() and done_at_removal[0] < len(ran_on)  # removed mid-eval, with shards to go
    local = evaluate(clf, dataset, progress=False)
    assert sharded.count == local.count == digits_model.data.test_count
    assert (sharded.paths, sharded.labels, sharded.predictions) == (local.paths, local.labels, local.predictions)
    assert (sharded.top1, sharded.top5) == (local.top1, local.top5)
    assert len(ran_on) == -(-local.count // 16)


TINY = ["phi=0,width=0.25,depth=0.25,resolution=48", "phi=0,width=0.25,depth=0.25,resolution=64"]


def test_fleet_sweep_on_the_cluster_picks_per_device_and_resumes(ray_cluster, local_sshd, tmp_path):  # noqa: F811
    cluster, worker = ray_cluster
    host, options = local_sshd
    inventory = tmp_path / "devices.toml"
    inventory.write_text(
        '[[device]]\nname = "alpha"\nthreads = [1]\n\n'
        '[[device]]\nname = "pi"\n'
        f'host = "{host}"\nssh_options = {list(options)!r}\n'.replace("'", '"')
        + f'command = "env PYTHONPATH={REPO} {sys.executable} -m edgenet"\nthreads = [1]\n')
    args = ["sweep", "--budget-ms", "10000", "--quant", "fp32", "--min-runs", "5", "--min-s", "0.05",
            "--devices", str(inventory), "--cluster", cluster.address, "-o", str(tmp_path / "run")]
    for spec in TINY:
        args += ["--variants", spec]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    # Read the run folder, not stdout: Ray's own threads may print into the captured stream.
    outcome = __import__("json").loads((tmp_path / "run" / "sweep.json").read_text())
    picks = {d["device"]: d["decision"]["pick"]["variant"] for d in outcome["devices"]}
    assert picks == {"alpha": TINY[1], "pi": TINY[1]}
    records = results.read_records(tmp_path / "run" / "results.jsonl")
    assert sorted((r["device"]["label"], r["model"]["name"]) for r in records) == sorted(
        (d, f"{v}-fp32") for d in ("alpha", "pi") for v in ("phi0-w0.25-d0.25-r48", "phi0-w0.25-d0.25-r64"))
    # Each variant was converted once, on the cluster, and each device ran one job at a time.
    converts = [s for s in outcome["timeline"] if s["kind"] == "convert"]
    assert sorted(s["what"] for s in converts) == sorted(TINY)
    for name in ("alpha", "pi"):
        spans = sorted((s for s in outcome["timeline"] if s["device"] == name), key=lambda s: s["started"])
        assert len(spans) == 2 and spans[0]["ended"] <= spans[1]["started"]
    report = (tmp_path / "run" / "REPORT.md").read_text()
    assert "## Picks" in report and "## alpha" in report and "## pi" in report
    assert (tmp_path / "run" / "devices" / "pi" / "latency_vs_macs.png").is_file()

    again = CliRunner().invoke(main, args)  # a rerun resumes: nothing converted or measured again
    assert again.exit_code == 0, again.output
    again_outcome = __import__("json").loads((tmp_path / "run" / "sweep.json").read_text())
    steps = [s for d in again_outcome["devices"] for s in d["steps"]]
    assert {s["action"] for s in steps} == {"reused"}
    assert len(results.read_records(tmp_path / "run" / "results.jsonl")) == 4


def test_conversion_as_a_cluster_task_writes_here_and_is_resumable(ray_cluster, tmp_path):
    cluster, _ = ray_cluster
    args = ["convert", TINY[0], "--quant", "fp32", "-o", str(tmp_path), "--cluster", cluster.address, "--quiet"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    model = tmp_path / "phi0-w0.25-d0.25-r48-fp32.tflite"
    assert f"wrote {model}" in first.stderr
    manifest = __import__("json").loads(model.with_suffix(".json").read_text())
    assert manifest["sha256"] == __import__("hashlib").sha256(model.read_bytes()).hexdigest()
    assert sorted(p.name for p in tmp_path.iterdir()) == [model.with_suffix(".json").name, model.name]
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0 and f"up to date ({model})" in again.stderr
    # One up-to-date check for both paths (Converter.up_to_date): the local run agrees, nothing rebuilt.
    local = CliRunner().invoke(main, args[:-3] + ["--quiet"])
    assert local.exit_code == 0 and f"up to date ({model})" in local.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [model.with_suffix(".json").name, model.name]
    # ... and a changed field of the request is not up to date in it.
    from dataclasses import replace

    from edgenet.convert.api import Converter, ConvertRequest
    from edgenet.family.variants import parse_variant

    request = ConvertRequest(quant="fp32", out_dir=tmp_path, progress=False)
    variant = parse_variant(TINY[0])
    assert Converter(request).up_to_date(Converter(request).plan(variant)) is not None
    changed = replace(request, seed=1)
    assert Converter(changed).up_to_date(Converter(changed).plan(variant)) is None


def test_ctrl_c_cancels_the_cluster_work_and_writes_nothing(ray_cluster, digits_model, tmp_path):
    import signal
    import subprocess
    import time

    import ray

    cluster, _ = ray_cluster
    out = tmp_path / "eval.jsonl"
    args = [sys.executable, "-m", "edgenet", "eval", str(digits_model.int8), "--data", str(digits_model.data.test_dir),
            "--cluster", cluster.address, "--shard-images", "4", "--quiet", "--results", str(out)]
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    for line in proc.stderr:  # connected to the cluster: the shards are being submitted
        if line.startswith("cluster:"):
            break
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert stderr.startswith("interrupted") and "nothing partial written" in stderr and "Traceback" not in stderr
    assert not out.exists() and not list(tmp_path.glob("*.tmp*"))
    deadline = time.monotonic() + 60  # the driver's tasks are cancelled: the CPUs come back
    while ray.available_resources().get("CPU", 0) < ray.cluster_resources().get("CPU", 0):
        assert time.monotonic() < deadline, ray.available_resources()
        time.sleep(0.5)


def test_latency_job_whose_node_dies_is_failed_not_moved(ray_cluster, tiny):
    import time

    import ray

    cluster, _ = ray_cluster
    extra = cluster.add_node(**_node_args(resources={resource_name("delta"): 1}))
    executor = RayExecutor(cluster.address)
    deadline = time.monotonic() + 120
    while ray.cluster_resources().get(resource_name("delta"), 0) < 1:  # the new node's resources propagate
        assert time.monotonic() < deadline
        time.sleep(0.2)
    slow = BenchParams(warmup_s=0.1, min_runs=10, min_s=60.0, max_s=60.0)
    future = executor.submit_latency(Device("delta"), [tiny.int8], [1], slow)
    started = time.monotonic()
    # Until the job holds the board (the resource's key leaves the available view), at most 20 s.
    while ray.available_resources().get(resource_name("delta"), 0) >= 1 and time.monotonic() < started + 20:
        assert not future.done(), future.result()
        time.sleep(0.2)
    time.sleep(1.0)
    cluster.remove_node(extra, allow_graceful=False)
    (record,) = future.result(timeout=240)  # failed, running or still pending: never moved, never waiting forever
    assert record["error"].startswith("delta: latency job lost, not moved to another device"), record["error"]
    assert record["device"]["label"] == "delta" and record["latency_ms"]["p50"] is None
    assert record["model"]["sha256"] == __import__("hashlib").sha256(tiny.int8.read_bytes()).hexdigest()
    assert not [s for s in executor.timeline if s.device == "delta"]
