"""What "best" means among the candidates that fit: the largest, or the most accurate.

"The largest variant that fits" assumes larger is better, which holds for float models of one
family (compound scaling) but not after int8: a larger variant that quantizes badly can be
less accurate than a smaller one. So when every candidate in contention has a measured top-1
(``sweep --data``, or ``eval`` records), the objective is accuracy; otherwise it is size, and the
report says why. Published float accuracies are never a measured int8 accuracy: they are shown
as context only (:func:`published_top1`) and no objective reads them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import EdgenetError

__all__ = ["OBJECTIVES", "Ranked", "published_top1", "rank", "resolve_objective", "tied_with"]

OBJECTIVES = ("largest", "accuracy")


@dataclass(frozen=True)
class Ranked:
    """What an objective needs to know of a candidate."""

    key: str  # unique name of the candidate (variant + quant)
    macs: int | None
    latency_ms: float
    top1: float | None  # measured, percent
    top1_low: float | None = None  # its 95 % interval (percent); None: the point alone
    top1_high: float | None = None
    size_bytes: int | None = None  # the model file: the accuracy objective's tie-break

    @property
    def top1_span(self) -> tuple[float, float]:
        low = self.top1_low if self.top1_low is not None else self.top1
        high = self.top1_high if self.top1_high is not None else self.top1
        return float(low), float(high)


def resolve_objective(requested: str | None, contenders: Sequence[Ranked]) -> tuple[str, str]:
    """The objective to use and a sentence saying why.

    ``requested`` None: accuracy when every contender (the candidates within or near the budget)
    has a measured top-1, else largest. ``accuracy`` asked for with no measured top-1 at all is a
    user error naming how to measure one.
    """
    if requested is not None and requested not in OBJECTIVES:
        raise EdgenetError(f"unknown objective {requested!r}; choose from {', '.join(OBJECTIVES)}")
    known = [c for c in contenders if c.top1 is not None]
    if requested == "largest":
        return "largest", "largest by multiply-adds (asked for)"
    if requested == "accuracy":
        if not known:
            raise EdgenetError(
                "--objective accuracy needs a measured top-1: run the sweep with --data DIR|FILE "
                "(labelled images), or add eval records (edgenet eval)"
            )
        missing = len(contenders) - len(known)
        extra = f"; {missing} candidate(s) without a measured top-1 cannot be ranked by it" if missing else ""
        return "accuracy", f"most accurate by measured top-1 (asked for){extra}"
    if contenders and len(known) == len(contenders):
        return "accuracy", "most accurate by measured top-1 (every candidate in contention has one)"
    if known:
        return "largest", (
            f"largest by multiply-adds: only {len(known)} of {len(contenders)} candidates in contention have a "
            "measured top-1 (use --objective accuracy to rank those)"
        )
    return "largest", "largest by multiply-adds (no measured accuracy)"


def rank(objective: str, candidates: Sequence[Ranked]) -> list[Ranked]:
    """Best first. Largest: more MACs, then faster, then name.

    Accuracy: the most accurate by measured top-1 *with its interval*: among the candidates left,
    the one with the highest top-1 leads, and every candidate whose interval overlaps the leader's
    is tied with it (0.5 points apart on 500 images is no difference); the tie goes to the smaller
    model file (the same accuracy for less storage and memory), then the faster, then the name.
    That one is ranked next and the rest are ranked again the same way. A candidate without a
    measured top-1 ranks last (it cannot win on accuracy, but it is kept so the caller can say so).
    """
    if objective == "largest":
        return sorted(candidates, key=lambda c: (-(c.macs if c.macs is not None else -1), c.latency_ms, c.key))
    if objective != "accuracy":
        raise EdgenetError(f"unknown objective {objective!r}; choose from {', '.join(OBJECTIVES)}")
    left = [c for c in candidates if c.top1 is not None]
    unknown = sorted((c for c in candidates if c.top1 is None), key=lambda c: (c.latency_ms, c.key))
    order: list[Ranked] = []
    while left:
        leader = max(left, key=lambda c: (c.top1, -c.latency_ms))
        low, _ = leader.top1_span
        tied = [c for c in left if c.top1_span[1] >= low]
        best = min(tied, key=lambda c: (c.size_bytes if c.size_bytes is not None else math.inf, c.latency_ms, c.key))
        order.append(best)
        left.remove(best)
    return order + unknown


def tied_with(best: Ranked, other: Ranked) -> bool:
    """True when ``other``'s top-1 interval overlaps ``best``'s (neither is surely more accurate)."""
    if best.top1 is None or other.top1 is None:
        return False
    (a_low, a_high), (b_low, b_high) = best.top1_span, other.top1_span
    return a_low <= b_high and b_low <= a_high


def published_top1(variant: str) -> float | None:
    """The paper's float ImageNet top-1 for a table variant (context only), None for custom specs."""
    from ..family.variants import VARIANTS

    entry = VARIANTS.get(variant)
    published = getattr(entry, "published", None) if entry is not None else None
    return getattr(published, "top1", None) if published is not None else None
