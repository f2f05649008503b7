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

from ..results.records import BenchRecord, EvalRecord, as_records, latest
from .confidence import (
    CONFIDENCE,
    DOES_NOT_FIT,
    FITS,
    TOO_CLOSE,
    Interval,
    Stability,
    budget_verdict,
    fmt_ms,
    interval_for,
)
from .confidence import stability as stability_of
from .objective import Ranked, published_top1, rank, resolve_objective
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
        }


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
            if not p.stability.stable:
                text += f" [{p.stability.verdict}]"
            for t in self.too_close:
                text += (f"; {t.candidate.variant} at {t.latency_text(stat, self.confidence)} is too close to call "
                         "on this device")
            return text
        if self.closest is not None:
            a, c = self.closest, self.closest.candidate
            verdict = "too close to call on this device" if a.verdict == TOO_CLOSE else a.reason
            return (
                f"no variant fits {budget:g} ms at {stat} with {self.confidence:.0%} confidence; closest: {c.variant} "
                f"({c.quant or '?'}) at {a.latency_text(stat, self.confidence)}: {verdict}"
            )
        return f"no variant fits {budget:g} ms at {stat}"

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
            message=self.message,
        )
        return data


def _bench_record_of(group: list[BenchRecord], candidate: Candidate) -> BenchRecord | None:
    """The bench record the selection used for ``candidate`` (the latest of that model)."""
    same = [r for r in group if r.model_label == candidate.variant and r.model.quant == candidate.quant]
    return latest(same) if same else None


def _eval_of(records: list, candidate: Candidate) -> tuple[int | None, float | None]:
    """(images behind the measured top-1, agreement with the float model) from the latest eval records."""
    count, agreement = None, None
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
            agreement = r.agreement_top1_fraction
    return count, agreement


def decide(
    records: list[dict],
    budget_ms: float,
    stat: str = "p50",
    objective: str | None = None,
    min_top1: float | None = None,
    device: str | None = None,
    threads: int | None = None,
    confidence: float = CONFIDENCE,
) -> Decision:
    """Select, then judge every candidate's latency with its interval and pick by the objective."""
    selection = select(records, budget_ms, stat=stat, min_top1=min_top1, device=device, threads=threads)
    _, group = bench_group(records, device=device, threads=threads)
    notes = list(selection.notes)
    staged = []
    for c in selection.candidates:
        record = _bench_record_of(group, c)
        samples = list(record.samples_ms) if record is not None else []
        interval = interval_for(samples, stat, confidence) if samples else None
        verdict = budget_verdict(interval, c.latency_ms, budget_ms)
        stab = stability_of(samples, stat, record.throttled_before if record else None,
                            record.throttled_after if record else None, confidence)
        count, agreement = _eval_of(records, c)
        staged.append((c, interval, verdict, stab, count, agreement))
    if any(interval is None for _, interval, *_ in staged):
        notes.append("some records keep no raw runs: their verdict is on the point value, without an interval")

    def floor_ok(c: Candidate) -> bool:
        return min_top1 is None or c.top1_fraction is None or top1_percent(c.top1_fraction) >= min_top1

    contenders = [Ranked(f"{c.variant}/{c.quant}", c.macs, c.latency_ms, top1_percent(c.top1_fraction))
                  for c, _, verdict, *_ in staged if verdict != DOES_NOT_FIT and floor_ok(c)]
    chosen, why = resolve_objective(objective, contenders)
    order = [r.key for r in rank(chosen, contenders)]
    by_key = {f"{c.variant}/{c.quant}": verdict for c, _, verdict, *_ in staged}
    pick_key = next((k for k in order if by_key[k] == FITS and (chosen != "accuracy" or _top1_known(staged, k))
                     and (chosen != "largest" or _macs_known(staged, k))), None)
    better = order[: order.index(pick_key)] if pick_key else order
    too_close_keys = [k for k in better if by_key[k] == TOO_CLOSE]

    assessments = []
    for c, interval, verdict, stab, count, agreement in staged:
        key = f"{c.variant}/{c.quant}"
        if not floor_ok(c):
            reason = f"top-1 {top1_percent(c.top1_fraction):.1f} below floor {min_top1:g}"
        elif verdict == DOES_NOT_FIT:
            reason = f"does not fit: over budget by {c.latency_ms - budget_ms:.2f} ms"
            if interval is not None and interval.low_ms is not None:
                reason += f", the whole interval too (from {interval.low_ms:.2f} ms)"
        elif verdict == TOO_CLOSE:
            reason = "too close to call on this device: the interval straddles the budget"
            if interval is not None and interval.high_ms is None:
                reason = f"too close to call on this device: too few runs to bound {stat} ({interval.runs})"
        elif key == pick_key:
            reason = "picked"
        elif chosen == "accuracy" and c.top1_fraction is None:
            reason = "fits, but its top-1 was not measured"
        elif chosen == "largest" and c.macs is None:
            reason = "fits, but its size (MACs) is unknown, so it cannot be ranked"
        elif pick_key is not None:
            reason = "fits; smaller than the pick" if chosen == "largest" else "fits; less accurate than the pick"
        else:
            reason = "fits"
        assessments.append(Assessment(c, interval, verdict, stab, count, agreement, published_top1(c.variant), reason))

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
    return Decision(selection, chosen, why, confidence, tuple(assessments), pick, closest, too_close, tuple(notes))


def _top1_known(staged, key: str) -> bool:
    return any(f"{c.variant}/{c.quant}" == key and c.top1_fraction is not None for c, *_ in staged)


def _macs_known(staged, key: str) -> bool:
    return any(f"{c.variant}/{c.quant}" == key and c.macs is not None for c, *_ in staged)

