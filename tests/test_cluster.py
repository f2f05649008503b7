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
from edgenet.cluster.devices import Device, resource_name
from edgenet.cluster.executor import RayExecutor

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
    pi = Device("pi", link="ssh", host=host, ssh_options=tuple(options), edgenet=edgenet, threads=(1, 2))
    executor = RayExecutor(ray_cluster[0].address)
    (check,) = executor.check_devices([pi])
    assert check.ok and check.reachable and check.runtime, check
    records = executor.latency(pi, [tiny.int8], pi.threads, FAST)
    assert [(r["error"], r["settings"]["threads"], r["device"]["label"]) for r in records] == [
        (None, 1, "pi"), (None, 2, "pi")]
    assert records[0]["model"]["path"] == str(tiny.int8)
    (span,) = [s for s in executor.timeline if s.device == "pi"]
    assert span.node.endswith(_node_id(ray_cluster[1]))


def _eval(args):
    res = CliRunner().invoke(main, ["eval", *args, "--no-progress"])
    assert res.exit_code == 0, res.output
    return res


def test_sharded_eval_gives_the_local_counts(ray_cluster, digits_model, tmp_path):
    cluster, _ = ray_cluster
    models = [str(digits_model.fp32), str(digits_model.int8)]
    data = str(digits_model.data.test_dir)
    _eval([*models, "--data", data, "--json", str(tmp_path / "local.jsonl")])
    _eval([*models, "--data", data, "--json", str(tmp_path / "ray.jsonl"), "--cluster", cluster.address,
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

    def on_shard(index, total, payload):
        ran_on.append(payload["node"])
        if not removed.is_set():  # after the first shard: the others are queued or running everywhere
            removed.set()
            cluster.remove_node(extra, allow_graceful=False)

    sharded = executor.evaluate(clf, dataset, progress=False, shard_images=16, on_shard=on_shard)
    assert removed.is_set()
    local = evaluate(clf, dataset, progress=False)
    assert sharded.count == local.count == digits_model.data.test_count
    assert (sharded.paths, sharded.labels, sharded.predictions) == (local.paths, local.labels, local.predictions)
    assert (sharded.top1, sharded.top5) == (local.top1, local.top5)
    assert len(ran_on) == -(-local.count // 16)
