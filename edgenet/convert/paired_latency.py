"""The latency of one model against another, measured side by side (the budget's latency cost).

A precision rung of the accuracy budget (:mod:`edgenet.convert.quality`) changes the graph (float
ops inside an int8 model), so its cost is measured, not asserted: both models are loaded with the
runtime the model will meet on a CPU (LiteRT with its default XNNPACK delegate), warmed up, and
invoked in interleaved pairs, the order alternating within each pair so neither model always runs
second. What is reported:

* ``ratio_of_minima``: fastest invoke of the candidate / fastest invoke of the baseline, the
  figure least inflated by a shared, noisy machine; it is what ``--max-latency-cost`` judges;
* ``median_pair_ratio``: the median over pairs of (candidate time / baseline time);
* both minima in ms, the number of pairs and threads.

Kept short (a few dozen pairs, single thread by default) so that the budget does not make a
conversion slow; ``benchmarks/quant_quality.py`` measures the same ratio with longer runs.
"""

from __future__ import annotations

import time

import numpy as np

#: Interleaved pairs measured per candidate, after ``WARMUP`` invokes of each model.
DEFAULT_PAIRS = 30
WARMUP = 3


def paired_latency(baseline: bytes, candidate: bytes, *, pairs: int = DEFAULT_PAIRS, threads: int = 1) -> dict:
    """Latency of ``candidate`` relative to ``baseline`` (both .tflite bytes with the same input)."""
    from ..runtime.interpreter import TFLiteModel

    models = (TFLiteModel(baseline, threads=threads, source="baseline"),
              TFLiteModel(candidate, threads=threads, source="candidate"))
    for m in models:
        x = np.zeros(m.input_shape, dtype=np.float32)
        m.interpreter.set_tensor(m.input_details[0]["index"], m.quantize_input(x))
        for _ in range(WARMUP):
            m.interpreter.invoke()
    times = ([], [])
    for k in range(pairs):
        order = (0, 1) if k % 2 == 0 else (1, 0)
        for i in order:
            t0 = time.perf_counter()
            models[i].interpreter.invoke()
            times[i].append(time.perf_counter() - t0)
    base, cand = np.asarray(times[0]), np.asarray(times[1])
    return {
        "ratio_of_minima": round(float(cand.min() / base.min()), 3),
        "median_pair_ratio": round(float(np.median(cand / base)), 3),
        "baseline_min_ms": round(1e3 * float(base.min()), 3),
        "candidate_min_ms": round(1e3 * float(cand.min()), 3),
        "pairs": int(pairs),
        "threads": int(threads),
        "runtime": f"{models[0].runtime.info.name} {models[0].runtime.info.version} (XNNPACK)",
    }
