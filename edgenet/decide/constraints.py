"""Every constraint a device has, as data: one typed table, one judging rule.

A deployment asks more than "is it fast enough": will it fit in the board's memory next to the
application, in its storage, is it accurate enough *with confidence*, do its parameters stay in
the Edge TPU's on-chip memory. Each question is a row of :data:`CONSTRAINTS` (the CLI options,
``devices.toml`` keys, the JSON and the report all derive from it) and a field of
:class:`Constraints`, the frozen, self-validating set a decision is held to.

Every figure comes with the interval its kind allows, and every candidate gets a verdict on every
constraint asked for (:class:`Judgement`):

* latency (``budget_ms``): the order-statistics interval of the percentile
  (:mod:`edgenet.decide.confidence`);
* top-1 (``min_top1``): Wilson's score interval on the evaluated images
  (:func:`edgenet.convert.fidelity.wilson_interval`);
* agreement with the float model (``min_agreement``): Wilson on the images of an ``eval --agreement``
  record, else the conversion's own interval on its held-out photos (the cluster bootstrap over the
  photos, at least Wilson on the views: :func:`edgenet.convert.fidelity.agreement_interval`);
* memory (``max_memory_mb``): one measurement of the bench child's resident memory after init and
  the first run -- memory does not vary run to run the way latency does, so the point decides;
* size (``max_size_mb``): the file's bytes, exact;
* Edge TPU on-chip (``edgetpu_on_chip``): the parameter bytes streamed off-chip, from the compiler's
  report where it ran, else the static check's estimate: any byte off-chip does not fit.

An upper bound fits when the whole interval is at or under it, does not fit when all of it is over,
and is "too close to call" otherwise (a lower bound mirrors that). A figure that was not measured is
"not measured": it does not disqualify a candidate (most sweeps don't evaluate accuracy), and the
decision says so next to the pick. MB are MiB-based (2**20 bytes), as ``peak_rss_mb``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from ..errors import EdgenetError
from .confidence import DOES_NOT_FIT, FITS, TOO_CLOSE, fmt_ms

__all__ = [
    "CONSTRAINTS",
    "NOT_MEASURED",
    "Constraint",
    "ConstraintError",
    "Constraints",
    "Figure",
    "Judgement",
    "judge",
    "overall",
]

NOT_MEASURED = "not measured"
MIB = 2**20


class ConstraintError(EdgenetError, ValueError):
    """A constraint out of range or unknown (names the option or the file)."""


@dataclass(frozen=True)
class Constraint:
    """One row of the table: what is measured, how it is bounded, how its interval is made."""

    name: str  # the Constraints field, the JSON and devices.toml key
    option: str  # the CLI option
    figure: str  # what is measured, for people
    unit: str  # of the limit and the figure
    bound: str  # "max": at most the limit; "min": at least; "flag": must hold when asked
    judged_by: str  # the interval rule
    help: str

    @property
    def short(self) -> str:
        """The figure's one-word name in verdict lines."""
        return {"budget_ms": "latency", "max_memory_mb": "memory", "max_size_mb": "size", "min_top1": "top-1",
                "min_agreement": "agreement", "edgetpu_on_chip": "off-chip"}[self.name]


CONSTRAINTS: dict[str, Constraint] = {c.name: c for c in (
    Constraint("budget_ms", "--budget-ms", "latency", "ms", "max", "order statistics of the timed runs",
               "Latency budget in milliseconds (the statistic of --stat)."),
    Constraint("max_memory_mb", "--max-memory-mb", "resident memory after init and first run", "MB", "max",
               "one measurement",
               "Most resident memory (MB, private + file-backed) the inference process may hold after creating "
               "the model and its first run."),
    Constraint("max_size_mb", "--max-size-mb", "model file size", "MB", "max", "exact",
               "Largest model file (MB = 2^20 bytes)."),
    Constraint("min_top1", "--min-top1", "top-1", "%", "min", "Wilson score interval on the evaluated images",
               "Least measured top-1 (percent), judged with its 95% interval."),
    Constraint("min_agreement", "--min-agreement", "top-1 agreement with the float model", "%", "min",
               "Wilson on the evaluated images, else the conversion's cluster bootstrap",
               "Least top-1 agreement with the float model (percent), judged with its 95% interval."),
    Constraint("edgetpu_on_chip", "--edgetpu-on-chip", "Edge TPU parameters streamed off-chip", "MB", "flag",
               "the compiler's report, else the static check",
               "Edge TPU: the model's parameters must stay in on-chip memory (nothing streamed off-chip)."),
)}


@dataclass(frozen=True)
class Constraints:
    """The limits one decision is held to (None / False: not asked)."""

    budget_ms: float
    max_memory_mb: float | None = None
    max_size_mb: float | None = None
    min_top1: float | None = None  # percent
    min_agreement: float | None = None  # percent
    edgetpu_on_chip: bool = False

    def __post_init__(self):
        for c in CONSTRAINTS.values():
            value = getattr(self, c.name)
            if c.bound == "flag":
                if not isinstance(value, bool):
                    raise ConstraintError(f"{c.option} is a switch (true/false), got {value!r}")
                continue
            if value is None and c.name != "budget_ms":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConstraintError(f"{c.option} must be a number, got {value!r}")
            if not (math.isfinite(value) and value > 0):
                raise ConstraintError(f"{c.option} must be a positive number, got {value:g}")
            if c.unit == "%" and value > 100:
                raise ConstraintError(f"{c.option} is a percentage (0-100], got {value:g}")

    def active(self) -> list[tuple[Constraint, float | bool]]:
        """The constraints asked for, in the table's order, with their limits."""
        return [(c, getattr(self, c.name)) for c in CONSTRAINTS.values()
                if getattr(self, c.name) not in (None, False)]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, source: str = "constraints") -> Constraints:
        """From a JSON/TOML table; an unknown key is an error naming ``source`` and the known keys."""
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ConstraintError(f"{source}: unknown constraint(s) {', '.join(unknown)}; "
                                  f"known: {', '.join(CONSTRAINTS)}")
        try:
            return cls(**data)
        except ConstraintError as exc:
            raise ConstraintError(f"{source}: {exc}") from None
        except TypeError:
            raise ConstraintError(f"{source}: budget_ms is required") from None

    def overlay(self, data: dict | None, source: str = "constraints") -> Constraints:
        """These constraints with ``data``'s keys (e.g. a device's own, from devices.toml) taking precedence."""
        if not data:
            return self
        return Constraints.from_dict({**self.to_dict(), **data}, source)


@dataclass(frozen=True)
class Figure:
    """A measured figure with its interval (``low``/``high`` None: unbounded on that side)."""

    value: float | None  # None: not measured
    low: float | None = None
    high: float | None = None
    method: str = ""  # "order statistics", "Wilson on 500 images", "one measurement", "exact", ...

    @classmethod
    def point(cls, value: float | None, method: str) -> Figure:
        return cls(value, value, value, method)

    @property
    def is_point(self) -> bool:
        return self.value is not None and self.low == self.value == self.high


def _num(value: float | None, unit: str) -> str:
    if value is None:
        return "unbounded"
    return fmt_ms(value) if unit == "ms" else f"{value:.1f}" if unit in ("%", "MB") else f"{value:g}"


@dataclass(frozen=True)
class Judgement:
    """One constraint's verdict on one candidate, with the figure and its interval."""

    constraint: Constraint
    limit: float | bool
    verdict: str  # fits | does not fit | too close to call | not measured
    figure: Figure

    def text(self, confidence: float = 0.95) -> str:
        """``memory 61.2 MB (one measurement) <= 64 MB: fits``."""
        c, f = self.constraint, self.figure
        if f.value is None:
            return f"{c.short}: not measured"
        unit = c.unit
        value = f"{_num(f.value, unit)} {unit}".replace(" %", "%")
        if f.is_point or (f.low is None and f.high is None):
            spread = f"({f.method})" if f.method else ""
        else:
            spread = (f"({confidence:.0%} CI {_num(f.low, unit)}-{_num(f.high, unit)}{'' if unit == '%' else ' '}"
                      f"{unit}, {f.method})")
        if c.bound == "flag":
            rule = "on-chip only"
        else:
            rule = f"{'<=' if c.bound == 'max' else '>='} {self.limit:g}{'' if unit == '%' else ' '}{unit}"
        return f"{c.short} {value} {spread} {rule}: {self.verdict}".replace("  ", " ")

    def to_dict(self) -> dict:
        f = self.figure
        return {"constraint": self.constraint.name, "limit": self.limit, "verdict": self.verdict,
                "value": f.value, "low": f.low, "high": f.high, "unit": self.constraint.unit, "method": f.method}


def judge(constraint: Constraint, limit: float | bool, figure: Figure) -> Judgement:
    """The verdict of ``figure`` against ``limit`` (see the module doc for the rule)."""
    if figure.value is None:
        return Judgement(constraint, limit, NOT_MEASURED, figure)
    if constraint.bound == "flag":  # the figure is what breaks it (off-chip bytes): any of it does not fit
        return Judgement(constraint, limit, FITS if figure.value <= 0 else DOES_NOT_FIT, figure)
    low = figure.low if figure.low is not None else -math.inf
    high = figure.high if figure.high is not None else math.inf
    if constraint.bound == "max":
        verdict = FITS if high <= limit else DOES_NOT_FIT if low > limit else TOO_CLOSE
    else:
        verdict = FITS if low >= limit else DOES_NOT_FIT if high < limit else TOO_CLOSE
    return Judgement(constraint, limit, verdict, figure)


def overall(judgements) -> str:
    """A candidate's verdict over all its constraints: the worst one (not measured counts as fitting)."""
    verdicts = {j.verdict for j in judgements}
    if DOES_NOT_FIT in verdicts:
        return DOES_NOT_FIT
    if TOO_CLOSE in verdicts:
        return TOO_CLOSE
    return FITS
