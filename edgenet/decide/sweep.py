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
from ..fsutil import atomic_write_text, sha256_file
from ..results import BenchRecord, append_records, as_record, read_records, usable_bench

#: A sweep measures many models: shorter than `edgenet bench`'s defaults, still >= 30 runs per model.
SWEEP_BENCH = BenchParams(warmup_s=0.5, min_runs=30, min_s=1.5, max_s=20.0)
RESULTS_NAME = "results.jsonl"
SWEEP_NAME = "sweep.json"
WEIGHT_SUFFIXES = (".weights.h5", ".h5", ".pth", ".pt", ".bin", ".safetensors", ".npz")


@dataclass(frozen=True)
class SweepParams:
    """Everything that defines a sweep (frozen: derive variations with ``dataclasses.replace``)."""

    budget_ms: float
    variants: tuple[Variant, ...]
    quant: str = "int8"
    stat: str = "p50"
    threads: int = 1  # the one thread count: ``bench.threads`` is set from it
    calib: str = "default"
    # Latency does not depend on calibration, and the embedded set has 8 real photos (more samples are
    # augmentations of them), so the sweep calibrates on 32; re-convert the pick on your own images.
    samples: int = 32
    seed: int = 0
    weights_dir: Path | None = None
    remote: str | None = None
    min_top1: float | None = None
    far_factor: float = 1.5  # skip a conversion predicted above far_factor * budget
    refine: bool = False  # try a custom phi between the pick and the next variant
    bench: BenchParams = field(default_factory=lambda: SWEEP_BENCH)

    def __post_init__(self):
        if not (self.budget_ms > 0 and math.isfinite(self.budget_ms)):
            raise EdgenetError(f"--budget-ms must be a positive number, got {self.budget_ms:g}")
        if not self.variants:
            raise EdgenetError("no variants to sweep")
        if self.far_factor < 1:
            raise EdgenetError(f"far_factor must be >= 1, got {self.far_factor:g}")
        if self.bench.threads != self.threads:  # one thread count: the sweep's
            object.__setattr__(self, "bench", replace(self.bench, threads=self.threads))


@dataclass(frozen=True)
class Step:
    """What the sweep did with one variant."""

    variant: str
    macs: int
    action: str  # "measured" | "reused" | "skipped" | "failed"
    latency_ms: float | None = None
    predicted_ms: float | None = None
    model: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class SweepOutcome:
    steps: tuple[Step, ...]
    selection: object | None  # edgenet.decide.select.Selection
    report: Path | None
    rundir: Path
    suggestion: dict | None = None

    def to_dict(self) -> dict:
        return {
            "rundir": str(self.rundir),
            "steps": [asdict(s) for s in self.steps],
            "selection": self.selection.to_dict() if self.selection is not None else None,
            "suggestion": self.suggestion,
            "report": str(self.report) if self.report else None,
        }


def _weights_for(variant: Variant, weights_dir: Path | None) -> Path | None:
    """``DIR/<variant>.weights.h5`` (or .pth, .safetensors, ...) when present."""
    if weights_dir is None:
        return None
    for suffix in WEIGHT_SUFFIXES:
        candidate = Path(weights_dir) / f"{variant.name}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def _matches(record: BenchRecord, sha256: str, bench: BenchParams) -> bool:
    """A successful earlier measurement of this very model file under this setting."""
    return (
        record.usable
        and record.model.sha256 == sha256
        and record.threads == bench.threads
        and (record.xnnpack is not False) == bench.xnnpack
        and (record.delegate_setting or "cpu") == bench.delegate
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

    run = _Run(params, Path(rundir), log, progress)
    run.rundir.mkdir(parents=True, exist_ok=True)
    records = run.records()

    order = sorted(params.variants, key=lambda v: (architecture(v).macs, v.name))
    measured: list[tuple[Variant, float]] = []
    steps: list[Step] = []
    stop_reason: str | None = None
    for variant in order:
        macs = architecture(variant).macs
        if stop_reason:
            steps.append(Step(variant.name, macs, "skipped", reason=stop_reason))
            log(f"skip {variant.name}: {stop_reason}")
            continue
        predicted = _predict(measured, variant, records, params)
        if predicted is not None and predicted > params.far_factor * params.budget_ms:
            reason = (f"predicted {predicted:.1f} ms from {len(measured)} measured variants, "
                      f"{predicted / params.budget_ms:.1f}x the budget")
            steps.append(Step(variant.name, macs, "skipped", predicted_ms=predicted, reason=reason))
            log(f"skip {variant.name}: {reason}")
            stop_reason = f"larger than {variant.name}, which is predicted far over budget"
            continue
        step = replace(_convert_and_measure(run, variant, records), predicted_ms=predicted)
        if step.latency_ms is not None:
            verdict = ("within budget" if step.latency_ms <= params.budget_ms
                       else f"over budget by {step.latency_ms - params.budget_ms:.1f} ms")
            step = replace(step, reason=f"{step.reason}; {verdict}" if step.reason else verdict)
        steps.append(step)
        records = run.records()
        if step.latency_ms is None:
            continue
        measured.append((variant, step.latency_ms))
        if step.latency_ms > params.budget_ms:
            stop_reason = f"larger than {variant.name}, which measured {step.latency_ms:.1f} ms > budget"

    selection = None
    suggestion = None
    if usable_bench(records):
        try:
            selection = run.select(records)
        except EdgenetError as exc:
            log(f"selection: {exc}")
        if params.refine and selection is not None and selection.pick is not None:
            suggestion, records, selection = _refine(run, selection, order, records)
    report = None
    if selection is not None:
        report = write_report(run.rundir, records, selection, params.budget_ms, stat=params.stat)
    outcome = SweepOutcome(tuple(steps), selection, report, run.rundir, suggestion)
    atomic_write_text(run.rundir / SWEEP_NAME, _json(outcome, params))
    return outcome


def _convert_and_measure(run: _Run, variant: Variant, records: list[dict]) -> Step:
    from ..bench.runner import run_settings
    from ..convert.api import ConvertOptions, convert_variants

    params = run.params
    macs = architecture(variant).macs
    weights = _weights_for(variant, params.weights_dir)
    options = ConvertOptions(quant=params.quant, weights=weights, calib=params.calib, samples=params.samples,
                             seed=params.seed, out_dir=run.models_dir, progress=run.progress)
    (result,) = convert_variants([variant], options)
    if not result.ok:
        run.log(f"convert {variant.name}: {result.error}")
        return Step(variant.name, macs, "failed", reason=f"conversion failed: {result.error}")
    run.log(f"convert {variant.name}: {result.status}")
    model_path = Path(result.model_path)
    sha = sha256_file(model_path)
    for record in reversed(usable_bench(records)):
        if _matches(record, sha, params.bench):
            latency = record.stat_ms(params.stat)
            run.log(f"bench {variant.name}: {latency:.2f} ms {params.stat} (already measured)")
            return Step(variant.name, macs, "reused", latency_ms=latency, model=str(model_path),
                        reason="measured in an earlier run")
    if params.remote:
        from ..bench.remote import run_remote

        new = run_remote(params.remote, [model_path], [params.threads], params.bench)
    else:
        new = [r.to_record() for r in run_settings([model_path], [params.bench])]
    append_records(run.results_path, new)
    record = as_record(new[-1])
    if not record.ok:
        run.log(f"bench {variant.name}: {record.error}")
        return Step(variant.name, macs, "failed", model=str(model_path), reason=f"benchmark failed: {record.error}")
    latency = record.stat_ms(params.stat)
    run.log(f"bench {variant.name}: {latency:.2f} ms {params.stat}")
    return Step(variant.name, macs, "measured", latency_ms=latency, model=str(model_path))


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
    step = _convert_and_measure(run, parse_variant(suggestion.spec), records)
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
        "weights_dir": str(params.weights_dir) if params.weights_dir else None, "remote": params.remote,
        "min_top1": params.min_top1, "far_factor": params.far_factor, "refine": params.refine,
        "bench": params.bench.to_dict(),
    }
    return json.dumps(data, indent=2, default=str)


def describe(steps: Sequence[Step]) -> list[dict]:
    """Rows for the console table."""
    return [
        {"variant": s.variant, "MACs": f"{s.macs / 1e9:.3f}B", "action": s.action,
         "latency_ms": "" if s.latency_ms is None else f"{s.latency_ms:.2f}",
         "predicted_ms": "" if s.predicted_ms is None else f"{s.predicted_ms:.1f}", "why": s.reason}
        for s in steps
    ]
