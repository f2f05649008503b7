"""Where edgenet's work runs: this process (``local``, the default) or a Ray cluster.

Two executors with one interface, so ``convert``, ``eval``, ``bench`` and ``sweep`` do not know
which one they got:

* :class:`LocalExecutor` -- today's behaviour, unchanged: conversions one after another in child
  processes, evaluation in this process, latency jobs in a child per setting;
* :class:`RayExecutor` -- the same work as Ray tasks (:mod:`edgenet.cluster.tasks`):

  - a conversion declares its memory (:mod:`edgenet.cluster.memory`, B7 about 6.9 GB) so a node
    runs only as many as it holds, and is retried on another node when its node dies;
  - an evaluation is split into shards of images; the model bytes go once through the object
    store, each shard's images travel with it, and the shards' predictions are merged in the
    original order, so top-1/top-5/agreement equal a local run on the same images;
  - a latency job needs its device's custom resource (capacity 1, held by the node owning the
    device's link), so jobs on one board never overlap; it is never retried (a retry could land
    on another board's figures): a lost node marks the job failed with the reason.

``--cluster`` takes ``local``, ``auto``/``ray`` (the cluster this machine belongs to, or
``RAY_ADDRESS``), ``ray://HOST:PORT`` (Ray Client) or ``HOST:PORT`` (a head's GCS address).
Ray is imported only by :class:`RayExecutor`; without it, asking for a cluster is one line
naming the extra to install.

Ctrl-C: the executor's ``__exit__`` cancels every task it submitted (``ray.cancel(force=True)``);
files are written by the submitting process only, atomically, after a task returned, so an
interrupted run leaves the run folder consistent and a rerun resumes.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from .. import process
from ..devices import Device, DeviceCheck
from ..errors import EdgenetError, InputFileError, MissingDependencyError, printable
from ..fsutil import read_input_bytes
from ..numbers import PORT, NumberError
from ..pixels.images import MAX_IMAGE_FILE_BYTES
from .devices import resource_name

__all__ = ["ClusterSpec", "parse_cluster", "open_executor", "LocalExecutor", "RayExecutor", "Span",
           "DEFAULT_SHARD_IMAGES"]

#: Images per evaluation shard: large enough that a shard outweighs a task's overhead (a few ms),
#: small enough that a lost node costs little and every node gets work.
DEFAULT_SHARD_IMAGES = 256
#: Image bytes of the shards in flight at most (they sit in the object store until their task ends).
INFLIGHT_IMAGE_BYTES = 512 * 1024 * 1024
#: How often the devices of pending latency jobs are checked to still be held by a node.
DEVICE_WATCH_S = 2.0
_ADDRESS = re.compile(r"^(ray://)?[A-Za-z0-9_.\-\[\]:]+:\d+$")


@dataclass(frozen=True)
class ClusterSpec:
    """What ``--cluster`` asked for: ``local``, or Ray at ``address`` (``auto`` or an address)."""

    kind: str  # "local" | "ray"
    address: str | None = None

    @property
    def is_local(self) -> bool:
        return self.kind == "local"


def parse_cluster(text: str | None) -> ClusterSpec:
    """``local`` | ``auto`` | ``ray`` | ``ray://HOST:PORT`` | ``HOST:PORT`` -> :class:`ClusterSpec`."""
    value = (text or "local").strip()
    if value == "local":
        return ClusterSpec("local")
    if value in ("auto", "ray"):
        return ClusterSpec("ray", os.environ.get("RAY_ADDRESS") or "auto")
    if _ADDRESS.match(value):
        port = value.rpartition(":")[2]
        try:  # the one number rule (edgenet.numbers): a port a socket can take, else one line
            PORT.check(port, f"--cluster {printable(value)[:80]}: port")
        except NumberError as exc:
            raise EdgenetError(str(exc)) from None
        return ClusterSpec("ray", value)
    raise EdgenetError(f"--cluster must be local, auto, ray://HOST:PORT or HOST:PORT, got {value!r}")


_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def _host_port(address: str) -> tuple[str, int] | None:
    if not _ADDRESS.match(address):
        return None
    host, _, port = address.removeprefix("ray://").rpartition(":")
    return host.strip("[]"), int(port)


#: How long ``--cluster HOST:PORT`` may take to show it is a Ray head before edgenet gives up.
CONNECT_DEADLINE_S = 5.0

# An HTTP/2 client preface and an empty SETTINGS frame: a Ray head (GCS, or Ray Client) is a gRPC
# server, which answers with a SETTINGS frame of its own at once.
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
_H2_SETTINGS = 0x04


def _check_reachable(address: str, timeout_s: float = CONNECT_DEADLINE_S) -> None:
    """Fail in one line, within ``timeout_s``, when nothing listens at ``address`` or what listens is
    not a gRPC server (Ray itself would retry for minutes, printing its native logs)."""
    import socket

    target = _host_port(address)
    if target is None:
        return
    start = "start one with 'ray start --head --node-ip-address <private address>'"
    deadline = time.monotonic() + timeout_s
    try:
        with socket.create_connection(target, timeout=timeout_s) as conn:
            conn.sendall(_H2_PREFACE)
            head = b""
            while len(head) < 9:
                conn.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = conn.recv(9 - len(head))
                if not chunk:
                    break
                head += chunk
    except TimeoutError:
        raise EdgenetError(f"--cluster {address}: no Ray head answers there (no gRPC answer within "
                           f"{timeout_s:g} s); {start}") from None
    except OSError as exc:
        raise EdgenetError(f"--cluster {address}: no Ray head answers there ({exc.strerror or exc}); {start}") from None
    if len(head) < 9 or head[3] != _H2_SETTINGS:
        raise EdgenetError(f"--cluster {address}: what listens there is not a Ray head (not a gRPC server); {start}")


def require_ray(address: str | None = None):
    """Import Ray (one line naming the extra when it is missing).

    A head on the loopback address is a one-machine cluster: Ray is told so before it is imported,
    or it would rewrite 127.0.0.1 into this machine's network address and never reach the head.
    """
    target = _host_port(address) if address else None
    if target is not None and target[0] in _LOOPBACK:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("ray", "ray", "--cluster") from None
    return ray


@dataclass(frozen=True)
class Span:
    """One finished task: what, where, and its wall-clock start and end (seconds since the epoch)."""

    kind: str  # "convert" | "eval" | "latency" | "check"
    what: str
    node: str
    started: float
    ended: float
    device: str | None = None


class _Base:
    """Shared bookkeeping: the finished tasks' spans (the run's timeline)."""

    name = "base"

    def __init__(self):
        self.timeline: list[Span] = []
        self._lock = threading.Lock()

    def _span(self, kind, what, payload, device=None) -> None:
        with self._lock:
            self.timeline.append(Span(kind, what, payload.get("node") or "?", payload.get("started") or 0.0,
                                      payload.get("ended") or 0.0, device))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close(cancel=exc[0] is not None)
        return False

    # ---- shared helpers
    def convert(self, variants, options, on_result: Callable | None = None) -> list:
        """Every variant's :class:`~edgenet.convert.api.ConvertResult`, in the given order."""
        futures = [self.submit_convert(v, options) for v in variants]
        out = []
        for future in futures:
            result = future.result()
            if on_result is not None:
                on_result(result)
            out.append(result)
        return out

    def latency(self, device: Device, model_paths, threads, params) -> list[dict]:
        return self.submit_latency(device, model_paths, threads, params).result()


def _failed_records(device: Device, model_paths, threads, params, reason: str) -> list[dict]:
    """One failed bench record per (model, threads) on ``device``, carrying ``reason``."""
    from ..bench.result import BenchResult

    out = []
    for path in model_paths:
        for t in threads:
            p = replace(params, threads=t, delegate=device.delegate, edgetpu_lib=device.edgetpu_lib)
            record = BenchResult(str(path), p, error=reason).to_record()
            record["device"] = dict(record.get("device") or {}, label=device.name)
            out.append(record)
    from .tasks import describe_models

    return describe_models(out, model_paths)


class LocalExecutor(_Base):
    """Everything on this machine, as edgenet always did (conversions serial; one queue per device)."""

    name = "local"

    def __init__(self):
        super().__init__()
        self._convert_pool = cf.ThreadPoolExecutor(1, thread_name_prefix="edgenet-convert")
        self._device_pools: dict[str, cf.ThreadPoolExecutor] = {}

    def describe(self) -> str:
        return "local"

    def close(self, cancel: bool = False) -> None:
        self._convert_pool.shutdown(wait=not cancel, cancel_futures=cancel)
        for pool in self._device_pools.values():
            pool.shutdown(wait=not cancel, cancel_futures=cancel)

    def convert(self, variants, options, on_result=None) -> list:
        from ..convert.api import convert_variants

        return convert_variants(list(variants), options, on_result=on_result)

    def submit_convert(self, variant, options) -> cf.Future:
        from ..convert.api import convert_variants

        return self._convert_pool.submit(lambda: convert_variants([variant], options)[0])

    def evaluate(self, classifier, dataset, limit=None, progress=True, shard_images=None, on_shard=None,
                 threads=1):
        from ..evaluation.evaluate import evaluate

        return evaluate(classifier, dataset, limit=limit, progress=progress)

    def submit_latency(self, device: Device, model_paths, threads, params) -> cf.Future:
        from .tasks import describe_models, node_name, run_on_device

        # Devices on this machine's own CPU/USB share one queue: they are one machine to time on.
        key = "this machine" if device.link == "local" else device.name
        if key not in self._device_pools:
            self._device_pools[key] = cf.ThreadPoolExecutor(1, thread_name_prefix=key)
        pool = self._device_pools[key]

        def job():
            started = time.time()
            try:
                return describe_models(run_on_device(device, model_paths, threads, params), model_paths)
            except EdgenetError as exc:  # an unreachable board: its settings fail, the other devices go on
                return _failed_records(device, model_paths, threads, params, f"{device.name}: {exc}")
            finally:
                self._span("latency", ",".join(Path(p).name for p in model_paths),
                           {"node": node_name(), "started": started, "ended": time.time()}, device.name)

        return pool.submit(job)

    def check_devices(self, devices: Sequence[Device], timeout_s: float | None = None) -> list[DeviceCheck]:
        from ..devices import check_devices

        return check_devices(devices, **({"timeout_s": timeout_s} if timeout_s else {}))


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _one_line(exc: BaseException) -> str:
    """One line for a task failure: the cause raised inside the task when Ray kept it."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        exc = cause
    text = " ".join(_ANSI.sub("", str(exc)).split())
    if not isinstance(exc, EdgenetError):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text[:300]


class RayExecutor(_Base):
    """The same work as Ray tasks (see the module docstring)."""

    name = "ray"

    def __init__(self, address: str = "auto", init_kwargs: dict | None = None):
        super().__init__()
        ray = require_ray(address)
        self.ray = ray
        self._owns_ray = False
        if not ray.is_initialized():
            _check_reachable(address)
            kwargs = {"address": address, "logging_level": "ERROR", "log_to_driver": False}
            target = _host_port(address)
            if target is not None and target[0] in _LOOPBACK and not address.startswith("ray://"):
                kwargs["_node_ip_address"] = "127.0.0.1"
            kwargs.update(init_kwargs or {})
            try:
                # Ray installs SIGTERM/SIGINT handlers of its own in ray.init: edgenet's stay in force.
                with process.keep_signal_handlers():
                    ray.init(**kwargs)
            except ConnectionError as exc:
                raise EdgenetError(f"--cluster {address}: no Ray cluster there ({_one_line(exc)}); start one with "
                                   "'ray start --head --node-ip-address <private address>'") from None
            except Exception as exc:  # noqa: BLE001 - Ray raises many kinds; one line for all
                raise EdgenetError(f"--cluster {address}: cannot connect to Ray: {_one_line(exc)}") from None
            self._owns_ray = True
        from . import tasks

        self._convert = ray.remote(tasks.convert_task)
        self._shard = ray.remote(tasks.eval_shard_task)
        self._latency = ray.remote(tasks.latency_task)
        self._check = ray.remote(tasks.check_task)
        self._pending: set = set()
        self._watched: dict = {}  # latency ref -> device: cancelled if the device's node leaves
        self._lost: dict = {}  # ref -> why it was cancelled
        self._closed = threading.Event()
        self._watcher: threading.Thread | None = None
        self._converters: dict = {}  # request -> Converter (the up-to-date check of the local path)

    def describe(self) -> str:
        nodes = [n for n in self.ray.nodes() if n.get("Alive")]
        cpus = sum(n.get("Resources", {}).get("CPU", 0) for n in nodes)
        return f"ray: {len(nodes)} node(s), {cpus:g} CPU(s)"

    def close(self, cancel: bool = False) -> None:
        self._closed.set()
        if cancel:
            self.cancel()
        if self._owns_ray:
            self.ray.shutdown()

    def cancel(self) -> None:
        """Cancel every task this executor submitted that has not finished (Ctrl-C): first politely (the
        task sees KeyboardInterrupt and its ``finally`` removes its folders), then, after
        :data:`edgenet.process.GRACE_S`, by force."""
        refs = list(self._pending)
        for ref in refs:
            with contextlib.suppress(Exception):  # already finished or gone: nothing to cancel
                self.ray.cancel(ref, force=False)
        with contextlib.suppress(Exception):
            _, refs = self.ray.wait(refs, num_returns=len(refs), timeout=process.GRACE_S) if refs else ([], [])
        for ref in refs:
            with contextlib.suppress(Exception):
                self.ray.cancel(ref, force=True)
        self._pending.clear()

    def _track(self, ref, done: Callable[[object, BaseException | None], object]) -> cf.Future:
        """A concurrent Future resolved by ``done(value, error)`` once ``ref`` finishes."""
        self._pending.add(ref)
        out: cf.Future = cf.Future()

        def finish(ray_future: cf.Future) -> None:
            self._pending.discard(ref)
            try:
                value, error = ray_future.result(), None
            except BaseException as exc:  # noqa: BLE001 - task error, lost node, cancellation
                value, error = None, exc
            try:
                out.set_result(done(value, error))
            except BaseException as exc:  # noqa: BLE001
                out.set_exception(exc)

        ref.future().add_done_callback(finish)
        return out

    # ---- conversions
    def submit_convert(self, variant, options) -> cf.Future:
        from ..fsutil import atomic_write_bytes, atomic_write_text
        from .memory import convert_memory_bytes

        # Up to date is decided here, by the local path's own check (Converter.up_to_date): a finished
        # output ships nothing and starts no task.
        converter = self._converter(options)
        plan = converter.plan(variant)
        done = None if options.force else converter.up_to_date(plan)
        future: cf.Future = cf.Future()
        if done is not None:
            future.set_result(done)
            return future
        spec = variant.spec or variant.name
        memory = convert_memory_bytes(variant)
        largest = max((n.get("Resources", {}).get("memory", 0) for n in self.ray.nodes() if n.get("Alive")), default=0)
        if memory > largest:  # Ray would wait for such a node forever
            future.set_result(plan.result(options, "failed", error=(
                f"{variant.name}: its conversion needs {memory / 2**30:.1f} GiB and the largest node of the cluster "
                f"offers {largest / 2**30:.1f} GiB (ray start --memory)")))
            return future
        ref = self._convert.options(num_cpus=1, memory=memory, max_retries=3).remote(
            spec, replace(options, progress=False, force=True))

        def done_(payload, error):
            if error is not None:
                return plan.result(options, "failed", error=f"{variant.name}: cluster task failed: {_one_line(error)}")
            self._span("convert", spec, payload)
            result = payload["result"]
            if payload["model"] is not None:
                # Model first, manifest last (the manifest marks the conversion finished), both atomic.
                atomic_write_bytes(plan.model_path, payload["model"])
                atomic_write_text(plan.manifest_path, payload["manifest"])
            fields = {k: v for k, v in result.items() if k not in ("variant", "spec", "quant", "io", "status",
                                                                  "model_path", "manifest_path", "weights")}
            return plan.result(options, result["status"], **dict(fields, notes=tuple(fields.get("notes") or ())))

        return self._track(ref, done_)

    def _converter(self, options):
        """One :class:`~edgenet.convert.api.Converter` per request (its calibration tensors are reused)."""
        from ..convert.api import Converter

        if options not in self._converters:
            self._converters.clear()
            self._converters[options] = Converter(options)
        return self._converters[options]

    # ---- evaluation
    def evaluate(self, classifier, dataset, limit=None, progress=True, shard_images=None, on_shard=None,
                 threads=1):
        """Sharded :func:`edgenet.evaluation.evaluate.evaluate` of a ``.tflite`` classifier (Keras: local)."""
        import numpy as np
        from tqdm import tqdm

        from ..evaluation.classifier import manifest_for
        from ..evaluation.evaluate import TOP_K, EvalResult, evaluate, topk_accuracy

        if classifier.kind != "tflite":
            return evaluate(classifier, dataset, limit=limit, progress=progress)
        ray = self.ray
        samples = dataset.samples[:limit] if limit is not None else dataset.samples
        size = max(1, int(shard_images or DEFAULT_SHARD_IMAGES))
        shards = [samples[i:i + size] for i in range(0, len(samples), size)]
        model_ref = ray.put(classifier.runner.model_bytes)  # once through the object store
        manifest = manifest_for(Path(classifier.path))
        cpus = max(1, int(sum(n.get("Resources", {}).get("CPU", 0) for n in ray.nodes() if n.get("Alive"))))
        window = 2 * cpus  # shards in flight: every CPU busy, images read just ahead of use
        inflight_bytes = 0  # ... and never more than INFLIGHT_IMAGE_BYTES of images in the object store
        sizes: dict[int, int] = {}
        results: list[dict | None] = [None] * len(shards)
        in_flight: dict = {}
        bar = tqdm(total=len(samples), desc=classifier.name, unit="img", file=sys.stderr, disable=not progress,
                   leave=False)

        def items(shard):
            out = []
            for s in shard:
                try:  # the one reader: a FIFO or a link to /dev/zero in a data set is a skip, never a hang
                    out.append((str(s.path), read_input_bytes(s.path, "an image file", MAX_IMAGE_FILE_BYTES),
                                None, s.label))
                except InputFileError as exc:
                    out.append((str(s.path), None, exc.cause, s.label))
            return out

        next_shard = 0
        try:
            while next_shard < len(shards) or in_flight:
                while (next_shard < len(shards) and len(in_flight) < window
                       and (not in_flight or inflight_bytes < INFLIGHT_IMAGE_BYTES)):
                    shard_items = items(shards[next_shard])
                    sizes[next_shard] = sum(len(data or b"") for _, data, _, _ in shard_items)
                    inflight_bytes += sizes[next_shard]
                    ref = self._shard.options(num_cpus=threads, max_retries=3).remote(
                        model_ref, manifest, classifier.name, shard_items, threads)
                    self._pending.add(ref)
                    in_flight[ref] = next_shard
                    next_shard += 1
                ready, _ = ray.wait(list(in_flight), num_returns=1)
                for ref in ready:
                    index = in_flight.pop(ref)
                    inflight_bytes -= sizes.pop(index)
                    self._pending.discard(ref)
                    try:
                        payload = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:
                        cause = exc.cause if isinstance(getattr(exc, "cause", None), EdgenetError) else exc
                        raise EdgenetError(f"{classifier.name}: shard {index + 1}/{len(shards)} failed: "
                                           f"{_one_line(cause)}") from None
                    except ray.exceptions.RayError as exc:
                        raise EdgenetError(f"{classifier.name}: shard {index + 1}/{len(shards)} lost after "
                                           f"retries: {_one_line(exc)}") from None
                    results[index] = payload
                    self._span("eval", f"{classifier.name}#{index}", payload)
                    bar.update(len(shards[index]))
                    if on_shard is not None:
                        on_shard(index, len(shards), payload)
        finally:
            bar.close()
        labels = [v for r in results for v in r["labels"]]
        preds = [p for r in results for p in r["predictions"]]
        top = np.asarray(preds, dtype=np.int64).reshape(-1, TOP_K) if preds else np.zeros((0, TOP_K), np.int64)
        y = np.asarray(labels, dtype=np.int64)
        count = len(y)
        top1, top5 = topk_accuracy(top, y)
        return EvalResult(
            model=classifier.name, dataset=dataset.name, top1=top1, top5=top5, count=count,
            skipped=tuple((p, reason) for r in results for p, reason in r["skipped"]),
            paths=tuple(p for r in results for p in r["paths"]), labels=tuple(int(v) for v in y),
            predictions=tuple(tuple(int(v) for v in row) for row in top),
        )

    # ---- devices
    def _device_available(self, device: Device) -> str | None:
        total = self.ray.cluster_resources().get(resource_name(device.name), 0)
        if total >= 1:
            return None
        return (f"{device.name}: no node of the cluster holds it; start the node that owns its link with "
                f"ray start ... --resources '{json.dumps({resource_name(device.name): 1})}'")

    def _node_cpus(self, device: Device) -> float:
        """CPUs of the node holding a local device: its latency job takes them all (nothing else of ours runs)."""
        for node in self.ray.nodes():
            if node.get("Alive") and node.get("Resources", {}).get(resource_name(device.name), 0) >= 1:
                return float(node["Resources"].get("CPU", 0))
        return 0.0

    def submit_latency(self, device: Device, model_paths, threads, params) -> cf.Future:
        missing = self._device_available(device)

        def failed_records(reason: str) -> list[dict]:
            return _failed_records(device, model_paths, threads, params, reason)

        if missing is not None:
            future: cf.Future = cf.Future()
            future.set_result(failed_records(missing))
            return future
        models = [(str(p), self.ray.put(read_input_bytes(p, "a .tflite model"))) for p in model_paths]
        cpus = self._node_cpus(device) if device.link == "local" else 0
        ref = self._latency.options(num_cpus=cpus, resources={resource_name(device.name): 1}, max_retries=0,
                                    retry_exceptions=False).remote(device, [(p, r) for p, r in models],
                                                                   list(threads), params)

        self._watch(ref, device)

        def done(payload, error):
            self._watched.pop(ref, None)
            if error is not None:
                why = self._lost.pop(ref, None) or _one_line(error)
                return failed_records(f"{device.name}: latency job lost, not moved to another device: {why}")
            self._span("latency", ",".join(Path(p).name for p in model_paths), payload, device.name)
            if payload["error"]:
                return failed_records(payload["error"])
            from .tasks import describe_models

            return describe_models(payload["records"], model_paths)

        return self._track(ref, done)

    def _watch(self, ref, device: Device) -> None:
        """Fail a latency job whose device left the cluster (Ray would keep it pending until the node returns)."""
        self._watched[ref] = device
        if self._watcher is not None:
            return

        def watch() -> None:
            while not self._closed.wait(DEVICE_WATCH_S):
                if not self._watched:
                    continue
                try:
                    held = self.ray.cluster_resources()
                except Exception:  # noqa: BLE001, S112 - a transient GCS hiccup: look again later
                    continue
                for ref, device in list(self._watched.items()):
                    if held.get(resource_name(device.name), 0) < 1:
                        self._lost[ref] = f"the node holding {device.name} left the cluster"
                        self._watched.pop(ref, None)
                        with contextlib.suppress(Exception):  # already finished
                            self.ray.cancel(ref, force=True)

        self._watcher = threading.Thread(target=watch, name="edgenet-device-watch", daemon=True)
        self._watcher.start()

    def check_devices(self, devices: Sequence[Device], timeout_s: float | None = None) -> list[DeviceCheck]:
        out: list[DeviceCheck | cf.Future] = []
        for device in devices:
            missing = self._device_available(device)
            if missing is not None:
                out.append(DeviceCheck(device.name, device.where, ok=False, reachable=False,
                                       delegate=device.delegate, detail=missing.split(": ", 1)[1]))
                continue
            ref = self._check.options(num_cpus=0, resources={resource_name(device.name): 1}, max_retries=0).remote(device, timeout_s)
            out.append(self._track(ref, lambda value, error, d=device: DeviceCheck(**value) if error is None else
                                   DeviceCheck(d.name, d.where, ok=False, reachable=False, delegate=d.delegate,
                                               detail=f"check task failed: {_one_line(error)}")))
        return [item.result() if isinstance(item, cf.Future) else item for item in out]


def open_executor(cluster: str | ClusterSpec | None = "local", **ray_init) -> LocalExecutor | RayExecutor:
    """The executor for ``--cluster``; use it as a context manager (Ctrl-C cancels cluster tasks)."""
    spec = cluster if isinstance(cluster, ClusterSpec) else parse_cluster(cluster)
    if spec.is_local:
        return LocalExecutor()
    return RayExecutor(spec.address or "auto", init_kwargs=ray_init or None)
