"""Where the time goes: latency attributed to the stem, each MBConv block, its squeeze-excitation, the head.

The Python runtime has no per-operator profiler, so the graph is cut at block boundaries into
sub-models (:mod:`edgenet.runtime.subgraphs`, the machinery the streamed calibrator uses), each part
runs in an interpreter of its own with the same settings as the whole model, and the parts are timed
interleaved with the whole model, round after round, in one child process
(``python -m edgenet.bench.child`` with ``task: profile``).

Parts come from the operators' tensor names (Keras layer names survive conversion: ``block2a_...``,
``block2a_se_...``), so edgenet's models, Keras applications' and Lite models are all cut where
their blocks are. A squeeze-excitation is its own part when its operators are contiguous in
execution order (they are in every converted EfficientNet): it reads the block's activation and
writes the excited activation, so it is a sub-model with one input and one output. A graph
without block names is cut where a single activation tensor crosses (a network's narrow points).

The attribution is checked, not assumed: every round times the whole model and every part
(median of ``runs`` invocations each, the whole first in even rounds and last in odd ones); the
result says how far the sum of the parts is from the whole, raw and after subtracting the fixed
cost of one ``invoke()`` call (measured on an empty sub-model), and keeps every round.
"""

from __future__ import annotations

import os
import re
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import EdgenetError
from ..results.records import STATS as RECORD_STATS
from .params import BenchParams
from .result import LatencyStats

__all__ = ["PROFILE_BENCH", "Part", "plan_parts", "profile_in_process", "profile_in_child", "profile_rows", "render_png",
           "PROFILE_SCHEMA"]

PROFILE_SCHEMA = "edgenet.profile/1"
_BLOCK = re.compile(r"(?<![A-Za-z0-9])(block\d+[a-z]+)_(se_)?")
MAX_FALLBACK_PARTS = 40
#: Per-round statistic of the ``runs`` invocations of the whole model and of each part: any latency
#: statistic of the results schema (``edgenet.results.records.STATS``). The minimum is the default: on
#: a shared CPU a 10 ms invocation is almost always interrupted and a 0.1 ms one almost never, so
#: medians would charge the whole model for time it spent waiting and the parts not.
STATS = RECORD_STATS
#: Profile's measurement preset: rounds run until ``max_s`` (at least 3); no minimum measured time.
PROFILE_BENCH = BenchParams(min_s=0.0, max_s=60.0)


@dataclass(frozen=True)
class Part:
    """Operators ``[start, stop)`` of the graph, timed as one sub-model."""

    name: str  # "stem", "block2a", "block2a se", "head", or "ops 10-24" without block names
    kind: str  # "stem" | "block" | "se" | "head" | "segment"
    block: str  # the row it adds to: "stem", "block2a", "head", or the part's own name
    start: int
    stop: int
    op_types: dict = field(default_factory=dict)
    macs: int = 0


def _label(name: str) -> tuple[str, bool] | None:
    found = _BLOCK.search(name or "")
    return (found.group(1), bool(found.group(2))) if found else None


def plan_parts(graph) -> list[Part]:
    """Cut a :class:`edgenet.runtime.tflite_graph.Graph` into parts (see the module docstring)."""
    ops = graph.operators
    n = len(ops)
    labels = []
    for op in ops:
        found = None
        for tensor in graph.op_outputs(op):
            for piece in tensor.name.split(";"):
                found = found or _label(piece)
        labels.append(found)
    labelled = [k for k, lab in enumerate(labels) if lab is not None]
    if not labelled:
        return _fallback_parts(graph)
    first, last = labelled[0], labelled[-1]
    keys: list[tuple[str, str, str]] = []  # (name, kind, block) per operator
    current = None
    for k in range(n):
        if k < first:
            key = ("stem", "stem", "stem")
        elif k > last:
            key = ("head", "head", "head")
        elif labels[k] is None:
            key = current  # an unnamed operator inside a block belongs to it
        else:
            block, is_se = labels[k]
            key = (f"{block} se", "se", block) if is_se else (block, "block", block)
        keys.append(key)
        current = key
    parts: list[Part] = []
    start = 0
    for k in range(1, n + 1):
        if k == n or keys[k] != keys[start]:
            name, kind, block = keys[start]
            parts.append(_part(graph, name, kind, block, start, k))
            start = k
    return parts


def _part(graph, name, kind, block, start, stop) -> Part:
    counts: dict[str, int] = {}
    macs = 0
    for op in graph.operators[start:stop]:
        counts[op.opcode] = counts.get(op.opcode, 0) + 1
        macs += graph.macs_of(op)
    return Part(name, kind, block, start, stop, counts, int(macs))


def _fallback_parts(graph) -> list[Part]:
    """No block names: cut where exactly one activation tensor crosses, at most 40 parts."""
    n = len(graph.operators)
    producer = {t: -1 for t in graph.inputs}
    last_use: dict[int, int] = {t: n for t in graph.outputs}
    for k, op in enumerate(graph.operators):
        for t in op.outputs:
            producer[t] = k
    for k, op in enumerate(graph.operators):
        for t in op.inputs:
            if t >= 0 and t in producer:
                last_use[t] = max(last_use.get(t, -1), k)
    crossing = [0] * (n + 1)
    for t, k in producer.items():
        for p in range(k + 1, min(last_use.get(t, k), n) + 1):
            crossing[p] += 1
    cuts = [0] + [p for p in range(1, n) if crossing[p] == 1] + [n]
    bounds = list(zip(cuts[:-1], cuts[1:], strict=True))
    while len(bounds) > MAX_FALLBACK_PARTS:  # merge the pair with the fewest operators
        i = min(range(len(bounds) - 1), key=lambda j: bounds[j + 1][1] - bounds[j][0])
        bounds[i : i + 2] = [(bounds[i][0], bounds[i + 1][1])]
    return [_part(graph, f"ops {a}-{b - 1}", "segment", f"ops {a}-{b - 1}", a, b) for a, b in bounds]


def _median(values) -> float:
    return float(statistics.median(values))


def profile_in_process(model_path, params: BenchParams, rounds: int = 10, runs: int = 20, stat: str = "min") -> dict:
    """Profile one model in this process (the child calls this); returns the profile document."""
    from ..fsutil import read_input_bytes
    from ..runtime import envinfo
    from ..runtime.interpreter import load_runtime, make_interpreter
    from ..runtime.subgraphs import Chunk, chunk_model_bytes, chunks_at, model_object
    from ..runtime.tflite_graph import read_graph
    from .runner import peak_rss_mb

    if params.delegate != "cpu":
        raise EdgenetError("profile runs on the CPU: a delegate's compiled graph cannot be cut into blocks")
    if params.api != "interpreter":
        raise EdgenetError("profile times sub-graphs with the Interpreter api (CompiledModel is not supported)")
    if stat not in STATS:
        raise EdgenetError(f"unknown statistic {stat!r}; choose from {', '.join(STATS)}")
    if rounds < 2 or runs < 1:
        raise EdgenetError(f"profile needs at least 2 rounds and 1 run per round, got {rounds} and {runs}")
    path = Path(model_path)
    data = read_input_bytes(path, "a .tflite model")
    graph = read_graph(path)  # a file that is not a model: one line naming it
    if graph.subgraph_count != 1:
        raise EdgenetError(f"{path}: profile cuts single-graph models; this one has {graph.subgraph_count} subgraphs")
    parts = plan_parts(graph)
    model = model_object(data)
    chunks = chunks_at(model, [(p.start, p.stop) for p in parts])
    runtime = load_runtime()

    def interpreter(content: bytes, source: str):
        return make_interpreter(content, params.threads, params.xnnpack, "cpu", source=source, runtime=runtime,
                                **params.interpreter_options())

    load_before = _load_average()
    t0 = time.perf_counter()
    whole = interpreter(data, str(path))
    init_whole_ms = (time.perf_counter() - t0) * 1e3
    t0 = time.perf_counter()
    part_interpreters = [interpreter(chunk_model_bytes(model, c, keep_all=False), f"{path} [{p.name}]")
                         for p, c in zip(parts, chunks, strict=True)]
    init_parts_ms = (time.perf_counter() - t0) * 1e3
    # The fixed cost of one invoke() (Python call, interpreter bookkeeping): an empty sub-model.
    first_input = int(graph.inputs[0])
    empty = interpreter(chunk_model_bytes(model, Chunk(0, 0, (first_input,), (), (first_input,), 0, 0),
                                          keep_all=False), f"{path} [empty]")

    # Seeded input as `edgenet bench` feeds; the parts get the real tensors the previous parts produce.
    rng = np.random.default_rng(params.seed)
    store: dict[int, np.ndarray] = {}
    for detail in whole.get_input_details():
        dtype, shape = np.dtype(detail["dtype"]), tuple(int(d) for d in detail["shape"])
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            value = rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
        else:
            value = rng.uniform(0.0, 255.0, size=shape).astype(dtype)
        whole.set_tensor(detail["index"], value)
        store[int(detail["index"])] = value
    empty.set_tensor(first_input, store[first_input])
    for chunk, part_interpreter in zip(chunks, part_interpreters, strict=True):
        for t in chunk.inputs:
            part_interpreter.set_tensor(t, store[t])
        part_interpreter.invoke()
        for t in chunk.outputs:
            store[t] = part_interpreter.get_tensor(t)

    # The parts must compute what the whole model computes: compare the outputs of one pass.
    whole.invoke()
    output_diff = 0.0
    for t in (int(t) for t in graph.outputs):
        expected = whole.get_tensor(t).astype(np.float64)
        output_diff = max(output_diff, float(np.max(np.abs(store[t].astype(np.float64) - expected))))

    clock = time.perf_counter_ns

    def reduce(samples) -> float:  # the one summary of timed runs (LatencyStats), as bench records hold
        return getattr(LatencyStats.from_samples(samples), stat)

    def timed(interp) -> float:
        interp.invoke()  # untimed: wakes this interpreter's thread pool, refills caches
        samples = []
        for _ in range(runs):
            start = clock()
            interp.invoke()
            samples.append((clock() - start) / 1e6)
        return reduce(samples)

    warm_end = time.perf_counter() + params.warmup_s
    while time.perf_counter() < warm_end:
        whole.invoke()
        for part_interpreter in part_interpreters:
            part_interpreter.invoke()

    def timed_chain() -> list[float]:
        """One pass through the parts in order, ``runs`` times: each part's inputs are written just
        before it runs (as the previous operator would have written them: warm in the cache) and
        its outputs read back, both outside the timed ``invoke()``."""
        samples: list[list[float]] = [[] for _ in parts]
        for _ in range(runs + 1):
            for i, (chunk, interp) in enumerate(zip(chunks, part_interpreters, strict=True)):
                for t in chunk.inputs:
                    interp.set_tensor(t, store[t])
                start = clock()
                interp.invoke()
                samples[i].append((clock() - start) / 1e6)
                for t in chunk.outputs:
                    store[t] = interp.get_tensor(t)
        return [reduce(values[1:]) for values in samples]  # the first pass is untimed warm-up

    whole_rounds: list[float] = []
    part_rounds: list[list[float]] = [[] for _ in parts]
    empty_rounds: list[float] = []
    started = time.perf_counter()
    for r in range(rounds):
        if r % 2 == 0:
            whole_rounds.append(timed(whole))
        for i, value in enumerate(timed_chain()):
            part_rounds[i].append(value)
        empty_rounds.append(timed(empty))
        if r % 2 == 1:
            whole_rounds.append(timed(whole))
        if r >= 2 and time.perf_counter() - started > params.max_s:
            break
    done = len(whole_rounds)

    sums = [sum(part_rounds[i][r] for i in range(len(parts))) for r in range(done)]
    ratios = [s / w for s, w in zip(sums, whole_rounds, strict=True)]
    call_ms = _median(empty_rounds)
    whole_ms = _median(whole_rounds)
    part_ms = [_median(values) for values in part_rounds]
    corrected = [max(ms - call_ms, 0.0) for ms in part_ms]
    sum_ms, corrected_sum_ms = sum(part_ms), sum(corrected)
    part_rows = []
    for part, chunk, ms, net, values in zip(parts, chunks, part_ms, corrected, part_rounds, strict=True):
        row = asdict(part)
        row.update(ops=[part.start, part.stop], ms=ms, min_ms=min(values), net_ms=net,
                   share=net / corrected_sum_ms if corrected_sum_ms else None,
                   inputs=len(chunk.inputs), outputs=len(chunk.outputs), rounds_ms=values)
        for key in ("start", "stop"):
            row.pop(key)
        part_rows.append(row)
    return {
        "schema": PROFILE_SCHEMA,
        "model": envinfo.model_info(path, data),
        "runtime": runtime.info.to_dict(),
        "settings": params.settings(),
        "rounds": done,
        "runs_per_round": runs,
        "stat": stat,
        "ops": len(graph.operators),
        "init_ms": {"whole": init_whole_ms, "parts": init_parts_ms},
        "whole_ms": {"median": whole_ms, "min": min(whole_rounds), "rounds": whole_rounds},
        "call_overhead_ms": call_ms,
        "sum_ms": sum_ms,
        "net_sum_ms": corrected_sum_ms,
        # How far the attribution is from the whole model's measured latency, per round (parts and
        # whole of one round share the machine's state) and for the medians.
        "sum_over_whole": {"median": _median(ratios), "min": min(ratios), "max": max(ratios), "rounds": ratios},
        "net_sum_over_whole": corrected_sum_ms / whole_ms,
        # Largest difference between the chained parts' outputs and the whole model's (0 = identical).
        "parts_output_max_abs_diff": output_diff,
        "parts": part_rows,
        "blocks": _blocks(part_rows, corrected_sum_ms),
        "peak_rss_mb": peak_rss_mb(),
        # The conditions: runnable processes per core before and after (1-minute load average).
        "load_average": {"before": load_before, "after": _load_average()},
    }


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _blocks(part_rows: list[dict], total_ms: float) -> list[dict]:
    """One row per stem/block/head: its parts added up, the squeeze-excitation shown apart."""
    rows: dict[str, dict] = {}
    for part in part_rows:
        row = rows.setdefault(part["block"], {"name": part["block"], "ms": 0.0, "se_ms": None, "macs": 0, "op_count": 0})
        row["ms"] += part["net_ms"]
        row["macs"] += part["macs"]
        row["op_count"] += sum(part["op_types"].values())
        if part["kind"] == "se":
            row["se_ms"] = (row["se_ms"] or 0.0) + part["net_ms"]
    for row in rows.values():
        row["share"] = row["ms"] / total_ms if total_ms else None
    return list(rows.values())


def profile_in_child(model_path, params: BenchParams, rounds: int = 10, runs: int = 20, stat: str = "min") -> dict:
    """:func:`profile_in_process` in a fresh ``python -m edgenet.bench.child``; one-line errors raise."""
    from .runner import call_child

    # Rounds stop after max_s, but at least 3 run: a large model on a Pi takes minutes per round.
    timeout_s = params.timeout_s or (params.warmup_s + 4 * params.max_s + 600)
    request = {"task": "profile", "model_path": str(model_path), "params": params.to_dict(),
               "rounds": rounds, "runs": runs, "stat": stat}
    payload = call_child(request, timeout_s, str(model_path))
    if payload.get("error"):
        raise EdgenetError(payload["error"])
    return payload["profile"]


def profile_rows(profile: dict) -> list[dict]:
    """Table rows: one per stem/block/head (rounded for people; the JSON keeps everything)."""
    rows = []
    for block in profile["blocks"]:
        rows.append({
            "part": block["name"],
            "ops": block["op_count"],
            "MMACs": round(block["macs"] / 1e6, 1),
            "ms": round(block["ms"], 3),
            "share": f"{100 * block['share']:.1f}%" if block["share"] is not None else "",
            "se ms": "" if block["se_ms"] is None else round(block["se_ms"], 3),
            "ms/GMAC": round(block["ms"] / (block["macs"] / 1e9), 1) if block["macs"] else "",
        })
    return rows


def summary_lines(profile: dict) -> list[str]:
    """What the table adds up to, and how far that is from the whole model."""
    whole = profile["whole_ms"]
    ratio = profile["sum_over_whole"]
    parts = len(profile["parts"])
    net = profile["net_sum_over_whole"]
    return [
        f"whole model: {whole['median']:.3f} ms (median over {profile['rounds']} rounds of each round's "
        f"{profile['stat']} of {profile['runs_per_round']} runs; lowest round {whole['min']:.3f}), "
        f"{profile['settings']['threads']} thread(s)",
        f"parts: {profile['net_sum_ms']:.3f} ms = {net:.3f}x the whole ({100 * (net - 1):+.1f}%) after "
        f"{parts} x {1000 * profile['call_overhead_ms']:.1f} us call overhead ({profile['sum_ms']:.3f} ms before); "
        f"per-round ratio median {ratio['median']:.3f}, range {ratio['min']:.3f}-{ratio['max']:.3f}",
    ]


def render_png(profiles: list[dict], path, titles: list[str] | None = None) -> Path:
    """Horizontal bars per block (squeeze-excitation darker), one panel per profile, side by side."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        from ..errors import MissingDependencyError

        raise MissingDependencyError("matplotlib", "plot", "drawing the profile") from None
    import io

    from ..fsutil import atomic_write_bytes

    height = max(len(p["blocks"]) for p in profiles) * 0.28 + 1.6
    fig = Figure(figsize=(5.2 * len(profiles), height))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(profiles), squeeze=False, sharex=True)[0]  # one scale: comparable side by side
    for k, (ax, profile) in enumerate(zip(axes, profiles, strict=True)):
        blocks = profile["blocks"]
        names = [b["name"] for b in blocks]
        se = [b["se_ms"] or 0.0 for b in blocks]
        rest = [b["ms"] - s for b, s in zip(blocks, se, strict=True)]
        y = np.arange(len(blocks))[::-1]
        ax.barh(y, rest, color="#4c72b0", label="block")
        ax.barh(y, se, left=rest, color="#dd8452", label="squeeze-excitation")
        ax.set_yticks(y, names, fontsize=7)
        ax.set_xlabel("ms (net of call overhead)")
        title = titles[k] if titles else profile["model"]["name"]
        ax.set_title(f"{title}: whole {profile['whole_ms']['median']:.2f} ms, parts "
                     f"{profile['net_sum_over_whole']:.3f}x", fontsize=8)
        if any(se):
            ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    return atomic_write_bytes(path, buffer.getvalue())
