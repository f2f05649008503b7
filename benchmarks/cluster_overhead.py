"""What the Ray path costs against the local path on the same work, and what a second node buys.

On this machine, in one run, interleaved (A, B, A, B, ...) so drifting load hits both sides:

1. **eval overhead**: ``edgenet eval`` of one .tflite model on N real images (scikit-learn's
   handwritten digits written as PNG files), local (in this process) vs the Ray executor on a
   one-node cluster with the same single CPU (sharding, object store, task start-up);
2. **eval throughput**: the same sharded eval on a one-node vs a two-node cluster (1 CPU per
   node; the second node is added and removed between runs, its start-up not timed);
3. **sweep overhead**: ``edgenet sweep --devices`` of two tiny variants on one local device,
   local executor vs Ray (one node), each run in a fresh run folder (conversions included).

Reported per comparison: every time, the per-pair ratios, their minimum and median. The Ray
cluster binds to 127.0.0.1 only (no dashboard, small object store).

    .venv/bin/python benchmarks/cluster_overhead.py [--images 600] [--variant b0] [--repeats 3]

Writes benchmarks/results/cluster_overhead.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "cluster_overhead.json"
MB = 1024 * 1024
TINY = ["phi=0,width=0.25,depth=0.25,resolution=48", "phi=0,width=0.25,depth=0.25,resolution=64"]


def _digits(root: Path, count: int) -> Path:
    """The first ``count`` scikit-learn digits as 64x64 PNG files in DIR/<digit>/ folders."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for index in range(min(count, len(digits.target))):
        grey = np.round(digits.images[index] * (255.0 / 16.0)).astype(np.uint8)
        image = Image.fromarray(grey, mode="L").resize((64, 64), Image.Resampling.BILINEAR).convert("RGB")
        folder = root / str(int(digits.target[index]))
        folder.mkdir(parents=True, exist_ok=True)
        image.save(folder / f"{index:04d}.png")
    return root


def _summary(a: list[float], b: list[float]) -> dict:
    ratios = [y / x for x, y in zip(a, b, strict=True)]
    return {"a_s": [round(v, 3) for v in a], "b_s": [round(v, 3) for v in b],
            "ratio_b_over_a": [round(r, 3) for r in ratios],
            "ratio_min": round(min(ratios), 3), "ratio_median": round(statistics.median(ratios), 3),
            "a_median_s": round(statistics.median(a), 3), "b_median_s": round(statistics.median(b), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--variant", default="b0", help="the .tflite model evaluated (fp32, random weights)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sweep-repeats", type=int, default=2)
    parser.add_argument("--shard-images", type=int, default=64)
    args = parser.parse_args()

    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # keep Ray on 127.0.0.1 (single machine)
    import ray
    from ray.cluster_utils import Cluster

    from edgenet.bench import BenchParams
    from edgenet.cluster.devices import resource_name
    from edgenet.cluster.executor import LocalExecutor, RayExecutor
    from edgenet.convert.api import ConvertRequest, convert_variants
    from edgenet.devices import Device
    from edgenet.evaluation.classifier import open_classifier
    from edgenet.evaluation.evaluate import evaluate, load_dataset
    from edgenet.family.variants import parse_variant
    from edgenet.sweep import SweepParams, run_sweep

    work = Path(tempfile.mkdtemp(prefix="edgenet-cluster-bench-"))
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    load_before = os.getloadavg()
    try:
        data = load_dataset(_digits(work / "digits", args.images))
        (converted,) = convert_variants([parse_variant(args.variant)],
                                        ConvertRequest(quant="fp32", out_dir=work / "models", progress=False))
        assert converted.ok, converted.error
        clf = open_classifier(converted.model_path)

        def node(**extra):
            return dict(num_cpus=1, node_ip_address="127.0.0.1", object_store_memory=100 * MB, memory=4000 * MB,
                        **extra)

        cluster = Cluster(initialize_head=True, head_node_args=node(include_dashboard=False,
                                                                    resources={resource_name("here"): 1}))
        ray.init(address=cluster.address, _node_ip_address="127.0.0.1", logging_level="ERROR", log_to_driver=False)
        executor = RayExecutor(cluster.address)
        executor.evaluate(clf, data, progress=False, shard_images=args.shard_images)  # warm the workers

        local_s, ray1_s, ray2_s = [], [], []
        reference = None
        for _ in range(args.repeats):
            t = time.perf_counter()
            reference = evaluate(clf, data, progress=False)
            local_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            one = executor.evaluate(clf, data, progress=False, shard_images=args.shard_images)
            ray1_s.append(time.perf_counter() - t)
            second = cluster.add_node(**node())
            executor.evaluate(clf, data, progress=False, shard_images=args.shard_images)  # warm its workers
            t = time.perf_counter()
            two = executor.evaluate(clf, data, progress=False, shard_images=args.shard_images)
            ray2_s.append(time.perf_counter() - t)
            cluster.remove_node(second)
            assert one.predictions == two.predictions == reference.predictions  # same work, same answers

        here = Device("here", threads=(1,))
        params = SweepParams(budget_ms=10_000.0, variants=tuple(parse_variant(s) for s in TINY), samples=4,
                             bench=BenchParams(warmup_s=0.1, min_runs=20, min_s=0.5, max_s=5.0))
        sweep_local, sweep_ray = [], []
        for i in range(args.sweep_repeats):
            t = time.perf_counter()
            with LocalExecutor() as local:
                run_sweep(params, work / f"sweep-local-{i}", [here], local, progress=False)
            sweep_local.append(time.perf_counter() - t)
            t = time.perf_counter()
            run_sweep(params, work / f"sweep-ray-{i}", [here], executor, progress=False)
            sweep_ray.append(time.perf_counter() - t)
        ray.shutdown()
        cluster.shutdown()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    out = {
        "benchmark": "cluster_overhead",
        "started_utc": started,
        "cores": os.cpu_count(),
        "load_avg_before": [round(v, 2) for v in load_before],
        "load_avg_after": [round(v, 2) for v in os.getloadavg()],
        "ray": ray.__version__,
        "eval": {"model": f"{args.variant} fp32 (random weights)", "images": len(data),
                 "shard_images": args.shard_images},
        "eval_overhead_ray1_vs_local": _summary(local_s, ray1_s),
        "eval_speedup_two_nodes_vs_one": _summary(ray2_s, ray1_s),
        "sweep": {"variants": TINY, "quant": "int8", "devices": 1},
        "sweep_overhead_ray1_vs_local": _summary(sweep_local, sweep_ray),
    }
    out["eval_images_per_s"] = {
        "local": round(len(data) / statistics.median(local_s), 1),
        "ray_one_node": round(len(data) / statistics.median(ray1_s), 1),
        "ray_two_nodes": round(len(data) / statistics.median(ray2_s), 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    e, s2, sw = (out["eval_overhead_ray1_vs_local"], out["eval_speedup_two_nodes_vs_one"],
                 out["sweep_overhead_ray1_vs_local"])
    print("| comparison | A median s | B median s | B/A min | B/A median |")
    print("|---|---:|---:|---:|---:|")
    print(f"| eval {len(data)} images: local (A) vs Ray 1 node (B) | {e['a_median_s']} | {e['b_median_s']} | "
          f"{e['ratio_min']} | {e['ratio_median']} |")
    print(f"| eval: Ray 2 nodes (A) vs Ray 1 node (B) = speed-up | {s2['a_median_s']} | {s2['b_median_s']} | "
          f"{s2['ratio_min']} | {s2['ratio_median']} |")
    print(f"| fleet sweep 2 tiny variants: local (A) vs Ray 1 node (B) | {sw['a_median_s']} | {sw['b_median_s']} | "
          f"{sw['ratio_min']} | {sw['ratio_median']} |")
    print(json.dumps(out["eval_images_per_s"]), file=sys.stderr)


if __name__ == "__main__":
    main()
