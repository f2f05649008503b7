"""The sweep: convert each variant once, measure it on every target, decide per target.

One engine for one device and for a fleet (a one-device sweep is a fleet of one). Every target
walks the variants in increasing multiply-adds. Latency grows with the variant, so a target stops
at its first variant measured over the budget, and skips one whose latency, predicted from its own
measurements, is far above it (``far_factor`` times the budget): a fast laptop goes on to B5 while
a Pi stops at B1. Every skip is recorded with its reason. A variant is converted once, when the
first target needs it (on a cluster, the next one is converted while the current one is measured);
each target runs one latency job at a time, and the targets run in parallel.

On the local executor nothing is timed while a conversion runs on this machine: a conversion waits
for the latency jobs of this machine's devices and the other way round (boards behind SSH go on).
On Ray, a job on a node's own CPU reserves all the node's CPUs for the same reason.

Then, per target, the pick is made by :func:`edgenet.decide.decision.decide`: a candidate is picked
only when its latency interval lies within the budget. A candidate too close to call is measured
again, interleaved with its neighbour (:mod:`edgenet.decide.remeasure`), before deciding. With
``data`` (labelled) or ``agreement_images`` (unlabelled) each converted model's accuracy or
agreement with its float model is measured once, on this machine (:mod:`edgenet.decide.accuracy`:
a property of the model file, the same on every target), and the objective can be accuracy. With
``refine`` a custom phi between a target's pick and the next variant is converted and measured.

The run folder is always consistent, so an interrupted run continues where it stopped:

* ``models/`` -- the converted models with their manifests (written atomically; an up-to-date
  model is not converted again);
* ``results.jsonl`` -- every target's bench records, labelled with the device name, and the eval
  records; appended atomically after each job. A model already measured on a device with the same
  settings is not measured again;
* ``REPORT.md`` and its pictures (:func:`edgenet.decide.report.write_report`) -- for one target
  its report; for several, the picks side by side with one section per device, and each device's
  own report in ``devices/<name>/``;
* ``alternatives.jsonl`` -- when nothing fits a target, what was measured as an alternative (other
  thread counts, forms, sizes and engines: :mod:`edgenet.decide.alternatives`), kept apart from the
  candidates' results, which stay one setting per device;
* ``sweep.json`` -- the parameters, every target's steps and decision (one schema for one target
  and for many, :data:`SWEEP_SCHEMA`), written last.

Several quantization forms (``quant="int8,fp16,fp32"``) walk the sizes one form after the other (each form
stops at its own first variant over budget), and each target's pick is made across all of them. Every
limit in ``params.constraints`` (:mod:`edgenet.decide.constraints`) applies to every target, overlaid by a
device's own ``constraints`` table from devices.toml.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ..bench import BenchParams
from ..devices import Device
from ..errors import EdgenetError
from ..family.architecture import architecture
from ..family.variants import Variant, parse_variant
from ..fsutil import atomic_write_text, sha256_file, write_error
from ..results import BenchRecord, append_records, as_record, read_records, usable_bench
from .params import Step, SweepParams, weights_for
from .targets import this_machine

__all__ = ["RESULTS_NAME", "SWEEP_NAME", "SWEEP_SCHEMA", "DeviceOutcome", "SweepOutcome", "describe",
           "earlier_measurement", "run_sweep", "scope_notes", "summary_rows"]

RESULTS_NAME = "results.jsonl"
ALTERNATIVES_NAME = "alternatives.jsonl"
#: The engines an alternative may try (of bench.tune.ENGINES; the builtin kernels and the weight cache, which
#: only shortens start-up, are no latency alternative).
ALTERNATIVE_ENGINES = ("interpreter/xnnpack", "interpreter/xnnpack+latest", "compiled/xnnpack", "compiled/ynnpack")
SWEEP_NAME = "sweep.json"
SWEEP_SCHEMA = "edgenet.sweep/2"


@dataclass(frozen=True)
class DeviceOutcome:
    """What the sweep did on one target and what it decided there."""

    device: str
    where: str
    threads: int
    steps: tuple[Step, ...]
    decision: object | None = None  # edgenet.decide.decision.Decision: what to deploy
    suggestion: dict | None = None  # --refine: the custom phi tried, predicted and measured
    report: Path | None = None
    emulated: bool = False  # measured on an emulated device: nothing is picked on its latencies
    alternatives: tuple = ()  # edgenet.decide.alternatives.Alternative: when nothing fits, what would

    @property
    def pick(self):
        """The picked candidate (:class:`edgenet.decide.select.Candidate`), or None."""
        return self.decision.pick.candidate if self.decision is not None and self.decision.pick else None

    def to_dict(self) -> dict:
        return {"device": self.device, "where": self.where, "threads": self.threads, "emulated": self.emulated,
                "steps": [asdict(s) for s in self.steps],
                "decision": self.decision.to_dict() if self.decision is not None else None,
                "suggestion": self.suggestion, "alternatives": [a.to_dict() for a in self.alternatives],
                "report": str(self.report) if self.report else None}


@dataclass(frozen=True)
class SweepOutcome:
    devices: tuple[DeviceOutcome, ...]
    rundir: Path
    report: Path | None
    timeline: tuple = ()  # the executor's finished tasks (edgenet.cluster.executor.Span)

    def to_dict(self, params: SweepParams | None = None, executor: str | None = None) -> dict:
        data = {"schema": SWEEP_SCHEMA, "rundir": str(self.rundir),
                "report": str(self.report) if self.report else None}
        if params is not None:
            data["params"] = dict(params.to_dict(), executor=executor)
        data["devices"] = [d.to_dict() for d in self.devices]
        data["timeline"] = [asdict(s) for s in self.timeline]
        return data


@dataclass
class _Target:
    """One target's walk through the variants and what it measured."""

    device: Device
    bench: BenchParams
    quant: str = "int8"  # the quantization form this walk measures
    index: int = -1
    steps: list[Step] = field(default_factory=list)
    measured: list[tuple[Variant, float]] = field(default_factory=list)
    models: dict[str, tuple[Variant, Path]] = field(default_factory=dict)  # label -> model, increasing size
    #: every form's models, (label, form) -> model (the first form's are ``models`` too)
    every_model: dict[tuple[str, str], tuple[Variant, Path]] = field(default_factory=dict)
    constraints: object = None  # edgenet.decide.constraints.Constraints: the sweep's, with the device's own
    stop_reason: str | None = None
    predicted_ms: float | None = None  # the current variant's latency predicted before it was measured
    job: cf.Future | None = None
    job_meta: tuple | None = None

    @property
    def name(self) -> str:
        return self.device.name

    @property
    def threads(self) -> int:
        return self.bench.threads


@dataclass
class _Run:
    """One sweep in progress: what it was asked, where it writes, the records so far."""

    params: SweepParams
    rundir: Path
    executor: object
    log: Callable[[str], None]
    progress: bool
    order: list[Variant]  # the variants in increasing multiply-adds
    records: list[dict] = field(default_factory=list)

    @property
    def models_dir(self) -> Path:
        return self.rundir / "models"

    def add(self, new: list[dict]) -> None:
        append_records(self.rundir / RESULTS_NAME, new)  # atomic: a Ctrl-C never leaves half a file
        self.records.extend(new)

    def of(self, device: str) -> list[dict]:
        """The device's bench records and every eval record (accuracy belongs to the model file)."""
        return [r for r in self.records if r.get("kind") != "bench" or as_record(r).device.label == device]

    def convert_options(self, variant: Variant, quant: str | None = None, out_dir: Path | None = None):
        from ..convert.api import ConvertRequest

        p = self.params
        return ConvertRequest(quant=quant or p.forms[0], weights=weights_for(variant, p.weights_dir, p.weights),
                              calib=p.calib, samples=p.samples, seed=p.seed, out_dir=out_dir or self.models_dir,
                              progress=self.progress)

    def convert(self, variant: Variant, quant: str | None = None, out_dir: Path | None = None):
        """Convert now (after the walk: nothing is being timed); logs and returns the ConvertResult."""
        result = self.executor.submit_convert(variant, self.convert_options(variant, quant, out_dir)).result()
        self.log(f"convert {variant.name}: {result.status if result.ok else result.error}")
        return result

    def bench_now(self, target: _Target, model_path: Path) -> list[dict]:
        return self.executor.submit_latency(target.device, [model_path], [target.threads], target.bench).result()


def earlier_measurement(records: Sequence, device: str, sha256: str, bench: BenchParams) -> BenchRecord | None:
    """The latest successful measurement of this very model file on ``device`` under ``bench``'s settings."""
    for record in reversed(usable_bench(records, emulated=True)):
        if (record.device.label == device and record.model.sha256 == sha256 and record.threads == bench.threads
                and (record.xnnpack is not False) == bench.xnnpack
                and (record.delegate_setting or "cpu") == bench.delegate
                # runtime settings from `edgenet tune` (absent in older records: the defaults)
                and record.api == bench.api and record.xnnpack_latest == bench.xnnpack_latest
                and record.xnnpack_weight_cache == bench.xnnpack_weight_cache and record.ynnpack == bench.ynnpack):
            return record
    return None


def _predict(measured: list[tuple[Variant, float]], variant: Variant, records: list[dict], params: SweepParams,
             threads: int) -> float | None:
    """Latency of ``variant`` from those measured so far: the latency model from 3 points on,
    a power law in MACs from 2 (latency ~ k * MACs^e), nothing from fewer."""
    if len(measured) >= 3:
        from ..decide.latency_model import LatencyModel

        with contextlib.suppress(EdgenetError):  # e.g. mixed families: fall back to the two-point power law
            return LatencyModel.fit(records, stat=params.stat, threads=threads).predict(variant)
    if len(measured) >= 2:
        (va, la), (vb, lb) = measured[-2], measured[-1]
        ma, mb = architecture(va).macs, architecture(vb).macs
        if ma == mb or la <= 0 or lb <= 0:
            return None
        exponent = math.log(lb / la) / math.log(mb / ma)
        return lb * (architecture(variant).macs / mb) ** max(exponent, 0.0)
    return None


def run_sweep(
    params: SweepParams,
    rundir: str | Path,
    devices: Sequence[Device] | None = None,
    executor=None,
    *,
    log: Callable[[str], None] = lambda _msg: None,
    progress: bool = True,
) -> SweepOutcome:
    """Convert, measure on every device (default: this machine) and decide per device (see the module
    docstring). ``executor``: :func:`edgenet.cluster.executor.open_executor`'s (default: a local one)."""
    from ..cluster.executor import LocalExecutor

    judged = params.bench.for_stat(params.stat)  # enough runs for both ends of the percentile's interval
    if judged is not params.bench:
        log(f"measuring at least {judged.min_runs} runs per model within {judged.max_s:g} s: fewer cannot bound "
            f"{params.stat}")
        params = replace(params, bench=judged)
    devices = tuple(devices) if devices else (this_machine(params.threads),)
    names = [d.name for d in devices]
    if len(set(names)) != len(names):
        raise EdgenetError(f"two sweep targets share a name: {', '.join(names)}")
    rundir = Path(rundir)
    try:
        rundir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(rundir, exc) from None
    if executor is None:
        with LocalExecutor() as local:
            return run_sweep(params, rundir, devices, local, log=log, progress=progress)
    results = rundir / RESULTS_NAME
    order = sorted(params.variants, key=lambda v: (architecture(v).macs, v.name))
    run = _Run(params, rundir, executor, log, progress, order, read_records(results) if results.exists() else [])
    constraints = {d.name: _device_constraints(params, d) for d in devices}  # a bad table fails before any work
    if len(params.forms) > 1 and any(d.delegate == "edgetpu" for d in devices):
        raise EdgenetError("--quant: an Edge TPU runs full-integer models only; use --quant int8 with an Edge TPU "
                           "device")
    targets: list[_Target] = []
    for form in params.forms:  # each form walks the sizes on its own (its latencies differ)
        walk = [_Target(d, replace(params.bench, threads=max(d.threads), delegate=d.delegate,
                                   edgetpu_lib=d.edgetpu_lib), quant=form, constraints=constraints[d.name])
                for d in devices]
        _walk(run, walk, order)
        if not targets:
            targets = walk
        for first, t in zip(targets, walk, strict=True):
            first.every_model.update({(label, form): m for label, m in t.models.items()})
            if t is not first:
                first.steps += t.steps
    outcomes = [_decide_on(run, t, order) for t in targets]
    return _finish(run, outcomes)


def _walk(run: _Run, targets: list[_Target], order: list[Variant]) -> None:
    """Every target through the variants: conversions shared, each target one latency job at a time."""
    params, executor, log = run.params, run.executor, run.log
    local = executor.name == "local"
    prefetch = 0 if local else 1
    conversions: dict[int, cf.Future] = {}
    wanted: set[int] = set()
    several = len(targets) > 1

    def say(t: _Target, text: str) -> None:
        log(f"{t.name}: {text}" if several else text)

    def local_jobs_running() -> bool:
        return any(t.job is not None and t.device.link == "local" for t in targets)

    def converting() -> bool:
        return any(not f.done() for f in conversions.values())

    def advance(t: _Target) -> None:
        """Move ``t`` to its next variant, recording skips; ask for the conversions it will need."""
        t.index += 1
        while t.index < len(order):
            variant = order[t.index]
            macs = architecture(variant).macs
            if t.stop_reason:
                t.steps.append(Step(variant.name, macs, "skipped", reason=t.stop_reason, quant=t.quant))
                say(t, f"skip {variant.name}: {t.stop_reason}")
                t.index += 1
                continue
            mine = [r for r in run.of(t.name) if (r.get("model") or {}).get("quant") in (t.quant, None)]
            predicted = _predict(t.measured, variant, mine, params, t.threads)
            if predicted is not None and predicted > params.far_factor * params.budget_ms:
                reason = (f"predicted {predicted:.1f} ms from {len(t.measured)} measured variants, "
                          f"{predicted / params.budget_ms:.1f}x the budget")
                t.steps.append(Step(variant.name, macs, "skipped", predicted_ms=predicted, reason=reason,
                                    quant=t.quant))
                say(t, f"skip {variant.name}: {reason}")
                t.stop_reason = f"larger than {variant.name}, which is predicted far over budget"
                t.index += 1
                continue
            t.predicted_ms = predicted
            break
        for i in range(t.index, min(t.index + 1 + prefetch, len(order))):
            wanted.add(i)

    def submit_conversions() -> None:
        for i in sorted(wanted - set(conversions)):
            if local and (local_jobs_running() or converting()):
                return  # one at a time, and never while this machine times a model
            conversions[i] = executor.submit_convert(order[i], run.convert_options(order[i], targets[0].quant))

    def finish_step(t: _Target, step: Step) -> None:
        variant = order[t.index]
        step = replace(step, quant=t.quant)
        if step.latency_ms is not None:
            step = replace(step, predicted_ms=t.predicted_ms, reason=_with_verdict(step, params.budget_ms))
            t.measured.append((variant, step.latency_ms))
            if step.latency_ms > params.budget_ms:
                t.stop_reason = f"larger than {step.variant}, which measured {step.latency_ms:.1f} ms > budget"
        if step.model is not None and step.action != "failed":
            t.models[variant.label] = (variant, Path(step.model))
        t.steps.append(step)
        advance(t)

    for t in targets:
        advance(t)
    submit_conversions()
    logged: set[int] = set()
    try:
        while any(t.index < len(order) for t in targets):
            progressed = False
            for t in targets:
                if t.job is not None or t.index >= len(order):
                    continue
                future = conversions.get(t.index)
                if future is None or not future.done():
                    continue
                variant = order[t.index]
                result = future.result()
                if t.index not in logged:
                    logged.add(t.index)
                    log(f"convert {variant.name}: {result.status if result.ok else result.error}")
                if not result.ok:
                    finish_step(t, Step(variant.name, architecture(variant).macs, "failed",
                                        reason=f"conversion failed: {result.error}"))
                    progressed = True
                    continue
                model_path = Path(result.model_path)
                done = earlier_measurement(run.records, t.name, sha256_file(model_path), t.bench)
                if done is not None:
                    finish_step(t, _step(variant, model_path, done, "reused", params.stat, say, t))
                    progressed = True
                    continue
                if local and t.device.link == "local" and converting():
                    continue  # this machine is converting: do not time a model on it now
                t.job = executor.submit_latency(t.device, [model_path], [t.threads], t.bench)
                t.job_meta = (variant, model_path)
                progressed = True
            for t in targets:
                if t.job is None or not t.job.done():
                    continue
                variant, model_path = t.job_meta
                new = t.job.result()
                t.job = None
                run.add(new)
                finish_step(t, _step(variant, model_path, as_record(new[-1]), "measured", params.stat, say, t))
                progressed = True
            submit_conversions()
            if progressed:
                continue
            waiting = [t.job for t in targets if t.job is not None]
            waiting += [f for f in conversions.values() if not f.done()]
            if not waiting:
                raise EdgenetError("sweep: nothing to wait for but devices still pending (internal error)")
            cf.wait(waiting, return_when=cf.FIRST_COMPLETED)
    finally:
        if hasattr(executor, "cancel"):
            executor.cancel()  # conversions fetched ahead that no device needs any more


def _with_verdict(step: Step, budget_ms: float) -> str:
    verdict = ("within budget" if step.latency_ms <= budget_ms
               else f"over budget by {step.latency_ms - budget_ms:.1f} ms")
    return f"{step.reason}; {verdict}" if step.reason else verdict


def _step(variant: Variant, model_path: Path, record: BenchRecord, action: str, stat: str,
          say: Callable, t: _Target) -> Step:
    """The step of one measurement (``action``: measured, reused, remeasured); a failed or emulated one
    carries no latency (an emulator's speed is not a board latency: no budget check)."""
    macs = architecture(variant).macs
    if not record.ok:
        say(t, f"bench {variant.name}: {record.error}")
        return Step(variant.name, macs, "failed", model=str(model_path), reason=f"benchmark failed: {record.error}")
    if record.emulated:
        reason = (f"ran on an emulated device, {record.emulation}: {record.stat_ms(stat):.1f} ms {stat} is the "
                  "emulator's speed, not a board latency")
        say(t, f"bench {variant.name}: {reason}")
        return Step(variant.name, macs, action, model=str(model_path), reason=reason)
    latency = record.stat_ms(stat)
    if action == "reused":
        say(t, f"bench {variant.name}: {latency:.2f} ms {stat} (already measured)")
        return Step(variant.name, macs, action, latency_ms=latency, model=str(model_path),
                    reason="measured in an earlier run")
    say(t, f"bench {variant.name}: {latency:.2f} ms {stat} over {record.runs} runs ({t.bench.label()})")
    return Step(variant.name, macs, action, latency_ms=latency, model=str(model_path))


def _decide_on(run: _Run, t: _Target, order: list[Variant]) -> DeviceOutcome:
    """The target's decision: accuracy measured, too-close candidates measured again, --refine tried."""
    params = run.params
    mine = usable_bench(run.of(t.name), emulated=True)
    emulated = bool(mine) and all(r.emulated for r in mine)
    outcome = DeviceOutcome(t.name, t.device.where, t.threads, (), emulated=emulated)
    if emulated:
        run.log(f"{t.name}: emulated device: its latencies are the emulator's, not the board's, so no variant is "
                "picked; the models ran on its ARM code (results.jsonl)")
    elif usable_bench(run.of(t.name)):
        _measure_accuracy(run, t.every_model or t.models)
        decision = _decide(run, t)
        if decision is not None and params.remeasure_rounds > 0 and _remeasure(run, t, decision):
            decision = _decide(run, t)
        suggestion = None
        if params.refine and decision is not None and decision.pick is not None:
            suggestion = _refine(run, t, decision, order)
            if suggestion is not None and suggestion.get("measured_ms") is not None:
                _measure_accuracy(run, t.models)
                decision = _decide(run, t)
        alternatives: tuple = ()
        if decision is not None and decision.pick is None and params.alternatives:
            alternatives = tuple(_alternatives(run, t, decision))
        outcome = replace(outcome, decision=decision, suggestion=suggestion, alternatives=alternatives)
    return replace(outcome, steps=tuple(t.steps))


def _decide(run: _Run, t: _Target):
    """The one place the sweep picks: :func:`edgenet.decide.decision.decide` on the target's records."""
    from ..decide.decision import decide

    p = run.params
    try:
        return decide(run.of(t.name), stat=p.stat, objective=p.objective, threads=t.threads,
                      constraints=t.constraints or p.constraints)
    except EdgenetError as exc:
        run.log(f"{t.name}: decision: {exc}")
        return None


def _remeasure(run: _Run, t: _Target, decision) -> bool:
    """Measure each candidate too close to call again, interleaved with its neighbour (A-B-A-B), pool
    each model's rounds into one record and append it; True when anything was measured again."""
    from ..bench.result import LatencyStats
    from ..decide.remeasure import plan_remeasure, pooled_record

    def stats(samples):
        return asdict(LatencyStats.from_samples(samples))

    params = run.params
    plans = plan_remeasure(decision, list(t.models))
    for plan in plans:
        pattern = "-".join(["-".join(plan.order)] * params.remeasure_rounds)
        run.log(f"{plan.target}: {params.stat} interval {plan.before} straddles the {params.budget_ms:g} ms budget "
                f"on {t.name}; measuring it again interleaved with "
                f"{plan.neighbour or 'nothing (no neighbour measured)'} ({pattern})")
        rounds: dict[str, list[dict]] = {label: [] for label in plan.order}
        for _ in range(params.remeasure_rounds):
            for label in plan.order:
                rounds[label] += run.bench_now(t, t.models[label][1])[-1:]
        pooled = [pooled_record(rounds[label], stats) for label in plan.order]
        run.add(pooled)
        for label, record in zip(plan.order, pooled, strict=True):
            variant, path = t.models[label]
            step = _step(variant, path, as_record(record), "remeasured", params.stat, lambda _t, m: run.log(m), t)
            if step.action == "remeasured" and step.latency_ms is not None:
                why = (f"interval {plan.before} straddled the budget: measured again {pattern}, "
                       f"{record['runs']} runs pooled" if label == plan.target
                       else f"neighbour of {plan.target}, measured in alternation with it ({pattern})")
                step = replace(step, reason=why)
            t.steps.append(step)
    return bool(plans)


def _measure_accuracy(run: _Run, models: dict[str, tuple[Variant, Path]]) -> None:
    """Eval records for every converted model: top-1 on ``params.data``, agreement on
    ``params.agreement_images``; models already evaluated on the same images are skipped."""
    from ..decide.accuracy import agreement_record, already_evaluated, evaluate_model

    params = run.params
    if params.data is None and params.agreement_images is None:
        return
    if params.weights_dir is None and params.weights is None:
        run.log("accuracy: no --weights-dir or --weights, the models have random weights: their accuracy is "
                "meaningless")
    for key, (variant, path) in models.items():
        label, form = key if isinstance(key, tuple) else (key, params.forms[0])
        sha = sha256_file(path)
        if params.data is not None and not already_evaluated(run.records, sha, str(params.data), "top1"):
            record = evaluate_model(path, params.data, params.bench.threads, params.labels, run.log)
            acc = record["accuracy"]
            run.log(f"eval {label}: top-1 {100 * acc['top1']:.1f}% on {acc['count']} images")
            run.add([record])
        if params.agreement_images is None:
            continue
        if form in ("fp32", "float32"):
            run.log(f"agreement {label}: the model is float already, nothing to compare")
            continue
        if already_evaluated(run.records, sha, str(params.agreement_images), "agreement_top1"):
            continue
        result = run.convert(variant, quant="fp32", out_dir=run.models_dir / "float")
        if not result.ok:
            continue
        record = agreement_record(path, Path(result.model_path), params.agreement_images, params.bench.threads)
        run.log(f"agreement {label}: {100 * record['accuracy']['agreement_top1']:.1f}% top-1 agreement with its "
                f"float model on {record['accuracy']['count']} images")
        run.add([record])


def _device_constraints(params: SweepParams, device: Device):
    """The sweep's constraints with the device's own (its ``constraints`` table in devices.toml) taking precedence;
    a bad table is one line naming the device."""
    own = dict(getattr(device, "constraints", None) or {})
    if not own:
        return params.constraints
    from ..decide.constraints import ConstraintError

    try:
        return params.constraints.overlay(own, f"devices.toml [{device.name}] constraints")
    except ConstraintError as exc:
        raise EdgenetError(str(exc)) from None


def _alternatives(run: _Run, t: _Target, decision) -> list:
    """Nothing fits on ``t``: measure what would (:mod:`edgenet.decide.alternatives`) on the same device, into
    ``alternatives.jsonl`` (a measured alternative is reused on a rerun, a failed one tried again)."""
    from ..bench.tune import ENGINES, available_engines, engine_of
    from ..decide.alternatives import Alternative, assess, predicted, propose

    params = run.params
    mine = usable_bench(run.of(t.name))
    cores = max((r.device.cores or 1 for r in mine), default=1)
    counts = set(t.device.threads) if len(t.device.threads) > 1 else \
        {n for n in (1, 2, 4, 8, 16, 32, 64) if n <= cores} | {cores}
    engines = {name: ENGINES[name] for name in available_engines(ynnpack=True) if name in ALTERNATIVE_ENGINES}
    proposals = propose(decision, threads=t.threads, thread_counts=sorted(counts), engines=engines,
                        current_engine=ENGINES.get(engine_of(t.bench)), edgetpu=t.bench.delegate == "edgetpu")
    if proposals:
        run.log(f"{t.name}: nothing fits: measuring {len(proposals)} alternative(s) for "
                f"{', '.join(dict.fromkeys(p.of for p in proposals))}")
    path = run.rundir / ALTERNATIVES_NAME
    constraints = t.constraints or params.constraints
    latency = {a.key: a.candidate.latency_ms for a in decision.assessments}
    found = []
    for p in proposals:
        bench = replace(t.bench, **p.bench)
        note, measured = "", []
        try:
            variant = parse_variant(p.variant)
            result = run.convert(variant, quant=p.quant)
            if not result.ok:
                note = f"conversion failed: {result.error}"
            else:
                model = Path(result.model_path)
                earlier = read_records(path) if path.exists() else []
                done = earlier_measurement(earlier, t.name, sha256_file(model), bench)
                if done is None:
                    new = run.executor.submit_latency(t.device, [model], [bench.threads], bench).result()
                    append_records(path, new)
                    done = as_record(new[-1])
                measured = [done.raw]
        except EdgenetError as exc:
            note = str(exc)
        alt = assess(p, measured, run.of(t.name), constraints, params.stat, reference_ms=latency.get(p.of))
        if alt.how == "failed":
            alt = predicted(p, run.of(t.name), constraints, params.stat, threads=t.threads) or \
                Alternative(p, "failed", "", note=note or alt.note)
        run.log(alt.line(params.stat))
        found.append(alt)
    return found


def _refine(run: _Run, t: _Target, decision, order: list[Variant]) -> dict | None:
    """Try the largest custom phi between the pick and the next larger variant on ``t``; returns what was
    tried (predicted and measured, and whether it fits)."""
    from ..decide.latency_model import LatencyModel, suggest_custom_phi

    params = run.params
    pick = decision.pick.candidate.variant
    position = next((i for i, v in enumerate(order) if v.label == pick), None)
    if position is None or position + 1 >= len(order):
        return None
    hi = order[position + 1]
    try:
        model = LatencyModel.fit(run.of(t.name), stat=params.stat, threads=t.threads)
        suggestion = suggest_custom_phi(model, params.budget_ms, pick, hi.label)
    except EdgenetError as exc:
        run.log(f"{t.name}: refine: {exc}")
        return None
    if suggestion is None:
        run.log(f"{t.name}: refine: no custom phi between {pick} and {hi.name} is predicted to fit the budget")
        return None
    run.log(f"{t.name}: refine: trying {suggestion.spec} (predicted {suggestion.predicted_ms:.1f} ms) between "
            f"{pick} and {hi.name}")
    variant = parse_variant(suggestion.spec)
    result = run.convert(variant)
    measured = None
    if result.ok:
        path = Path(result.model_path)
        done, action = earlier_measurement(run.records, t.name, sha256_file(path), t.bench), "reused"
        if done is None:
            new = run.bench_now(t, path)
            run.add(new)
            done, action = as_record(new[-1]), "measured"
        step = _step(variant, path, done, action, params.stat, lambda _t, m: run.log(m), t)
        t.steps.append(step)
        if step.latency_ms is not None:
            measured = step.latency_ms
            t.models[variant.label] = (variant, path)
    else:
        t.steps.append(Step(variant.name, architecture(variant).macs, "failed",
                            reason=f"conversion failed: {result.error}"))
    return dict(suggestion.to_dict(), measured_ms=measured,
                fits=measured is not None and measured <= params.budget_ms)


def _finish(run: _Run, outcomes: list[DeviceOutcome]) -> SweepOutcome:
    """Reports (one per target; a summary beside them for several) and sweep.json, written last."""
    from ..decide.report import write_report

    params, rundir = run.params, run.rundir
    written = []
    for d in outcomes:
        report = None
        if d.decision is not None:
            folder = rundir if len(outcomes) == 1 else rundir / "devices" / d.device
            report = write_report(folder, run.of(d.device), None, params.budget_ms, stat=params.stat, decision=d.decision,
                                  notes=scope_notes(run.order, d.decision), alternatives=d.alternatives)
        written.append(replace(d, report=report))
    outcome = SweepOutcome(tuple(written), rundir, None, tuple(getattr(run.executor, "timeline", ())))
    if len(written) == 1:
        outcome = replace(outcome, report=written[0].report)
    else:
        outcome = replace(outcome, report=atomic_write_text(rundir / "REPORT.md", _summary_markdown(outcome, params)))
    text = json.dumps(outcome.to_dict(params, run.executor.name), indent=2, default=str)
    atomic_write_text(rundir / SWEEP_NAME, text)
    return outcome


def scope_notes(order: Sequence[Variant], decision) -> list[str]:
    """What the report must say about the sweep's own scope: a pick that is the largest variant the
    sweep was given fits, but nothing says a larger one would not have."""
    pick = decision.pick.candidate.variant if decision is not None and decision.pick is not None else None
    if pick is None or not order or pick not in (order[-1].label, order[-1].name):
        return []
    return [f"{order[-1].name} is the largest of the variants this sweep considered "
            f"({', '.join(v.name for v in order)}): it fits, and larger variants were not tried; "
            "widen --variants to try them"]


def describe(steps: Sequence[Step]) -> list[dict]:
    """Rows for the console table of one target's steps."""
    return [
        {"variant": s.variant, "MACs": f"{s.macs / 1e9:.3f}B", "action": s.action,
         "latency_ms": "" if s.latency_ms is None else f"{s.latency_ms:.2f}",
         "predicted_ms": "" if s.predicted_ms is None else f"{s.predicted_ms:.1f}", "why": s.reason}
        for s in steps
    ]


def summary_rows(outcome: SweepOutcome, budget_ms: float) -> list[dict]:
    """The picks side by side: one row per target."""
    rows = []
    for d in outcome.devices:
        pick = d.pick
        rows.append({
            "device": d.device, "where": d.where, "threads": d.threads,
            "pick": pick.variant if pick else ("emulated: none" if d.emulated else "none fits"),
            "latency_ms": f"{pick.latency_ms:.2f}" if pick else "",
            "margin_ms": f"{budget_ms - pick.latency_ms:.2f}" if pick else "",
            "measured": sum(1 for s in d.steps if s.action in ("measured", "reused")),
            "failed": sum(1 for s in d.steps if s.action == "failed"),
        })
    return rows


def _summary_markdown(outcome: SweepOutcome, params: SweepParams) -> str:
    rows = summary_rows(outcome, params.budget_ms)
    titles = {"device": "device", "where": "reached as", "threads": "threads", "pick": "pick",
              "latency_ms": f"{params.stat} ms", "margin_ms": "margin ms", "measured": "measured", "failed": "failed"}
    lines = ["# edgenet sweep report", "", f"Budget: **{params.budget_ms:g} ms** at {params.stat}, "
             f"{params.quant}, variants {', '.join(v.spec or v.name for v in params.variants)}.", "",
             "## Picks", "", "| " + " | ".join(titles.values()) + " |", "|" + "---|" * len(titles)]
    lines += ["| " + " | ".join(str(r[k]) for k in titles) + " |" for r in rows]
    lines.append("")
    for d in outcome.devices:
        lines += [f"## {d.device}", "", f"{d.where}, {d.threads} thread(s)."]
        if d.decision is not None:
            lines.append(f"Decision: {d.decision.message}.")
        lines += ["", "| variant | action | latency ms | why |", "|---|---|---|---|"]
        lines += [f"| {s.variant} | {s.action} | {'' if s.latency_ms is None else f'{s.latency_ms:.2f}'} | "
                  f"{s.reason.replace('|', '/')} |" for s in d.steps]
        lines.append("")
        if d.report is not None:
            folder = f"devices/{d.device}"
            lines += [f"![{d.device}: latency vs MACs]({folder}/latency_vs_macs.png)", "",
                      f"Full report: [{folder}/REPORT.md]({folder}/REPORT.md)", ""]
    return "\n".join(lines)
