"""When nothing fits, say what would: the changes worth trying, and the verdict on each.

For the largest candidate that failed and for the smallest one, :func:`propose` lists:

* the device's other thread counts;
* the Lite variant of the same size (``b2`` -> ``lite2``: ReLU6, no squeeze-excitation, fixed stem and
  head: the edge family, faster at the same resolution);
* the fp16 and fp32 forms of an int8 candidate (on a CPU without fast int8 kernels int8 is not much
  faster, and the float forms keep the float accuracy); never for an Edge TPU target, which runs full
  integer only;
* for the smallest: a smaller custom phi (pure compound scaling, half a step down);
* the engines the runtime offers (:func:`edgenet.bench.tune.available_engines`: XNNPACK's latest
  features, the CompiledModel API and, where the installed LiteRT has the option, YNNPACK).

The sweep engine measures each proposal like any candidate (same conversion, same bench child) and
:func:`assess` judges it on every constraint with :func:`edgenet.decide.decision.decide` itself: a
measured alternative is "measured", with its interval. A proposal that could not be measured, or a
variant the caller chose not to convert, is "predicted" from the latency model
(:mod:`edgenet.decide.latency_model`) with its error band, and says so; an engine or a thread count
cannot be predicted (the model is fitted per setting), so without a measurement it is left out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import EdgenetError
from .confidence import CONFIDENCE, DOES_NOT_FIT, FITS, TOO_CLOSE, fmt_ms
from .constraints import Constraints, Judgement

__all__ = ["Alternative", "Proposal", "assess", "predicted", "propose"]

FLOAT_FORMS = ("fp16", "fp32")
#: How far below the smallest candidate the custom phi goes (compound scaling steps).
PHI_STEP_DOWN = 0.5
_B = re.compile(r"^b([0-4])$")


@dataclass(frozen=True)
class Proposal:
    """One change to try instead of a candidate that does not fit."""

    of: str  # the candidate it stands in for: "b1/int8"
    kind: str  # "threads" | "lite" | "quant" | "phi" | "engine"
    change: str  # for people: "2 threads", "lite1 (b1's size)", "fp16", "phi=-0.5", "engine compiled/xnnpack"
    variant: str  # the variant label to measure (parse_variant-able)
    quant: str
    bench: dict = field(default_factory=dict)  # BenchParams fields that differ: {"threads": 2}, an engine's fields

    @property
    def key(self) -> str:
        return f"{self.of}: {self.change}"

    def to_dict(self) -> dict:
        return {"of": self.of, "kind": self.kind, "change": self.change, "variant": self.variant,
                "quant": self.quant, "bench": dict(self.bench)}


@dataclass(frozen=True)
class Alternative:
    """A proposal and what is known of it: measured (with its interval) or predicted (with its band)."""

    proposal: Proposal
    how: str  # "measured" | "predicted" | "failed"
    verdict: str  # fits | does not fit | too close to call | "" (failed)
    latency_ms: float | None = None
    low_ms: float | None = None
    high_ms: float | None = None
    judgements: tuple[Judgement, ...] = ()
    note: str = ""

    def line(self, stat: str, confidence: float = CONFIDENCE) -> str:
        """``instead of b1/int8: 2 threads -> 6.10 ms p50 (95% CI 6.02-6.21 ms), measured: fits``."""
        p = self.proposal
        head = f"instead of {p.of}: {p.change}"
        if self.how == "failed" or self.latency_ms is None:
            return f"{head} -> could not be measured: {self.note}"
        band = "CI" if self.how == "measured" else "band"
        spread = ""
        if self.low_ms is not None or self.high_ms is not None:
            low = "unbounded" if self.low_ms is None else fmt_ms(self.low_ms)
            high = "unbounded" if self.high_ms is None else fmt_ms(self.high_ms)
            spread = f" ({confidence:.0%} {band} {low}-{high} ms)" if self.how == "measured" else \
                f" ({band} {low}-{high} ms)"
        others = [j.text(confidence) for j in self.judgements[1:] if j.verdict != FITS]
        tail = f"; {'; '.join(others)}" if others else ""
        note = f" ({self.note})" if self.note else ""
        return f"{head} -> {fmt_ms(self.latency_ms)} ms {stat}{spread}, {self.how}: {self.verdict}{tail}{note}"

    def to_dict(self) -> dict:
        return {**self.proposal.to_dict(), "how": self.how, "verdict": self.verdict, "latency_ms": self.latency_ms,
                "low_ms": self.low_ms, "high_ms": self.high_ms,
                "constraints": [j.to_dict() for j in self.judgements], "note": self.note}


def _targets(decision) -> list:
    """The largest candidate that failed and the smallest candidate (one when they are the same)."""
    failed = [a for a in decision.assessments if a.verdict != FITS]
    if not failed:
        return []
    largest = failed[0]  # assessments are largest first
    smallest = decision.assessments[-1]
    return [largest] if smallest.key == largest.key else [largest, smallest]


def _smaller_phi(variant: str) -> str | None:
    """Half a compound-scaling step below ``variant`` (same family), or None below the phi range."""
    from ..family.variants import PHI_RANGE, parse_variant
    from .latency_model import equivalent_phi

    v = parse_variant(variant)
    phi = round(equivalent_phi(v) - PHI_STEP_DOWN, 2)
    if phi < PHI_RANGE[0]:
        return None
    return f"phi={phi:g}" + (",base=lite" if v.family == "lite" else "")


def propose(decision, *, threads: int, thread_counts: Sequence[int] = (), engines: dict[str, dict] | None = None,
            current_engine: dict | None = None, edgetpu: bool = False) -> list[Proposal]:
    """What to try when nothing fits (see the module doc), for the largest failure and the smallest candidate.

    ``thread_counts``: the device's thread counts (``threads``, the one measured, is left out); ``engines``:
    engine name -> its BenchParams fields (the runtime's offer; the one measured, ``current_engine``, left out).
    """
    if decision.pick is not None:
        return []
    proposals: list[Proposal] = []
    seen: set[tuple] = set()
    targets = _targets(decision)

    def add(p: Proposal) -> None:
        ident = (p.variant, p.quant, tuple(sorted(p.bench.items())))
        if ident not in seen:
            seen.add(ident)
            proposals.append(p)

    for a in targets:
        c = a.candidate
        quant = c.quant or "int8"
        of = f"{c.variant}/{quant}"
        for t in sorted(set(thread_counts) - {threads}):
            add(Proposal(of, "threads", f"{t} thread{'s' if t > 1 else ''}", c.variant, quant, {"threads": t}))
        if m := _B.match(c.variant):
            add(Proposal(of, "lite", f"lite{m.group(1)} ({c.variant}'s size, edge family)", f"lite{m.group(1)}", quant))
        if quant == "int8" and not edgetpu:  # an Edge TPU runs full integer only
            for form in FLOAT_FORMS:
                add(Proposal(of, "quant", form, c.variant, form))
        if a is targets[-1]:  # the smallest: a smaller size still
            smaller = _smaller_phi(c.variant)
            if smaller is not None:
                add(Proposal(of, "phi", smaller, smaller, quant))
        if not edgetpu:
            for name, fields in (engines or {}).items():
                if current_engine is not None and all(current_engine.get(k) == v for k, v in fields.items()):
                    continue
                add(Proposal(of, "engine", f"engine {name}", c.variant, quant, dict(fields)))
    return proposals


def assess(proposal: Proposal, measured: list, records: list, constraints: Constraints, stat: str,
           reference_ms: float | None = None) -> Alternative:
    """Judge a measured proposal with :func:`~edgenet.decide.decision.decide` on its own bench record
    (``measured``: what measuring it returned) and the eval records among ``records``."""
    from ..results.records import BenchRecord, EvalRecord, as_records
    from .decision import decide

    mine = [r for r in as_records(measured) if isinstance(r, BenchRecord)]
    usable = [r for r in mine if r.usable]
    if not usable:
        return Alternative(proposal, "failed", "", note=next((r.error for r in mine if r.error), "no measurement"))
    evals = [r.raw for r in as_records(records) if isinstance(r, EvalRecord)]
    try:
        d = decide([usable[-1].raw, *evals], constraints=constraints, stat=stat)
    except EdgenetError as exc:
        return Alternative(proposal, "failed", "", note=str(exc))
    (a,) = d.assessments
    note = ""
    if proposal.kind == "quant" and reference_ms:
        note = f"{a.candidate.latency_ms / reference_ms:.2f}x the int8 form's latency on this device"
    interval = a.interval
    return Alternative(proposal, "measured", a.verdict, a.candidate.latency_ms,
                       interval.low_ms if interval else None, interval.high_ms if interval else None,
                       a.judgements, note)


def predicted(proposal: Proposal, records: list, constraints: Constraints, stat: str, threads: int | None = None,
              device: str | None = None) -> Alternative | None:
    """A variant-size proposal predicted from the latency model of the measured setting (None when it cannot
    be: the model needs three measured variants of one family, and a thread count or an engine is another
    setting, which a model fitted on this one does not describe)."""
    from .latency_model import LatencyModel

    if proposal.kind not in ("lite", "phi"):
        return None
    try:
        model = LatencyModel.fit(records, stat=stat, device=device, threads=threads)
        p = model.predict_detail(proposal.variant)
    except EdgenetError:
        return None
    budget = constraints.budget_ms
    verdict = FITS if p.high_ms <= budget else DOES_NOT_FIT if p.low_ms > budget else TOO_CLOSE
    return Alternative(proposal, "predicted", verdict, p.latency_ms, p.low_ms, p.high_ms,
                       note="latency model" + (", extrapolated" if p.extrapolated else ""))
