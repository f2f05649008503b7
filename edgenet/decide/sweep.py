"""The main job: convert, benchmark and select in one resumable run.

``sweep`` works through the variants in increasing multiply-adds. Latency grows with the
variant, so it stops converting as soon as a measured variant is over the budget, and it
skips a variant whose latency, predicted from those already measured, is far above the
budget (``far_factor`` times it). Every skip is recorded with its reason.

The run folder is always consistent, so an interrupted run continues where it stopped:

* ``RUNDIR/models/`` -- the converted models with their manifests (written atomically;
  :func:`edgenet.convert.api.convert_variants` skips a model whose inputs have not changed);
* ``RUNDIR/results.jsonl`` -- one bench record per measured model (``edgenet.result/1``),
  rewritten atomically after each measurement; a model whose sha256 and settings are
  already there is not measured again;
* ``RUNDIR/sweep.json`` -- the plan, every decision and the selection, written last;
* ``RUNDIR/REPORT.md`` and its pictures (:mod:`edgenet.decide.report`).

The pick is made by :func:`edgenet.decide.decision.decide`: a candidate is picked only when its
latency interval lies within the budget. A candidate that is too close to call is measured again,
interleaved with its neighbour (:mod:`edgenet.decide.remeasure`), before deciding. With ``data``
(labelled) or ``agreement_images`` (unlabelled) each converted model's accuracy or agreement with
its float model is measured (:mod:`edgenet.decide.accuracy`) and the objective can be accuracy.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ..bench import BenchParams
from ..errors import EdgenetError
from ..family.architecture import architecture
from ..family.variants import Variant, parse_variant
from ..fsutil import atomic_write_text, sha256_file, write_error
from ..results import BenchRecord, append_records, as_record, read_records, usable_bench
from .constraints import Constraints

#: A sweep measures many models: shorter than `edgenet bench`'s defaults, still >= 30 runs per model.
SWEEP_BENCH = BenchParams(warmup_s=0.5, min_runs=30, min_s=1.5, max_s=20.0)
RESULTS_NAME = "results.jsonl"
SWEEP_NAME = "sweep.json"
#: What was measured as an alternative when nothing fits: other settings and forms, kept apart from the
#: candidates' results.jsonl (whose records are one setting, the one the pick is made on).
ALTERNATIVES_NAME = "alternatives.jsonl"
WEIGHT_SUFFIXES = (".weights.h5", ".h5", ".pth", ".pt", ".bin", ".safetensors", ".npz")


@dataclass(frozen=True)
class SweepParams:
    """Everything that defines a sweep (frozen: derive variations with ``dataclasses.replace``)."""

    budget_ms: float
    variants: tuple[Variant, ...]
    quant: str = "int8"  # one form, or several ("int8,fp16,fp32"): each measured, the pick made across them
    stat: str = "p50"
    threads: int = 1  # the one thread count: ``bench.threads`` is set from it
    calib: str = "default"
    # Latency does not depend on calibration, and the embedded set has 8 real photos (more samples are
    # augmentations of them), so the sweep calibrates on 32; re-convert the pick on your own images.
    samples: int = 32
    seed: int = 0
    weights_dir: Path | None = None
    weights: str | None = None  # "imagenet": each variant's published weights (custom specs stay random)
    remote: str | None = None
    min_top1: float | None = None
    far_factor: float = 1.5  # skip a conversion predicted above far_factor * budget
    refine: bool = False  # try a custom phi between the pick and the next variant
    objective: str | None = None  # "largest" | "accuracy"; None: accuracy when measured for every contender
    remeasure_rounds: int = 2  # A-B rounds for a candidate too close to call; 0 turns the rule off
    data: Path | None = None  # labelled images: measure each converted model's top-1
    labels: Path | None = None  # class-name -> index file for a class-folder data set
    agreement_images: Path | None = None  # unlabelled images: top-1 agreement with the float model
    bench: BenchParams = field(default_factory=lambda: SWEEP_BENCH)
    #: Every limit the pick is held to (decide/constraints.py); None: the budget and min_top1 alone.
    constraints: Constraints | None = None
    alternatives: bool = True  # when nothing fits: measure what would (decide/alternatives.py)

    @property
    def forms(self) -> tuple[str, ...]:
        """The quantization forms measured, in the order given."""
        return tuple(q.strip() for q in self.quant.split(",") if q.strip())

    def __post_init__(self):
        if self.constraints is None:
            object.__setattr__(self, "constraints", Constraints(budget_ms=self.budget_ms, min_top1=self.min_top1))
        elif (self.constraints.budget_ms, self.constraints.min_top1) != (self.budget_ms, self.min_top1):
            raise EdgenetError("the sweep's constraints must carry its budget_ms and min_top1")
        if not (self.budget_ms > 0 and math.isfinite(self.budget_ms)):
            raise EdgenetError(f"--budget-ms must be a positive number, got {self.budget_ms:g}")
        if not self.variants:
            raise EdgenetError("no variants to sweep")
        if self.far_factor < 1:
            raise EdgenetError(f"far_factor must be >= 1, got {self.far_factor:g}")
        if self.bench.threads != self.threads:  # one thread count: the sweep's
            object.__setattr__(self, "bench", replace(self.bench, threads=self.threads))
        if self.objective not in (None, "largest", "accuracy"):
            raise EdgenetError(f"unknown objective {self.objective!r}; choose from largest, accuracy")
        if self.objective == "accuracy" and self.data is None:
            raise EdgenetError("--objective accuracy needs --data DIR|FILE (labelled images) to measure top-1")
        if self.remeasure_rounds < 0:
            raise EdgenetError(f"remeasure_rounds must be >= 0, got {self.remeasure_rounds}")
        from ..convert.modes import QUANT_MODES

        unknown = [q for q in self.forms if q not in QUANT_MODES]
        if not self.forms or unknown:
            raise EdgenetError(f"--quant: unknown form {(unknown or [self.quant])[0]!r}; choose from "
                               f"{', '.join(QUANT_MODES)} (several as int8,fp16,fp32)")
        if len(set(self.forms)) != len(self.forms):
            raise EdgenetError(f"--quant: a form is repeated in {self.quant!r}")
        if self.bench.delegate == "edgetpu" and any(q != "int8" for q in self.forms):
            raise EdgenetError("--quant: an Edge TPU runs full-integer models only; use --quant int8")


@dataclass(frozen=True)
class Step:
    """What the sweep did with one variant."""

    variant: str
    macs: int
    action: str  # "measured" | "reused" | "skipped" | "failed" | "remeasured"
    latency_ms: float | None = None
    predicted_ms: float | None = None
    model: str | None = None
    reason: str = ""
    quant: str = ""  # the quantization form measured


@dataclass(frozen=True)
class SweepOutcome:
    steps: tuple[Step, ...]
    selection: object | None  # edgenet.decide.select.Selection
    report: Path | None
    rundir: Path
    suggestion: dict | None = None
    decision: object | None = None  # edgenet.decide.decision.Decision: what to deploy
    emulated: bool = False  # measured on an emulated device: nothing is picked on its latencies
    alternatives: tuple = ()  # edgenet.decide.alternatives.Alternative: when nothing fits, what would

    def to_dict(self) -> dict:
        return {
            "rundir": str(self.rundir),
            "emulated": self.emulated,
            "steps": [asdict(s) for s in self.steps],
            "decision": self.decision.to_dict() if self.decision is not None else None,
            "selection": self.selection.to_dict() if self.selection is not None else None,
            "suggestion": self.suggestion,
            "alternatives": [a.to_dict() for a in self.alternatives],
            "report": str(self.report) if self.report else None,
        }


def _weights_for(variant: Variant, weights_dir: Path | None, weights: str | None = None) -> Path | None:
    """``DIR/<variant>.weights.h5`` (or .pth, .safetensors, ...) when present; or the published weights."""
    if weights == "imagenet":
        from ..weights.fetch import resolve_path
        from ..weights.registry import REGISTRY

        return resolve_path(variant) if variant.name in REGISTRY else None
    if weights_dir is None:
        return None
    for suffix in WEIGHT_SUFFIXES:
        candidate = Path(weights_dir) / f"{variant.name}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def _device_label(params) -> str:
    """Who measures: the ``--remote`` device's name (the host as given, or a device file's name), or this
    machine's hostname (the records' device label)."""
    import socket

    if params.remote:
        from ..devices import resolve_device

        return resolve_device(params.remote).name
    return socket.gethostname()


def _matches(record: BenchRecord, sha256: str, bench: BenchParams, device_label: str) -> bool:
    """A successful earlier measurement of this very model file under this setting, on this device."""
    return (
        record.measured
        and record.on_device(device_label)
        and record.model.sha256 == sha256
        and record.threads == bench.threads
        and (record.xnnpack is not False) == bench.xnnpack
        and (record.delegate_setting or "cpu") == bench.delegate
        # runtime settings from `edgenet tune` (absent in older records: the defaults)
        and record.api == bench.api
        and record.xnnpack_latest == bench.xnnpack_latest
        and record.xnnpack_weight_cache == bench.xnnpack_weight_cache
        and record.ynnpack == bench.ynnpack
    )


def _predict(measured: list[tuple[Variant, float]], variant: Variant, records: list[dict], params) -> float | None:
    """Latency of ``variant`` from those measured so far: the latency model from 3 points on,
    a power law in MACs from 2 (latency ~ k * MACs^e), nothing from fewer."""
    if len(measured) >= 3:
        from .latency_model import LatencyModel

        with contextlib.suppress(EdgenetError):  # e.g. mixed families: fall back to the two-point power law
            return LatencyModel.fit(records, stat=params.stat, threads=params.threads).predict(variant)
    if len(measured) >= 2:
        (va, la), (vb, lb) = measured[-2], measured[-1]
        ma, mb = architecture(va).macs, architecture(vb).macs
        if ma == mb or la <= 0 or lb <= 0:
            return None
        exponent = math.log(lb / la) / math.log(mb / ma)
        return lb * (architecture(variant).macs / mb) ** max(exponent, 0.0)
    return None


@dataclass(frozen=True)
class _Run:
    """One sweep in progress: what it was asked and where it writes (passed instead of long argument lists)."""

    params: SweepParams
    rundir: Path
    log: Callable[[str], None]
    progress: bool

    @property
    def models_dir(self) -> Path:
        return self.rundir / "models"

    @property
    def results_path(self) -> Path:
        return self.rundir / RESULTS_NAME

    def records(self) -> list[dict]:
        return read_records(self.results_path) if self.results_path.exists() else []

    def select(self, records: list[dict]):
        from .select import select

        p = self.params
        return select(records, p.budget_ms, stat=p.stat, min_top1=p.min_top1, threads=p.threads)


def run_sweep(
    params: SweepParams,
    rundir: str | Path,
    *,
    log: Callable[[str], None] = lambda _msg: None,
    progress: bool = True,
) -> SweepOutcome:
    """Convert, benchmark and select (see the module docstring)."""
    from .report import write_report

    judged = params.bench.for_stat(params.stat)  # enough runs for both ends of the percentile's interval
    if judged is not params.bench:
        log(f"measuring at least {judged.min_runs} runs per model within {judged.max_s:g} s: fewer cannot bound "
            f"{params.stat}")
        params = replace(params, bench=judged)
    run = _Run(params, Path(rundir), log, progress)
    try:
        run.rundir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(run.rundir, exc) from None
    records = run.records()

    order = sorted(params.variants, key=lambda v: (architecture(v).macs, v.name))
    models: dict[str, tuple[Variant, Path]] = {}  # label -> converted and measured model of the first form
    every_model: dict[tuple[str, str], tuple[Variant, Path]] = {}  # (label, form) -> every measured model
    steps: list[Step] = []
    for form in params.forms:  # each quantization form walks the sizes on its own (its latencies differ)
        measured: list[tuple[Variant, float]] = []
        stop_reason: str | None = None
        for variant in order:
            macs = architecture(variant).macs
            if stop_reason:
                steps.append(Step(variant.name, macs, "skipped", reason=stop_reason, quant=form))
                log(f"skip {variant.name} ({form}): {stop_reason}")
                continue
            mine = [r for r in records if (r.get("model") or {}).get("quant") in (form, None)]
            predicted = _predict(measured, variant, mine, params)
            if predicted is not None and predicted > params.far_factor * params.budget_ms:
                reason = (f"predicted {predicted:.1f} ms from {len(measured)} measured variants, "
                          f"{predicted / params.budget_ms:.1f}x the budget")
                steps.append(Step(variant.name, macs, "skipped", predicted_ms=predicted, reason=reason, quant=form))
                log(f"skip {variant.name} ({form}): {reason}")
                stop_reason = f"larger than {variant.name}, which is predicted far over budget"
                continue
            step = replace(_convert_and_measure(run, variant, form), predicted_ms=predicted)
            if step.latency_ms is not None:
                verdict = ("within budget" if step.latency_ms <= params.budget_ms
                           else f"over budget by {step.latency_ms - params.budget_ms:.1f} ms")
                step = replace(step, reason=f"{step.reason}; {verdict}" if step.reason else verdict)
            steps.append(step)
            records = run.records()
            if step.latency_ms is None:
                continue
            if form == params.forms[0]:
                models[variant.label] = (variant, Path(step.model))
            every_model[(variant.label, form)] = (variant, Path(step.model))
            measured.append((variant, step.latency_ms))
            if step.latency_ms > params.budget_ms:
                stop_reason = f"larger than {variant.name}, which measured {step.latency_ms:.1f} ms > budget"

    selection = None
    suggestion = None
    decision = None
    measured_here = usable_bench(records, emulated=True)
    emulated = bool(measured_here) and all(r.emulated for r in measured_here)
    if emulated:
        log("emulated device: its latencies are the emulator's, not the board's, so no variant is picked; "
            "the models ran on its ARM code (results.jsonl)")
    elif usable_bench(records):
        records = _measure_accuracy(run, every_model, records)
        decision = _decide(run, records)
        if decision is not None and params.remeasure_rounds > 0:
            steps_added, records = _remeasure(run, decision, models, records)
            steps += steps_added
            if steps_added:
                decision = _decide(run, records)
        try:
            selection = run.select(records)
        except EdgenetError as exc:
            log(f"selection: {exc}")
        if params.refine and selection is not None and selection.pick is not None:
            suggestion, records, selection = _refine(run, selection, order, records)
            if suggestion is not None and suggestion.get("measured_ms") is not None:
                spec = parse_variant(suggestion["spec"])
                form = selection.pick.quant or params.forms[0]
                path = run.models_dir / f"{spec.name}-{form}.tflite"
                if path.is_file():
                    every_model[(spec.label, form)] = (spec, path)
                records = _measure_accuracy(run, every_model, records)
                decision = _decide(run, records)
    alternatives: tuple = ()
    if decision is not None and decision.pick is None and params.alternatives:
        alternatives = tuple(_alternatives(run, decision, records))
    report = None
    if selection is not None:
        report = write_report(run.rundir, records, selection, params.budget_ms, stat=params.stat, decision=decision,
                              notes=_scope_notes(order, decision), alternatives=alternatives)
    outcome = SweepOutcome(tuple(steps), selection, report, run.rundir, suggestion, decision, emulated, alternatives)
    atomic_write_text(run.rundir / SWEEP_NAME, _json(outcome, params))
    return outcome


def _scope_notes(order: list[Variant], decision) -> list[str]:
    """What the report must say about the sweep's own scope: a pick that is the largest variant the
    sweep was given fits, but nothing says a larger one would not have."""
    pick = decision.pick.candidate.variant if decision is not None and decision.pick is not None else None
    if pick is None or not order or pick not in (order[-1].label, order[-1].name):
        return []
    return [f"{order[-1].name} is the largest of the variants this sweep considered "
            f"({', '.join(v.name for v in order)}): it fits, and larger variants were not tried; "
            "widen --variants to try them"]


def _decide(run: _Run, records: list[dict]):
    from .decision import decide

    p = run.params
    try:
        return decide(records, stat=p.stat, objective=p.objective, threads=p.threads, constraints=p.constraints)
    except EdgenetError as exc:
        run.log(f"decision: {exc}")
        return None


def _bench_once(run: _Run, model_path: Path) -> dict:
    from ..bench.runner import run_settings

    params = run.params
    if params.remote:
        from ..bench.remote import run_remote

        return run_remote(params.remote, [model_path], [params.threads], params.bench)[-1]
    return run_settings([model_path], [params.bench])[-1].to_record()


def _remeasure(run: _Run, decision, models: dict, records: list[dict]):
    """Measure each candidate too close to call again, interleaved with its neighbour (A-B-A-B),
    pool each model's rounds into one record and append it; returns the new steps and records."""
    from ..bench.result import LatencyStats
    from .remeasure import plan_remeasure, pooled_record

    def stats(samples):
        return asdict(LatencyStats.from_samples(samples))

    params = run.params
    steps = []
    for plan in plan_remeasure(decision, list(models)):
        order = plan.order
        pattern = "-".join(["-".join(order)] * params.remeasure_rounds)
        run.log(f"{plan.target}: {params.stat} interval {plan.before} straddles the {params.budget_ms:g} ms budget; "
                f"measuring it again interleaved with {plan.neighbour or 'nothing (no neighbour measured)'} "
                f"({pattern})")
        rounds: dict[str, list[dict]] = {label: [] for label in order}
        for _ in range(params.remeasure_rounds):
            for label in order:
                rounds[label].append(_bench_once(run, models[label][1]))
        pooled = [pooled_record(rounds[label], stats) for label in order]
        append_records(run.results_path, pooled)
        records = run.records()
        for label, record in zip(order, pooled, strict=True):
            variant = models[label][0]
            if record.get("error"):
                steps.append(Step(variant.name, architecture(variant).macs, "failed", model=str(models[label][1]),
                                  reason=f"re-measurement failed: {record['error']}"))
                continue
            latency = record["latency_ms"][params.stat]
            if label == plan.target:
                why = (f"interval {plan.before} straddled the budget: measured again {pattern}, "
                       f"{record['runs']} runs pooled")
            else:
                why = f"neighbour of {plan.target}, measured in alternation with it ({pattern})"
            steps.append(Step(variant.name, architecture(variant).macs, "remeasured", latency_ms=latency,
                              model=str(models[label][1]), reason=why))
            run.log(f"bench {label}: {latency:.2f} ms {params.stat} over {record['runs']} interleaved runs")
    return steps, records


def _measure_accuracy(run: _Run, models: dict, records: list[dict]) -> list[dict]:
    """Eval records for every converted model: top-1 on ``params.data``, agreement on
    ``params.agreement_images``; models already evaluated on the same images are skipped."""
    from ..convert.api import ConvertRequest, convert_variants
    from .accuracy import agreement_record, already_evaluated, evaluate_model

    params = run.params
    if params.data is None and params.agreement_images is None:
        return records
    if params.weights_dir is None:
        run.log("accuracy: no --weights-dir, the models have random weights: their accuracy is meaningless")
    new = []
    for (label, form), (variant, path) in models.items():
        sha = sha256_file(path)
        if params.data is not None and not already_evaluated(records, sha, str(params.data), "top1"):
            record = evaluate_model(path, params.data, params.threads, params.labels, run.log)
            acc = record["accuracy"]
            run.log(f"eval {label}: top-1 {100 * acc['top1']:.1f}% on {acc['count']} images")
            new.append(record)
        if params.agreement_images is None:
            continue
        if form in ("fp32", "float32"):
            run.log(f"agreement {label}: the model is float already, nothing to compare")
            continue
        if already_evaluated(records, sha, str(params.agreement_images), "agreement_top1"):
            continue
        options = ConvertRequest(quant="fp32", weights=_weights_for(variant, params.weights_dir, params.weights),
                                 calib=params.calib,
                                 samples=params.samples, seed=params.seed, out_dir=run.models_dir / "float",
                                 progress=run.progress)
        (result,) = convert_variants([variant], options)
        if not result.ok:
            run.log(f"agreement {label}: float conversion failed: {result.error}")
            continue
        record = agreement_record(path, Path(result.model_path), params.agreement_images, params.threads)
        run.log(f"agreement {label}: {100 * record['accuracy']['agreement_top1']:.1f}% top-1 agreement with its "
                f"float model on {record['accuracy']['count']} images")
        new.append(record)
    if new:
        append_records(run.results_path, new)
        records = run.records()
    return records


def _convert_and_measure(run: _Run, variant: Variant, quant: str | None = None,
                         bench: BenchParams | None = None, results_path: Path | None = None) -> Step:
    """Convert ``variant`` to ``quant`` (the first form by default) and measure it with ``bench`` (the sweep's),
    appending the record to ``results_path`` (the run's results.jsonl) unless an equal measurement is there."""
    from ..bench.runner import run_settings
    from ..convert.api import ConvertRequest, convert_variants

    params = run.params
    macs = architecture(variant).macs
    weights = _weights_for(variant, params.weights_dir, params.weights)
    quant = quant or params.forms[0]
    bench = bench or params.bench
    results_path = results_path or run.results_path
    options = ConvertRequest(quant=quant, weights=weights, calib=params.calib, samples=params.samples,
                             seed=params.seed, out_dir=run.models_dir, progress=run.progress)
    (result,) = convert_variants([variant], options, log=run.log)
    if not result.ok:
        run.log(f"convert {variant.name}: {result.error}")
        return Step(variant.name, macs, "failed", reason=f"conversion failed: {result.error}", quant=quant)
    run.log(f"convert {variant.name} ({quant}): {result.status}")
    model_path = Path(result.model_path)
    sha = sha256_file(model_path)
    earlier = read_records(results_path) if results_path.exists() else []
    for record in reversed(usable_bench(earlier, emulated=True)):
        if _matches(record, sha, bench, _device_label(params)):
            if record.emulated:
                return _emulated_step(variant.name, macs, model_path, record, params.stat, "reused", quant)
            latency = record.stat_ms(params.stat)
            run.log(f"bench {variant.name} ({quant}): {latency:.2f} ms {params.stat} (already measured)")
            return Step(variant.name, macs, "reused", latency_ms=latency, model=str(model_path),
                        reason="measured in an earlier run", quant=quant)
    if params.remote:
        from ..bench.remote import run_remote

        new = run_remote(params.remote, [model_path], [bench.threads], bench, label=_device_label(params))
    else:
        new = [r.to_record() for r in run_settings([model_path], [bench])]
    append_records(results_path, new)
    record = as_record(new[-1])
    if not record.ok:
        run.log(f"bench {variant.name} ({quant}): {record.error}")
        return Step(variant.name, macs, "failed", model=str(model_path), reason=f"benchmark failed: {record.error}",
                    quant=quant)
    if record.emulated:
        step = _emulated_step(variant.name, macs, model_path, record, params.stat, "measured", quant)
        run.log(f"bench {variant.name}: {step.reason}")
        return step
    latency = record.stat_ms(params.stat)
    run.log(f"bench {variant.name} ({quant}): {latency:.2f} ms {params.stat} ({bench.label()})")
    return Step(variant.name, macs, "measured", latency_ms=latency, model=str(model_path), quant=quant)


def _emulated_step(name: str, macs: int, model_path: Path, record: BenchRecord, stat: str, action: str,
                   quant: str = "") -> Step:
    """A step measured on an emulated device: it ran there, but its latency decides nothing (no budget check)."""
    return Step(name, macs, action, model=str(model_path), quant=quant,
                reason=f"ran on an emulated device, {record.emulation}: {record.stat_ms(stat):.1f} ms {stat} is the "
                       "emulator's speed, not a board latency")


#: The engines an alternative may try (of bench.tune.ENGINES; the builtin kernels and the weight cache, which
#: only shortens start-up, are no latency alternative).
ALTERNATIVE_ENGINES = ("interpreter/xnnpack", "interpreter/xnnpack+latest", "compiled/xnnpack", "compiled/ynnpack")


def _alternatives(run: _Run, decision, records: list[dict]) -> list:
    """Nothing fits: measure what would (:mod:`edgenet.decide.alternatives`), into ``alternatives.jsonl``."""
    from ..bench.tune import ENGINES, available_engines, engine_of
    from .alternatives import Alternative, assess, predicted, propose

    params = run.params
    cores = max((r.device.cores or 1 for r in usable_bench(records)), default=1)
    counts = sorted({t for t in (1, 2, 4, 8, 16, 32, 64) if t <= cores} | {cores})
    engines = {name: ENGINES[name] for name in available_engines(ynnpack=True) if name in ALTERNATIVE_ENGINES}
    proposals = propose(decision, threads=params.threads, thread_counts=counts, engines=engines,
                        current_engine=ENGINES.get(engine_of(params.bench)), edgetpu=params.bench.delegate == "edgetpu")
    if proposals:
        run.log(f"nothing fits: measuring {len(proposals)} alternative(s) for "
                f"{', '.join(dict.fromkeys(p.of for p in proposals))}")
    path = run.rundir / ALTERNATIVES_NAME
    latency = {a.key: a.candidate.latency_ms for a in decision.assessments}
    found = []
    for p in proposals:
        bench = replace(params.bench, **p.bench)
        try:
            variant = parse_variant(p.variant)
            step = _convert_and_measure(run, variant, p.quant, bench=bench, results_path=path)
        except EdgenetError as exc:
            step = Step(p.variant, 0, "failed", reason=str(exc))
        measured = []
        if step.model and step.action in ("measured", "reused"):
            sha = sha256_file(step.model)
            measured = [r.raw for r in usable_bench(read_records(path), emulated=True)
                        if _matches(r, sha, bench, _device_label(params))][-1:]
        alt = assess(p, measured, records, params.constraints, params.stat, reference_ms=latency.get(p.of))
        if alt.how == "failed":
            alt = predicted(p, records, params.constraints, params.stat, threads=params.threads) or \
                Alternative(p, "failed", "", note=step.reason or alt.note)
        run.log(alt.line(params.stat))
        found.append(alt)
    return found


def _refine(run: _Run, selection, order: list[Variant], records: list[dict]):
    """Try the largest custom phi between the pick and the next larger variant; keep it if it fits."""
    from .latency_model import LatencyModel, suggest_custom_phi

    params = run.params
    pick = selection.pick.variant
    position = next((i for i, v in enumerate(order) if v.label == pick), None)
    if position is None or position + 1 >= len(order):
        return None, records, selection
    hi = order[position + 1]
    try:
        model = LatencyModel.fit(records, stat=params.stat, threads=params.threads)
        suggestion = suggest_custom_phi(model, params.budget_ms, pick, hi.label)
    except EdgenetError as exc:
        run.log(f"refine: {exc}")
        return None, records, selection
    if suggestion is None:
        run.log(f"refine: no custom phi between {pick} and {hi.name} is predicted to fit the budget")
        return None, records, selection
    run.log(f"refine: trying {suggestion.spec} (predicted {suggestion.predicted_ms:.1f} ms) between {pick} "
            f"and {hi.name}")
    step = _convert_and_measure(run, parse_variant(suggestion.spec), selection.pick.quant)
    records = run.records()
    selection = run.select(records)
    verdict = dict(suggestion.to_dict(), measured_ms=step.latency_ms,
                   fits=step.latency_ms is not None and step.latency_ms <= params.budget_ms)
    return verdict, records, selection


def _json(outcome: SweepOutcome, params: SweepParams) -> str:
    import json

    data = outcome.to_dict()
    data["params"] = {
        "budget_ms": params.budget_ms, "variants": [v.spec or v.name for v in params.variants],
        "quant": params.quant, "stat": params.stat, "threads": params.threads, "calib": params.calib,
        "samples": params.samples, "seed": params.seed,
        "weights_dir": str(params.weights_dir) if params.weights_dir else None, "weights": params.weights,
        "remote": params.remote,
        "min_top1": params.min_top1, "constraints": params.constraints.to_dict(), "far_factor": params.far_factor, "refine": params.refine,
        "objective": params.objective, "remeasure_rounds": params.remeasure_rounds,
        "alternatives": params.alternatives,
        "data": str(params.data) if params.data else None, "labels": str(params.labels) if params.labels else None,
        "agreement_images": str(params.agreement_images) if params.agreement_images else None,
        "bench": params.bench.to_dict(),
    }
    return json.dumps(data, indent=2, default=str)


def describe(steps: Sequence[Step]) -> list[dict]:
    """Rows for the console table."""
    return [
        {"variant": s.variant, "quant": s.quant, "MACs": f"{s.macs / 1e9:.3f}B", "action": s.action,
         "latency_ms": "" if s.latency_ms is None else f"{s.latency_ms:.2f}",
         "predicted_ms": "" if s.predicted_ms is None else f"{s.predicted_ms:.1f}", "why": s.reason}
        for s in steps
    ]
