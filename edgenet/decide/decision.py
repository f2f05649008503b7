"""The decision a user deploys: the candidates of :func:`edgenet.decide.select.select`, each with a
confidence interval, a budget verdict and a stability verdict, and the pick by the objective.

A candidate is picked only when its whole interval is within the budget ("fits"). One whose
interval straddles the budget is "too close to call on this device": it is never picked on a
coin toss, and the decision sentence names it next to the pick, so the user knows the next size up
might fit and that this device cannot tell. (``sweep`` measures such a candidate again,
interleaved with its neighbour, before it decides: :mod:`edgenet.sweep`.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..convert.fidelity import wilson_interval
from ..errors import EdgenetError
from ..results.records import BenchRecord, EvalRecord, as_records, latest
from .confidence import (
    CONFIDENCE,
    DOES_NOT_FIT,
    FITS,
    TOO_CLOSE,
    Interval,
    Stability,
    fmt_ms,
    interval_for,
)
from .confidence import stability as stability_of
from .constraints import MIB, NOT_MEASURED, Constraints, Figure, Judgement, judge, overall
from .objective import Ranked, published_top1, rank, resolve_objective, tied_with
from .select import Candidate, Selection, bench_group, select, top1_percent

__all__ = ["Assessment", "Decision", "decide"]


@dataclass(frozen=True)
class Assessment:
    """One candidate with what the decision knows about how far to trust it."""

    candidate: Candidate
    interval: Interval | None  # None: the record kept no raw runs
    verdict: str  # "fits" | "does not fit" | "too close to call"
    stability: Stability
    top1_count: int | None = None  # images behind the measured top-1
    agreement_top1_fraction: float | None = None  # agreeing with the float model (unlabelled images)
    published_top1: float | None = None  # the paper's float top-1: context only
    reason: str = ""
    judgements: tuple[Judgement, ...] = ()  # one verdict per constraint asked for, latency first

    @property
    def key(self) -> str:
        return f"{self.candidate.variant}/{self.candidate.quant}"

    def latency_text(self, stat: str, confidence: float) -> str:
        c = self.candidate
        if self.interval is None or self.interval.method == "none":
            return f"{fmt_ms(c.latency_ms)} ms {stat}"
        return f"{fmt_ms(c.latency_ms)} ms {stat} ({confidence:.0%} CI {self.interval.describe()})"

    def to_dict(self) -> dict:
        return {
            **self.candidate.to_dict(),
            "interval": self.interval.to_dict() if self.interval else None,
            "verdict": self.verdict,
            "stability": self.stability.to_dict(),
            "top1_count": self.top1_count,
            "agreement_top1_fraction": self.agreement_top1_fraction,
            "published_top1": self.published_top1,
            "decision_reason": self.reason,
            "constraints": [j.to_dict() for j in self.judgements],
        }

    def verdict_lines(self, confidence: float = CONFIDENCE) -> list[str]:
        """One line per constraint: ``memory 61.2 MB (one measurement) <= 64 MB: fits``."""
        return [j.text(confidence) for j in self.judgements]


@dataclass(frozen=True)
class Decision:
    selection: Selection  # the point-estimate selection it builds on
    objective: str
    objective_reason: str
    confidence: float
    assessments: tuple[Assessment, ...]  # the selection's order: largest first
    pick: Assessment | None
    closest: Assessment | None  # when nothing surely fits: the best candidate still in contention
    too_close: tuple[Assessment, ...] = ()  # better than the pick by the objective, but too close to call
    notes: tuple[str, ...] = field(default=())
    constraints: Constraints | None = None  # every limit the candidates were held to

    @property
    def budget_ms(self) -> float:
        return self.selection.budget_ms

    @property
    def stat(self) -> str:
        return self.selection.stat

    def _accuracy_text(self, a: Assessment) -> str:
        c = a.candidate
        if c.top1_fraction is not None:
            on = f" on {a.top1_count} images" if a.top1_count else ""
            return f"; top-1 {top1_percent(c.top1_fraction):.1f}% measured{on} ({c.quant or '?'})"
        if a.agreement_top1_fraction is not None:
            return f"; top-1 not measured, {100 * a.agreement_top1_fraction:.1f}% top-1 agreement with its float model"
        return ""

    @property
    def message(self) -> str:
        budget, stat = self.budget_ms, self.stat
        if self.pick is not None:
            p, c = self.pick, self.pick.candidate
            goal = "most accurate" if self.objective == "accuracy" else "largest"
            text = (
                f"pick: {c.variant} ({c.quant or '?'}), the {goal} that fits: {p.latency_text(stat, self.confidence)}, "
                f"{fmt_ms(c.margin_ms)} ms ({c.margin_pct:.1f}%) under the {budget:g} ms budget{self._accuracy_text(p)}"
            )
            for j in p.judgements[1:]:  # every other constraint asked for, with its figure
                text += f"; {j.text(self.confidence)}"
            if not p.stability.stable:
                text += f" [{p.stability.verdict}]"
            for t in self.too_close:
                text += (f"; {t.candidate.variant} at {t.latency_text(stat, self.confidence)} is too close to call "
                         "on this device")
            return text
        if self.closest is not None:
            a, c = self.closest, self.closest.candidate
            verdict = a.reason
            if a.verdict == TOO_CLOSE and (len(a.judgements) < 2 or a.judgements[0].verdict == TOO_CLOSE):
                verdict = "too close to call on this device"
            return (
                f"no variant fits {self._limits_text()} with {self.confidence:.0%} confidence; closest: {c.variant} "
                f"({c.quant or '?'}) at {a.latency_text(stat, self.confidence)}: {verdict}"
            )
        return f"no variant fits {self._limits_text()}"

    def _limits_text(self) -> str:
        """``10 ms at p50`` and, when asked, the other limits: ``, memory <= 64 MB, top-1 >= 75%``."""
        text = f"{self.budget_ms:g} ms at {self.stat}"
        if self.constraints is None:
            return text
        for c, limit in self.constraints.active()[1:]:
            if c.bound == "flag":
                text += ", Edge TPU parameters on-chip"
            else:
                text += f", {c.short} {'<=' if c.bound == 'max' else '>='} {limit:g}{'' if c.unit == '%' else ' '}{c.unit}"
        return text

    def to_dict(self) -> dict:
        data = self.selection.to_dict()
        data.update(
            objective=self.objective,
            objective_reason=self.objective_reason,
            confidence=self.confidence,
            pick=self.pick.to_dict() if self.pick else None,
            closest=self.closest.to_dict() if self.closest else None,
            too_close=[a.to_dict() for a in self.too_close],
            candidates=[a.to_dict() for a in self.assessments],
            point_pick=self.selection.pick.variant if self.selection.pick else None,
            notes=list(self.notes),
            constraints=self.constraints.to_dict() if self.constraints else None,
            message=self.message,
        )
        return data


def _bench_record_of(group: list[BenchRecord], candidate: Candidate) -> BenchRecord | None:
    """The bench record the selection used for ``candidate`` (the latest of that model)."""
    same = [r for r in group if r.model_label == candidate.variant and r.model.quant == candidate.quant]
    return latest(same) if same else None


@dataclass(frozen=True)
class _Evals:
    """What the latest eval records say of one model."""

    top1_count: int | None = None  # images behind the measured top-1
    agreement_fraction: float | None = None
    agreement_count: int | None = None  # images behind the agreement


def _eval_of(records: list, candidate: Candidate) -> _Evals:
    """Images behind the measured top-1, and the agreement with the float model, from the latest eval records."""
    count, agreement, agreement_count = None, None, None
    evals = sorted((r for r in as_records(records) if isinstance(r, EvalRecord) and r.ok), key=lambda r: r.created_utc)
    for r in evals:
        same = (candidate.sha256 and r.model.sha256 == candidate.sha256) or (
            not r.model.sha256 and r.variant == candidate.variant and r.model.quant == candidate.quant
        )
        if not same:
            continue
        if r.top1_fraction is not None:
            count = r.count
        if r.agreement_top1_fraction is not None:
            agreement, agreement_count = r.agreement_top1_fraction, r.count
    return _Evals(count, agreement, agreement_count)


def _wilson_figure(fraction: float | None, count: int | None) -> Figure:
    """A measured share (percent) with Wilson's 95 % interval on ``count`` images; the point when the count is unknown."""
    if fraction is None:
        return Figure(None)
    if not count:
        return Figure.point(100.0 * fraction, "image count unknown: no interval")
    low, high = wilson_interval(fraction * count, int(count))
    return Figure(100.0 * fraction, 100.0 * low, 100.0 * high, f"Wilson on {count} images")


def _figures(c: Candidate, record: BenchRecord | None, interval: Interval | None, evals: _Evals) -> dict[str, Figure]:
    """Every constraint's figure for one candidate, with its interval (see :mod:`edgenet.decide.constraints`)."""
    if interval is None or interval.method == "none":
        latency = Figure.point(c.latency_ms, "no interval" if interval is None else f"{interval.stat}: no interval")
    else:
        latency = Figure(c.latency_ms, interval.low_ms, interval.high_ms, interval.method)
    model = record.model if record is not None else None
    memory = record.rss_after_first_run_mb if record is not None else None
    if evals.agreement_fraction is not None:
        agreement = _wilson_figure(evals.agreement_fraction, evals.agreement_count)
    elif model is not None and model.fidelity_agreement_fraction is not None:
        ci = model.fidelity_agreement_ci95
        agreement = (Figure(100.0 * model.fidelity_agreement_fraction, 100.0 * ci[0], 100.0 * ci[1],
                            f"conversion check: {model.fidelity_ci_method or 'interval'}") if ci else
                     Figure.point(100.0 * model.fidelity_agreement_fraction, "conversion check, no interval"))
    else:
        agreement = Figure(None)
    off_chip = model.edgetpu_off_chip_bytes if model is not None else None
    return {
        "budget_ms": latency,
        "max_memory_mb": Figure.point(memory, "one measurement"),
        "max_size_mb": Figure.point(c.size_bytes / MIB if c.size_bytes is not None else None, "exact"),
        "min_top1": _wilson_figure(c.top1_fraction, evals.top1_count),
        "min_agreement": agreement,
        "edgetpu_on_chip": Figure.point(off_chip / MIB if off_chip is not None else None,
                                        model.edgetpu_off_chip_source if off_chip is not None else ""),
    }


def decide(
    records: list[dict],
    budget_ms: float | None = None,
    stat: str = "p50",
    objective: str | None = None,
    min_top1: float | None = None,
    device: str | None = None,
    threads: int | None = None,
    confidence: float = CONFIDENCE,
    *,
    constraints: Constraints | None = None,
) -> Decision:
    """Select, then judge every candidate on every constraint with its interval, and pick by the objective.

    ``constraints`` holds every limit (:class:`~edgenet.decide.constraints.Constraints`);
    ``budget_ms``/``min_top1`` are the short form for a latency budget and a top-1 floor alone.
    """
    if constraints is None:
        if budget_ms is None:
            raise EdgenetError("a decision needs a latency budget (budget_ms)")
        constraints = Constraints(budget_ms=float(budget_ms), min_top1=min_top1)
    elif budget_ms is not None or min_top1 is not None:
        raise EdgenetError("pass the limits either as constraints or as budget_ms/min_top1, not both")
    budget_ms = constraints.budget_ms
    selection = select(records, budget_ms, stat=stat, min_top1=constraints.min_top1, device=device, threads=threads)
    _, group = bench_group(records, device=device, threads=threads)
    notes = list(selection.notes)
    active = constraints.active()
    staged = []
    for c in selection.candidates:
        record = _bench_record_of(group, c)
        samples = list(record.samples_ms) if record is not None else []
        interval = interval_for(samples, stat, confidence) if samples else None
        stab = stability_of(samples, stat, record.throttled_before if record else None,
                            record.throttled_after if record else None, confidence)
        evals = _eval_of(records, c)
        figures = _figures(c, record, interval, evals)
        judgements = tuple(judge(constraint, limit, figures[constraint.name]) for constraint, limit in active)
        staged.append((c, interval, overall(judgements), stab, evals, judgements, figures))
    if any(interval is None for _, interval, *_ in staged):
        notes.append("some records keep no raw runs: their verdict is on the point value, without an interval")
    unmeasured = sorted({j.constraint.option for *_, judgements, _ in staged for j in judgements
                         if j.verdict == NOT_MEASURED})
    if unmeasured:
        notes.append(f"not measured for some candidates, so not held to: {', '.join(unmeasured)}")

    def ranked(c: Candidate, figures: dict[str, Figure]) -> Ranked:
        top1 = figures["min_top1"]
        return Ranked(f"{c.variant}/{c.quant}", c.macs, c.latency_ms, top1.value, top1.low, top1.high, c.size_bytes)

    contenders = [ranked(c, figures) for c, _, verdict, *_, figures in staged if verdict != DOES_NOT_FIT]
    chosen, why = resolve_objective(objective, contenders)
    order = [r.key for r in rank(chosen, contenders)]
    by_key = {f"{c.variant}/{c.quant}": verdict for c, _, verdict, *_ in staged}
    pick_key = next((k for k in order if by_key[k] == FITS and (chosen != "accuracy" or _top1_known(staged, k))
                     and (chosen != "largest" or _macs_known(staged, k))), None)
    better = order[: order.index(pick_key)] if pick_key else order
    too_close_keys = [k for k in better if by_key[k] == TOO_CLOSE]
    if chosen == "accuracy" and pick_key is not None:
        ranks = {r.key: r for r in contenders}
        tied = [k for k in order if k != pick_key and by_key[k] == FITS and tied_with(ranks[pick_key], ranks[k])]
        if tied:
            notes.append(f"top-1 tied within the intervals with {', '.join(tied)}: the pick is the smaller file, "
                         "then the faster")

    assessments = []
    for c, interval, verdict, stab, evals, judgements, _ in staged:
        key = f"{c.variant}/{c.quant}"
        reason = _reason(c, key, verdict, interval, judgements, stat, budget_ms, pick_key, chosen)
        assessments.append(Assessment(c, interval, verdict, stab, evals.top1_count, evals.agreement_fraction,
                                      published_top1(c.variant), reason, judgements))

    by_name = {a.key: a for a in assessments}
    pick = by_name.get(pick_key) if pick_key else None
    too_close = tuple(by_name[k] for k in too_close_keys)
    closest = None
    if pick is None and assessments:
        if too_close:
            closest = too_close[0]
        else:
            over = [a for a in assessments if a.verdict == DOES_NOT_FIT]
            closest = min(over, key=lambda a: (a.candidate.latency_ms, a.candidate.variant)) if over else assessments[0]
    unstable = [a.candidate.variant for a in assessments if not a.stability.stable]
    if unstable:
        notes.append(f"unstable measurements (see the report): {', '.join(unstable)}")
    return Decision(selection, chosen, why, confidence, tuple(assessments), pick, closest, too_close, tuple(notes),
                    constraints)


def _reason(c: Candidate, key: str, verdict: str, interval: Interval | None, judgements, stat: str,
            budget_ms: float, pick_key: str | None, chosen: str) -> str:
    """Why a candidate is where it is, naming the constraints it breaks or cannot be sure of."""
    latency = next(j for j in judgements if j.constraint.name == "budget_ms")
    others = [j for j in judgements if j.constraint.name != "budget_ms"]
    if verdict == DOES_NOT_FIT:
        parts = []
        if latency.verdict == DOES_NOT_FIT:
            text = f"over budget by {c.latency_ms - budget_ms:.2f} ms"
            if interval is not None and interval.low_ms is not None:
                text += f", the whole interval too (from {interval.low_ms:.2f} ms)"
            parts.append(text)
        parts += [j.text() for j in others if j.verdict == DOES_NOT_FIT]
        return "does not fit: " + "; ".join(parts)
    if verdict == TOO_CLOSE:
        if latency.verdict == TOO_CLOSE:
            text = "too close to call on this device: the interval straddles the budget"
            if interval is not None and interval.high_ms is None:
                text = f"too close to call on this device: too few runs to bound {stat} ({interval.runs})"
            parts = [text]
            parts += [j.text() for j in others if j.verdict == TOO_CLOSE]
            return "; ".join(parts)
        return "too close to call: " + "; ".join(j.text() for j in others if j.verdict == TOO_CLOSE)
    if key == pick_key:
        return "picked"
    if chosen == "accuracy" and c.top1_fraction is None:
        return "fits, but its top-1 was not measured"
    if chosen == "largest" and c.macs is None:
        return "fits, but its size (MACs) is unknown, so it cannot be ranked"
    if pick_key is not None:
        return "fits; smaller than the pick" if chosen == "largest" else "fits; less accurate than the pick"
    return "fits"


def _top1_known(staged, key: str) -> bool:
    return any(f"{c.variant}/{c.quant}" == key and c.top1_fraction is not None for c, *_ in staged)


def _macs_known(staged, key: str) -> bool:
    return any(f"{c.variant}/{c.quant}" == key and c.macs is not None for c, *_ in staged)
