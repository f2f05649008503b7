"""The measurement loop and the per-model child processes.

Split as the TFLite benchmark tool: a backend only knows ``init`` and ``run_once``; the runner owns
the protocol (time-based warm-up, then at least ``min_runs`` AND ``min_s``, capped by ``max_s``);
listeners present results. Each setting is measured in a fresh child process
(``python -m edgenet.bench.child``) so that a malformed model that crashes the interpreter, or one
that hangs, costs one line of output and not the whole sweep, and so that peak RSS and the
thread pool belong to that model alone.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from .. import process
from ..errors import EdgenetError, one_line, signal_name
from ..fsutil import read_input_bytes
from ..runtime import envinfo
from .listeners import BenchListener
from .params import BenchParams
from .result import BenchResult

__all__ = ["TFLiteBackend", "call_child", "measure", "run_in_process", "run_in_child", "run_settings", "peak_rss_mb"]


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux ru_maxrss is KiB) in MB (KiB / 1024)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def resident_mb() -> dict[str, float] | None:
    """This process's resident memory now, ``{"anon", "file"}`` in MB (``/proc/self/status``), or None.

    Anonymous pages are private (heap, XNNPACK's packed weights); file-backed ones are shareable and
    reclaimable (libraries, a mapped model or weight cache file). Peak RSS cannot tell them apart.
    """
    found = {}
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in ("RssAnon", "RssFile"):
                    found[key] = int(value.split()[0]) / 1024.0  # kB
    except (OSError, ValueError):
        return None
    if len(found) != 2:
        return None
    return {"anon": found["RssAnon"], "file": found["RssFile"]}


class TFLiteBackend:
    """Creates the interpreter and invokes it; nothing else."""

    def __init__(self, model_bytes: bytes, params: BenchParams, source: str):
        self.model_bytes, self.params, self.source = model_bytes, params, source
        self.interpreter = None
        self.runtime = None

    def init(self) -> None:
        """Interpreter creation + allocate_tensors, and a fixed seeded input of the model's dtype."""
        from ..runtime.interpreter import load_runtime, make_interpreter

        self.runtime = load_runtime()
        p = self.params
        rng = np.random.default_rng(p.seed)
        if p.api == "compiled":
            from ..fsutil import sha256_bytes
            from ..runtime.compiled import CompiledRunner, weight_cache_file

            cache = weight_cache_file(sha256_bytes(self.model_bytes), p.threads) if p.xnnpack_weight_cache else None
            self.interpreter = CompiledRunner(self.model_bytes, p.threads, weight_cache=cache, source=self.source,
                                              ynnpack=p.ynnpack)
            self.interpreter.fill_inputs(rng)
            return
        self.interpreter = make_interpreter(
            self.model_bytes, p.threads, p.xnnpack, p.delegate, p.edgetpu_lib, source=self.source, runtime=self.runtime,
            **p.interpreter_options(),
        )
        for detail in self.interpreter.get_input_details():
            dtype = np.dtype(detail["dtype"])
            shape = tuple(int(d) for d in detail["shape"])
            if np.issubdtype(dtype, np.integer):
                info = np.iinfo(dtype)
                data = rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
            else:
                # Pixel-like values: edgenet models take RGB floats in [0, 255].
                data = rng.uniform(0.0, 255.0, size=shape).astype(dtype)
            self.interpreter.set_tensor(detail["index"], data)

    def run_once(self) -> None:
        self.interpreter.invoke()


def measure(backend, params: BenchParams) -> dict:
    """Run the protocol on an initialised-on-demand backend; returns raw timings.

    Only ``run_once`` sits between the two ``perf_counter_ns`` reads. A failed invocation is
    counted and the loop goes on to the normal stopping rule; any failure sets ``error``.
    """
    clock = time.perf_counter_ns
    before = resident_mb()
    t0 = clock()
    backend.init()
    init_ms = (clock() - t0) / 1e6

    failed = 0
    first_error: str | None = None

    def invoke() -> float | None:
        nonlocal failed, first_error
        start = clock()
        try:
            backend.run_once()
        except Exception as exc:  # noqa: BLE001 - any interpreter failure invalidates the result
            failed += 1
            if first_error is None:
                first_error = one_line(exc, None, empty=type(exc).__name__)
            return None
        return (clock() - start) / 1e6

    first_ms = invoke()
    after = resident_mb()
    init_memory_mb = None
    if before is not None and after is not None:  # what the model, its runtime and first run added
        init_memory_mb = {k: round(after[k] - before[k], 2) for k in ("anon", "file")}
    # What the inference process holds once it can answer: the figure --max-memory-mb is held to.
    rss_after_first_run_mb = round(after["anon"] + after["file"], 2) if after is not None else None
    warmup_end = clock() + int(params.warmup_s * 1e9)
    while clock() < warmup_end:
        invoke()

    samples: list[float] = []
    start = clock()
    min_ns, max_ns = int(params.min_s * 1e9), int(params.max_s * 1e9)
    attempts = 0
    while True:
        elapsed_ms = invoke()
        attempts += 1
        if elapsed_ms is not None:
            samples.append(elapsed_ms)
        spent = clock() - start
        if (attempts >= params.min_runs and spent >= min_ns) or spent >= max_ns:
            break
    error = None
    if failed:
        error = f"{failed} invocation(s) failed: {first_error}"
    return {"init_ms": init_ms, "first_ms": first_ms, "samples_ms": samples, "failed_runs": failed, "error": error,
            "init_memory_mb": init_memory_mb, "rss_after_first_run_mb": rss_after_first_run_mb}


def _read_model(path: Path) -> bytes:
    return read_input_bytes(path, "a .tflite model")


def run_in_process(model_path: str | os.PathLike, params: BenchParams) -> BenchResult:
    """Measure one setting in this process (the child calls this). User errors become ``error``."""
    path = Path(model_path)
    model = None
    runtime = None
    try:
        data = _read_model(path)
        model = envinfo.model_info(path, data)
        backend = TFLiteBackend(data, params, str(path))
        try:
            raw = measure(backend, params)
        finally:
            runtime = backend.runtime.info.to_dict() if backend.runtime else None
    except EdgenetError as exc:
        return BenchResult(str(path), params, model=model, runtime=runtime, error=str(exc), peak_rss_mb=peak_rss_mb())
    delegate = None
    if params.delegate == "edgetpu" and raw["error"] is None:
        delegate = {"name": "edgetpu", "version": _edgetpu_version(params.edgetpu_lib)}
    return BenchResult(
        str(path), params, model=model, runtime=runtime, delegate=delegate, peak_rss_mb=peak_rss_mb(), **raw
    )


def _edgetpu_version(library: str) -> str | None:
    """The Edge TPU runtime names itself in the library file name (libedgetpu.so.1.0); best effort."""
    try:
        return os.path.basename(os.path.realpath(library)) if os.path.exists(library) else library
    except OSError:
        return None


def run_in_child(
    model_path: str | os.PathLike, params: BenchParams, python: str = sys.executable, env: dict | None = None
) -> BenchResult:
    """Measure one setting in a fresh ``python -m edgenet.bench.child``; never raises for model faults.

    The request goes as JSON on stdin and the result comes back as one JSON line on stdout. A
    child that outlives ``params.effective_timeout_s`` is killed; a crash (e.g. SIGSEGV inside the
    interpreter) or garbage output becomes ``error`` with one line.
    """
    path = str(model_path)
    request = {"model_path": path, "params": params.to_dict()}
    payload = call_child(request, params.effective_timeout_s, path, python=python, env=env)
    if "error" in payload and "result" not in payload:
        return BenchResult(path, params, error=payload["error"])
    try:
        return BenchResult.from_dict(payload["result"])
    except (KeyError, TypeError, ValueError):
        return BenchResult(path, params, error=f"{path}: benchmark child failed: unreadable result")


def call_child(request: dict, timeout_s: float, path: str, python: str = sys.executable,
               env: dict | None = None) -> dict:
    """Send ``request`` to a fresh ``python -m edgenet.bench.child``; return its JSON answer.

    A timeout, a crash (e.g. SIGSEGV inside the interpreter) or garbage output comes back as
    ``{"error": "one line"}``; the child's own answer is returned as it is.
    """
    try:
        # Own process group, ended with everything it started on a timeout or an interruption.
        proc = process.run([python, "-m", "edgenet.bench.child"], input=json.dumps(request), text=True,
                           timeout_s=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"{path}: timed out after {timeout_s:g} s; benchmark child killed"}
    except OSError as exc:
        return {"error": f"{path}: cannot start benchmark child: {exc.strerror or exc}"}
    if proc.returncode < 0:
        name = signal_name(proc.returncode)
        return {"error": f"{path}: benchmark child crashed ({name}), the model is likely malformed"}
    out_lines = proc.stdout.strip().splitlines()  # the answer is the child's last stdout line, verbatim
    line = out_lines[-1] if out_lines else ""
    try:
        payload = json.loads(line)
        if not isinstance(payload, dict):
            raise TypeError
        return payload
    except (json.JSONDecodeError, TypeError, ValueError):
        detail = one_line(proc.stderr, pick="last") or f"exit code {proc.returncode}"
        return {"error": f"{path}: benchmark child failed: {detail}"}


def run_settings(
    model_paths: Sequence[str | os.PathLike],
    params_list: Sequence[BenchParams],
    listeners: Iterable[BenchListener] = (),
    label: str | None = None,
    in_child: bool = True,
) -> list[BenchResult]:
    """Measure every (model, params) pair in order; failures are results with ``error`` set.

    The device fingerprint is taken once; the Raspberry Pi throttling flags are read before and
    after each setting so a throttled run can be spotted in the results.
    """
    listeners = list(listeners)
    settings = [(Path(m), p) for m in model_paths for p in params_list]
    for listener in listeners:
        listener.on_start(len(settings))
    out = []
    for path, params in settings:
        for listener in listeners:
            listener.on_setting(path, params)
        before = envinfo.throttled()
        result = run_in_child(path, params) if in_child else run_in_process(path, params)
        device = envinfo.device_info(
            label=label,
            runtime=result.runtime,
            delegate=result.delegate,
            throttled_before=before,
            throttled_after=envinfo.throttled(),
        )
        result = result.with_device(device)
        out.append(result)
        for listener in listeners:
            listener.on_result(result)
    for listener in listeners:
        listener.on_end(out)
    return out
