"""Measure again what is too close to call: interleaved with its neighbour, as a careful person would.

When a candidate's interval straddles the budget, one more measurement in a row would only add
runs taken under whatever the machine was doing at that moment. Instead the candidate (A) and
its neighbour (B, the next smaller measured variant, which is what the user gets if A does not
fit; the next larger one when A is the smallest) are measured in alternation, A-B-A-B, so both see
the same background load, and each one's runs from those rounds are pooled into one record that
replaces its earlier one (the latest record of a model is the one the decision reads). The rule
applies once per sweep run; the decision is then made on the pooled runs, and what was done is
written into the sweep's steps and log.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .confidence import TOO_CLOSE

__all__ = ["Remeasure", "plan_remeasure", "pooled_record"]


@dataclass(frozen=True)
class Remeasure:
    """One straddling candidate and the neighbour it is measured against."""

    target: str  # variant label
    neighbour: str | None
    before: str  # its interval before, as text

    @property
    def order(self) -> tuple[str, ...]:
        return (self.target, self.neighbour) if self.neighbour else (self.target,)


def plan_remeasure(decision, measured: Sequence[str], limit: int = 2) -> list[Remeasure]:
    """The candidates to measure again: those better than the pick (or, with no pick, the closest)
    whose interval straddles the budget, at most ``limit``, each with its neighbour among
    ``measured`` (variant labels in increasing size). A candidate already in an earlier plan (as
    that one's neighbour) is not planned again."""
    targets = list(decision.too_close)
    if decision.pick is None and decision.closest is not None and decision.closest.verdict == TOO_CLOSE:
        targets = [decision.closest, *[t for t in targets if t is not decision.closest]]
    plans: list[Remeasure] = []
    for a in targets:
        variant = a.candidate.variant
        if len(plans) >= limit or variant not in measured or any(variant in p.order for p in plans):
            continue  # already measured again as an earlier target's neighbour
        i = list(measured).index(variant)
        neighbour = measured[i - 1] if i > 0 else (measured[i + 1] if i + 1 < len(measured) else None)
        before = a.interval.describe() if a.interval else "no interval"
        plans.append(Remeasure(variant, neighbour, before))
    return plans


def pooled_record(rounds: Sequence[dict], stats: Callable[[Sequence[float]], dict]) -> dict:
    """One bench record holding the timed runs of every round, in the order they ran.

    ``stats(samples)`` gives the latency summary (the harness's own, so the percentiles are
    computed exactly as for any record). Model, settings and device come from the last round; the
    throttling flags span the first round's "before" to the last round's "after".
    """
    ok = [r for r in rounds if not r.get("error") and r.get("samples_ms")]
    if not ok:
        return rounds[-1]
    last = ok[-1]
    samples = [float(x) for r in ok for x in r["samples_ms"]]
    record = dict(last)
    record["samples_ms"] = samples
    record["runs"] = len(samples)
    record["failed_runs"] = sum(int(r.get("failed_runs") or 0) for r in ok)
    latency = dict(last.get("latency_ms") or {})
    latency.update(stats(samples))
    record["latency_ms"] = latency
    device = dict(last.get("device") or {})
    if device:
        device["throttled_before"] = (ok[0].get("device") or {}).get("throttled_before")
        record["device"] = device
    return record
