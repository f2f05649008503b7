"""The sweep over a fleet: convert each variant once, measure it on every device, pick per device.

``edgenet sweep --devices devices.toml --budget-ms X`` works like the one-device sweep
(:mod:`edgenet.decide.sweep`) on each device at once: every device walks the variants in
increasing multiply-adds and stops at its first variant over the budget (or one predicted far
above it from that device's own measurements), so a fast laptop goes on to B5 while a Pi stops at
B1. A variant is converted once, when the first device needs it (on a cluster, the next one is
converted while the current one is measured); each device runs one latency job at a time, and
the devices run in parallel.

On the local executor nothing is timed while a conversion runs on this machine: a conversion
waits for the latency jobs of this machine's devices and the other way round (boards behind SSH
go on). On Ray, a job on a node's own CPU reserves all the node's CPUs for the same reason.

The run folder is the one-device sweep's, resumable the same way:

* ``models/`` -- converted models and manifests (an up-to-date model is not converted again);
* ``results.jsonl`` -- every device's bench records, each labelled with the device name; a model
  already measured on a device with the same settings is not measured again;
* ``devices/<name>/`` -- each device's REPORT.md, results.json and pictures
  (:func:`edgenet.decide.report.write_report`);
* ``REPORT.md`` -- the picks side by side, then one section and picture per device;
* ``sweep.json`` -- every device's steps and pick, written last.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ..errors import EdgenetError
from ..family.architecture import architecture
from ..fsutil import atomic_write_text, sha256_file
from ..results import append_records, as_record, read_records, usable_bench
from .sweep import RESULTS_NAME, SWEEP_NAME, Step, SweepParams, _matches, _predict, _weights_for

__all__ = ["DeviceOutcome", "FleetOutcome", "run_fleet_sweep", "fleet_rows"]


@dataclass(frozen=True)
class DeviceOutcome:
    device: str
    where: str
    threads: int
    steps: tuple[Step, ...]
    selection: object | None  # edgenet.decide.select.Selection
    report: Path | None

    def to_dict(self) -> dict:
        return {"device": self.device, "where": self.where, "threads": self.threads,
                "steps": [asdict(s) for s in self.steps],
                "selection": self.selection.to_dict() if self.selection is not None else None,
                "report": str(self.report) if self.report else None}


@dataclass(frozen=True)
class FleetOutcome:
    devices: tuple[DeviceOutcome, ...]
    rundir: Path
    report: Path | None
    timeline: tuple = ()

    def to_dict(self) -> dict:
        return {"rundir": str(self.rundir), "devices": [d.to_dict() for d in self.devices],
                "report": str(self.report) if self.report else None,
                "timeline": [asdict(s) for s in self.timeline]}


class _Walk:
    """One device's walk through the variants."""

    def __init__(self, device, threads: int):
        self.device, self.threads = device, threads
        self.index = 0
        self.steps: list[Step] = []
        self.measured: list = []
        self.stop_reason: str | None = None
        self.job: cf.Future | None = None
        self.job_meta: tuple | None = None


def _device_records(records: list[dict], name: str) -> list[dict]:
    """The records of one device of the fleet (labelled with its name by the executor)."""
    return [r for r in records if as_record(r).device.label == name]


def device_constraints(params: SweepParams, device):
    """The sweep's constraints with the device's own (devices.toml ``constraints``) taking precedence."""
    own = dict(getattr(device, "constraints", None) or {})
    if not own:
        return params.constraints
    from .constraints import ConstraintError

    try:
        return params.constraints.overlay(own, f"devices.toml [{device.name}] constraints")
    except ConstraintError as exc:
        raise EdgenetError(str(exc)) from None


def run_fleet_sweep(
    params: SweepParams,
    devices: Sequence,
    rundir: str | Path,
    executor,
    *,
    threads: Mapping[str, int] | None = None,
    log: Callable[[str], None] = lambda _msg: None,
) -> FleetOutcome:
    """Convert once, measure on every device (in parallel, each serially), select per device."""
    from ..convert.api import ConvertRequest

    rundir = Path(rundir)
    models_dir = rundir / "models"
    results_path = rundir / RESULTS_NAME
    for device in devices:  # a bad constraints table is one line naming the device, before any work
        device_constraints(params, device)
    rundir.mkdir(parents=True, exist_ok=True)
    records = read_records(results_path) if results_path.exists() else []
    order = sorted(params.variants, key=lambda v: (architecture(v).macs, v.name))
    local = executor.name == "local"
    prefetch = 0 if local else 1
    threads = dict(threads or {})
    walks = [_Walk(d, threads.get(d.name) or max(d.threads)) for d in devices]
    conversions: dict[int, cf.Future] = {}
    wanted: set[int] = set()

    def options_for(variant):
        return ConvertRequest(quant=params.quant, weights=_weights_for(variant, params.weights_dir),
                              calib=params.calib, samples=params.samples, seed=params.seed, out_dir=models_dir,
                              progress=False)

    def local_jobs_running() -> bool:
        return any(w.job is not None and w.device.link == "local" for w in walks)

    def converting() -> bool:
        return any(not f.done() for f in conversions.values())

    def advance(walk: _Walk) -> None:
        """Move ``walk`` to its next variant, recording skips; ask for the conversions it will need."""
        walk.index += 1
        while walk.index < len(order):
            variant = order[walk.index]
            macs = architecture(variant).macs
            if walk.stop_reason:
                walk.steps.append(Step(variant.name, macs, "skipped", reason=walk.stop_reason))
                walk.index += 1
                continue
            mine = _device_records(records, walk.device.name)
            predicted = _predict(walk.measured, variant, mine, replace(params, threads=walk.threads))
            if predicted is not None and predicted > params.far_factor * params.budget_ms:
                reason = (f"predicted {predicted:.1f} ms from {len(walk.measured)} measured variants, "
                          f"{predicted / params.budget_ms:.1f}x the budget")
                walk.steps.append(Step(variant.name, macs, "skipped", predicted_ms=predicted, reason=reason))
                log(f"{walk.device.name}: skip {variant.name}: {reason}")
                walk.stop_reason = f"larger than {variant.name}, which is predicted far over budget"
                walk.index += 1
                continue
            break
        for i in range(walk.index, min(walk.index + 1 + prefetch, len(order))):
            wanted.add(i)

    def submit_conversions() -> None:
        for i in sorted(wanted - set(conversions)):
            if local and (local_jobs_running() or converting()):
                return  # one at a time, and never while this machine times a model
            conversions[i] = executor.submit_convert(order[i], options_for(order[i]))

    def finish_step(walk: _Walk, step: Step) -> None:
        if step.latency_ms is not None:
            verdict = ("within budget" if step.latency_ms <= params.budget_ms
                       else f"over budget by {step.latency_ms - params.budget_ms:.1f} ms")
            step = replace(step, reason=f"{step.reason}; {verdict}" if step.reason else verdict)
            walk.measured.append((order[walk.index], step.latency_ms))
            if step.latency_ms > params.budget_ms:
                walk.stop_reason = f"larger than {step.variant}, which measured {step.latency_ms:.1f} ms > budget"
        walk.steps.append(step)
        advance(walk)

    for walk in walks:
        walk.index = -1
        advance(walk)
    submit_conversions()
    try:
        while any(w.index < len(order) for w in walks):
            progressed = False
            for walk in walks:
                if walk.job is not None or walk.index >= len(order):
                    continue
                future = conversions.get(walk.index)
                if future is None or not future.done():
                    continue
                variant = order[walk.index]
                macs = architecture(variant).macs
                result = future.result()
                if not result.ok:
                    log(f"{walk.device.name}: convert {variant.name}: {result.error}")
                    finish_step(walk, Step(variant.name, macs, "failed", reason=f"conversion failed: {result.error}"))
                    progressed = True
                    continue
                model_path = Path(result.model_path)
                sha = sha256_file(model_path)
                bench = replace(params.bench, threads=walk.threads, delegate=walk.device.delegate,
                                edgetpu_lib=walk.device.edgetpu_lib)
                done = next((r for r in reversed(usable_bench(_device_records(records, walk.device.name)))
                             if _matches(r, sha, bench, walk.device.name)), None)
                if done is not None:
                    latency = done.stat_ms(params.stat)
                    log(f"{walk.device.name}: {variant.name}: {latency:.2f} ms {params.stat} (already measured)")
                    finish_step(walk, Step(variant.name, macs, "reused", latency_ms=latency, model=str(model_path),
                                           reason="measured in an earlier run"))
                    progressed = True
                    continue
                if local and walk.device.link == "local" and converting():
                    continue  # this machine is converting: do not time a model on it now
                walk.job = executor.submit_latency(walk.device, [model_path], [walk.threads], bench)
                walk.job_meta = (variant, macs, model_path)
                progressed = True
            for walk in walks:
                if walk.job is None or not walk.job.done():
                    continue
                variant, macs, model_path = walk.job_meta
                new = walk.job.result()
                walk.job = None
                append_records(results_path, new)  # atomic: a Ctrl-C never leaves half a file
                records.extend(new)
                record = as_record(new[-1])
                if not record.ok:
                    log(f"{walk.device.name}: bench {variant.name}: {record.error}")
                    finish_step(walk, Step(variant.name, macs, "failed", model=str(model_path),
                                           reason=f"benchmark failed: {record.error}"))
                else:
                    latency = record.stat_ms(params.stat)
                    log(f"{walk.device.name}: bench {variant.name}: {latency:.2f} ms {params.stat}")
                    finish_step(walk, Step(variant.name, macs, "measured", latency_ms=latency,
                                           model=str(model_path)))
                progressed = True
            submit_conversions()
            if progressed:
                continue
            waiting = [w.job for w in walks if w.job is not None]
            waiting += [f for f in conversions.values() if not f.done()]
            if not waiting:
                raise EdgenetError("fleet sweep: nothing to wait for but devices still pending (internal error)")
            cf.wait(waiting, return_when=cf.FIRST_COMPLETED)
    finally:
        if hasattr(executor, "cancel"):
            executor.cancel()  # conversions fetched ahead that no device needs any more
    return _finish(params, walks, records, rundir, executor, log)


def _finish(params, walks, records, rundir, executor, log) -> FleetOutcome:
    from .decision import decide
    from .report import write_report

    outcomes = []
    for walk in walks:
        name = walk.device.name
        mine = _device_records(records, name)
        selection, report, decision = None, None, None
        if usable_bench(mine):
            try:  # every constraint, the device's own over the sweep's, each with its interval
                decision = decide(mine, stat=params.stat, device=name, threads=walk.threads,
                                  constraints=device_constraints(params, walk.device))
                selection = replace(decision.selection, pick=decision.pick.candidate if decision.pick else None)
            except EdgenetError as exc:
                log(f"{name}: selection: {exc}")
        if selection is not None:
            report = write_report(rundir / "devices" / name, mine, selection, params.budget_ms, stat=params.stat,
                                  decision=decision)
        outcomes.append(DeviceOutcome(name, walk.device.where, walk.threads, tuple(walk.steps), selection, report))
    outcome = FleetOutcome(tuple(outcomes), rundir, None, tuple(getattr(executor, "timeline", ())))
    report = atomic_write_text(rundir / "REPORT.md", _fleet_markdown(outcome, params))
    outcome = replace(outcome, report=report)
    data = outcome.to_dict()
    data["params"] = {"budget_ms": params.budget_ms, "variants": [v.spec or v.name for v in params.variants],
                      "quant": params.quant, "stat": params.stat, "calib": params.calib, "samples": params.samples,
                      "seed": params.seed, "min_top1": params.min_top1, "far_factor": params.far_factor,
                      "bench": params.bench.to_dict(), "executor": executor.name}
    atomic_write_text(rundir / SWEEP_NAME, json.dumps(data, indent=2, default=str))
    return outcome


def fleet_rows(outcome: FleetOutcome, budget_ms: float) -> list[dict]:
    """The picks side by side: one row per device."""
    rows = []
    for d in outcome.devices:
        pick = d.selection.pick if d.selection is not None else None
        measured = sum(1 for s in d.steps if s.latency_ms is not None)
        rows.append({
            "device": d.device, "where": d.where, "threads": d.threads,
            "pick": pick.variant if pick else "none fits",
            "latency_ms": f"{pick.latency_ms:.2f}" if pick else "",
            "margin_ms": f"{budget_ms - pick.latency_ms:.2f}" if pick else "",
            "measured": measured,
            "failed": sum(1 for s in d.steps if s.action == "failed"),
        })
    return rows


def _fleet_markdown(outcome: FleetOutcome, params: SweepParams) -> str:
    rows = fleet_rows(outcome, params.budget_ms)
    titles = {"device": "device", "where": "reached as", "threads": "threads", "pick": "pick",
              "latency_ms": f"{params.stat} ms", "margin_ms": "margin ms", "measured": "measured", "failed": "failed"}
    lines = ["# edgenet fleet report", "", f"Budget: **{params.budget_ms:g} ms** at {params.stat}, "
             f"{params.quant}, variants {', '.join(v.spec or v.name for v in params.variants)}.", "",
             "## Picks", "", "| " + " | ".join(titles.values()) + " |", "|" + "---|" * len(titles)]
    lines += ["| " + " | ".join(str(r[k]) for k in titles) + " |" for r in rows]
    lines.append("")
    for d in outcome.devices:
        lines += [f"## {d.device}", "", f"{d.where}, {d.threads} thread(s)."]
        if d.selection is not None:
            lines.append(f"Decision: {d.selection.message}.")
        lines += ["", "| variant | action | latency ms | why |", "|---|---|---|---|"]
        lines += [f"| {s.variant} | {s.action} | {'' if s.latency_ms is None else f'{s.latency_ms:.2f}'} | "
                  f"{s.reason.replace('|', '/')} |" for s in d.steps]
        lines.append("")
        if d.report is not None:
            folder = f"devices/{d.device}"
            lines += [f"![{d.device}: latency vs MACs]({folder}/latency_vs_macs.png)", "",
                      f"Full report: [{folder}/REPORT.md]({folder}/REPORT.md)", ""]
    return "\n".join(lines)
