"""Pick the largest variant that meets a latency budget, from measured results.

The decision works on ``edgenet.result/1`` records (see :mod:`edgenet.results`): ``bench``
records give latencies, ``eval`` records accuracies. Latency only means something for one
device under one setting (threads, delegate, XNNPACK), so records that mix them are refused
unless the caller narrows them down (``device``/``threads``) -- silently comparing a Pi at
four threads with a laptop at one would pick the wrong model.

"Largest" is by multiply-adds: within a family, more MACs buy accuracy (the paper's compound
scaling), so the largest variant that fits is the most accurate one the device can afford.
Accuracy, where an ``eval`` record knows it, can set a floor; unknown accuracy never
disqualifies a model (most sweeps don't evaluate), but it is flagged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..errors import EdgenetError
from ..family.counts import analytic_counts, counts_if_known
from ..family.variants import BASELINE_NAMES
from ..results.records import (
    STATS,
    AccuracyIndex,
    BenchRecord,
    SettingKey,
    accuracy_index,
    bench_group,
    latest_by,
    variant_label,
    variant_of,
)

__all__ = [
    "STATS",
    "Candidate",
    "Selection",
    "SettingKey",
    "analytic_counts",
    "bench_group",
    "select",
    "top1_percent",
    "variant_label",
    "variant_of",
]


def top1_percent(fraction: float | None) -> float | None:
    """A top-1 fraction (0..1, as every record view holds it) as a percentage, for people."""
    return None if fraction is None else 100.0 * fraction


@dataclass(frozen=True)
class Candidate:
    """One measured model and the verdict on it."""

    variant: str
    quant: str | None
    model_name: str | None
    sha256: str | None
    macs: int | None
    params: int | None
    resolution: int | None
    size_bytes: int | None
    latency_ms: float
    margin_ms: float  # budget - latency: positive means headroom
    margin_pct: float  # margin as a percentage of the budget
    top1_fraction: float | None  # 0..1, from an eval record of the same model; None when unknown
    fits: bool  # within budget AND (top-1 unknown or above the floor)
    reason: str
    flags: tuple[str, ...] = ()

    @property
    def top1(self) -> float | None:
        """Top-1 in percent, as people read it (and as ``--min-top1`` takes it)."""
        return top1_percent(self.top1_fraction)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["flags"] = list(self.flags)
        data["top1"] = self.top1  # percent, as the JSON output has always carried it
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Candidate:
        data = dict(data)
        data["flags"] = tuple(data.get("flags") or ())
        percent = data.pop("top1", None)
        if "top1_fraction" not in data:  # written before the fraction field existed
            data["top1_fraction"] = None if percent is None else percent / 100.0
        return cls(**data)


@dataclass(frozen=True)
class Selection:
    """The outcome of :func:`select`: every candidate, the pick (or None) and the closest miss."""

    budget_ms: float
    stat: str
    min_top1: float | None  # percent, as given to --min-top1
    setting: SettingKey
    candidates: tuple[Candidate, ...]  # largest first
    pick: Candidate | None
    closest: Candidate | None  # when nothing fits: the candidate nearest to the budget
    notes: tuple[str, ...] = field(default=())

    @property
    def message(self) -> str:
        if self.pick is not None:
            p = self.pick
            return (
                f"pick: {p.variant} ({p.quant or '?'}) at {p.latency_ms:.2f} ms {self.stat}, "
                f"{p.margin_ms:.2f} ms ({p.margin_pct:.1f}%) under the {self.budget_ms:g} ms budget"
            )
        if self.closest is not None:
            c = self.closest
            return (
                f"no variant fits {self.budget_ms:g} ms at {self.stat}; closest: {c.variant} "
                f"({c.quant or '?'}) at {c.latency_ms:.2f} ms ({c.reason})"
            )
        return f"no variant fits {self.budget_ms:g} ms at {self.stat}"

    def to_dict(self) -> dict:
        return {
            "budget_ms": self.budget_ms,
            "stat": self.stat,
            "min_top1": self.min_top1,
            "setting": asdict(self.setting),
            "pick": self.pick.to_dict() if self.pick else None,
            "closest": self.closest.to_dict() if self.closest else None,
            "candidates": [c.to_dict() for c in self.candidates],
            "notes": list(self.notes),
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Selection:
        def cand(d):
            return Candidate.from_dict(d) if d else None

        return cls(
            budget_ms=float(data["budget_ms"]),
            stat=data["stat"],
            min_top1=data.get("min_top1"),
            setting=SettingKey(**data["setting"]),
            candidates=tuple(Candidate.from_dict(c) for c in data.get("candidates") or ()),
            pick=cand(data.get("pick")),
            closest=cand(data.get("closest")),
            notes=tuple(data.get("notes") or ()),
        )


@dataclass(frozen=True)
class _Measured:
    """One model's latest bench record, with its size and known accuracy filled in."""

    variant: str
    quant: str | None
    model_name: str | None
    sha256: str | None
    macs: int | None
    params: int | None
    resolution: int | None
    size_bytes: int | None
    latency_ms: float
    top1_fraction: float | None

    @property
    def rank(self) -> tuple:
        # Largest first; among equal MACs the faster, then the name (stable, reproducible).
        return (-(self.macs if self.macs is not None else -1), self.latency_ms, self.variant)


def _measured(record: BenchRecord, latency_ms: float, accuracy: AccuracyIndex) -> _Measured:
    model = record.model
    counts = counts_if_known(record.model_label)
    macs = model.macs or (counts.macs if counts else None)
    return _Measured(
        variant=record.model_label,
        quant=model.quant,
        model_name=model.name,
        sha256=model.sha256,
        macs=int(macs) if macs is not None else None,
        params=model.params or (counts.params if counts else None),
        resolution=model.resolution or (counts.resolution if counts else None),
        size_bytes=model.size_bytes,
        latency_ms=float(latency_ms),
        top1_fraction=accuracy.top1_fraction(record),
    )


def _candidates(group: list[BenchRecord], stat: str, accuracy: AccuracyIndex, notes: list[str]) -> list[_Measured]:
    """The latest measurement of each (model, quant), largest first; reference models left out."""
    rows, repeated = [], []
    for (variant, _quant), rs in latest_by(group, lambda r: (r.model_label, r.model.quant)).items():
        if variant in BASELINE_NAMES:
            # Bigger is not better across architectures: ResNet-50 has 10x B0's MACs and lower
            # accuracy. Reference models are compared in the report, never picked.
            notes.append(f"{variant} is a reference model, not a candidate")
            continue
        if len(rs) > 1:
            repeated.append(variant)
        latency = rs[-1].stat_ms(stat)
        if latency is None:
            notes.append(f"{variant}: no {stat} latency in its result, left out")
            continue
        rows.append(_measured(rs[-1], latency, accuracy))
    if repeated:
        notes.append(f"measured more than once, the latest result is used: {', '.join(repeated)}")
    return sorted(rows, key=lambda m: m.rank)


def _problems(m: _Measured, budget_ms: float, floor_fraction: float | None) -> list[str]:
    """Why a model cannot be the pick: over budget, below the accuracy floor (empty when neither)."""
    problems = []
    if m.latency_ms > budget_ms:
        problems.append(f"over budget by {m.latency_ms - budget_ms:.2f} ms")
    if floor_fraction is not None and m.top1_fraction is not None and m.top1_fraction < floor_fraction:
        problems.append(f"top-1 {100 * m.top1_fraction:.1f} below floor {100 * floor_fraction:g}")
    return problems


def _second_place(m: _Measured, pick: _Measured) -> str:
    if m.macs < pick.macs:
        return "smaller than the pick"
    if m.latency_ms > pick.latency_ms:
        return "same MACs as the pick but slower"
    return "same MACs and latency as the pick; the pick comes first by name"


def _verdicts(rows: list[_Measured], budget_ms: float, floor_fraction: float | None) -> tuple[list[Candidate], int | None]:
    """A verdict on every row (largest first) and the index of the pick: the first that fits."""
    pick_index = None
    verdicts = []
    for i, m in enumerate(rows):
        problems = _problems(m, budget_ms, floor_fraction)
        fits = not problems
        if problems:
            reason = "; ".join(problems)
        elif m.macs is None:
            reason, fits = "fits, but its size (MACs) is unknown, so it cannot be ranked", False
        elif pick_index is None:
            reason, pick_index = "picked", i
        else:
            reason = _second_place(m, rows[pick_index])
        flags = ("top-1 unknown",) if (floor_fraction is not None and m.top1_fraction is None) else ()
        verdicts.append(
            Candidate(
                **asdict(m),
                margin_ms=budget_ms - m.latency_ms,
                margin_pct=100.0 * (budget_ms - m.latency_ms) / budget_ms,
                fits=fits,
                reason=reason,
                flags=flags,
            )
        )
    return verdicts, pick_index


def _closest(verdicts: list[Candidate], budget_ms: float) -> Candidate | None:
    """When nothing fits: the fastest model over the budget, or (all failed on accuracy) the most accurate."""
    if not verdicts:
        return None
    over = [c for c in verdicts if c.latency_ms > budget_ms]
    if over:
        return min(over, key=lambda c: (c.latency_ms, c.variant))
    return max(verdicts, key=lambda c: (c.top1_fraction if c.top1_fraction is not None else -1.0, -c.latency_ms))


def select(
    records: list,
    budget_ms: float,
    stat: str = "p50",
    min_top1: float | None = None,
    device: str | None = None,
    threads: int | None = None,
) -> Selection:
    """The largest variant (by MACs) whose ``stat`` latency fits ``budget_ms``.

    ``records`` are ``edgenet.result/1`` dicts or their views. Candidates are the successful
    bench records of one device + setting (see :func:`bench_group`); a model measured more than
    once counts with its latest record. ``min_top1`` (percent, as ``--min-top1``) disqualifies
    models whose known top-1 is lower. Ties in MACs go to the lower latency, then the name. When
    nothing fits, ``pick`` is None and ``closest`` is the fastest model over the budget (or, if
    every model failed only on accuracy, the most accurate one).
    """
    if stat not in STATS:
        raise EdgenetError(f"unknown latency statistic {stat!r}; choose from {', '.join(STATS)}")
    if not budget_ms > 0:
        raise EdgenetError(f"the latency budget must be > 0 ms, got {budget_ms:g}")
    key, group = bench_group(records, device=device, threads=threads)
    notes: list[str] = []
    rows = _candidates(group, stat, accuracy_index(records), notes)
    floor_fraction = None if min_top1 is None else min_top1 / 100.0
    verdicts, pick_index = _verdicts(rows, budget_ms, floor_fraction)
    if min_top1 is not None and any("top-1 unknown" in c.flags for c in verdicts):
        notes.append("top-1 unknown for some candidates: they were not held to the accuracy floor")
    pick = verdicts[pick_index] if pick_index is not None else None
    return Selection(
        budget_ms=float(budget_ms),
        stat=stat,
        min_top1=min_top1,
        setting=key,
        candidates=tuple(verdicts),
        pick=pick,
        closest=None if pick is not None else _closest(verdicts, budget_ms),
        notes=tuple(notes),
    )
