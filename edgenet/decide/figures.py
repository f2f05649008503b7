"""The report's pictures, and the per-row trust columns they draw (interval, verdicts).

Every axis is labelled with values: log-scaled latency axes get ticks chosen for the range they
show (:func:`log_ticks`: 1-2-5 per decade over a wide range, every integer step within one), so
a run whose latencies span 6.7-10.9 ms reads 7, 8, 9, 10 rather than one lonely "10". Latencies
carry their confidence interval as error bars; records whose runs are unstable (drift, several
modes, throttling, too few runs) are ringed in orange and named in the legend.

matplotlib is imported only when a picture is drawn (the ``plot`` extra).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from ..errors import MissingDependencyError
from ..fsutil import atomic_write_bytes
from .confidence import CONFIDENCE, budget_verdict, interval_for, stability
from .objective import published_top1

__all__ = [
    "accuracy_vs_latency",
    "annotate_rows",
    "latency_distribution",
    "latency_vs_macs",
    "log_axis",
    "log_ticks",
]

UNSTABLE_COLOUR = "tab:orange"


def annotate_rows(rows: list[dict], records: list[dict], stat: str, budget_ms: float | None,
                  confidence: float = CONFIDENCE) -> None:
    """Add ``ci`` (text), ``ci_low_ms``/``ci_high_ms``, ``verdict``, ``stability``/``stable``,
    ``agreement`` (percent) and ``published_top1`` (context) to report rows, in place."""
    from ..results.records import EvalRecord, as_records

    agreement: dict[str, float] = {}
    for r in sorted(as_records(records), key=lambda r: r.created_utc):
        if isinstance(r, EvalRecord) and r.ok and r.model.sha256 and r.agreement_top1_fraction is not None:
            agreement[r.model.sha256] = 100.0 * r.agreement_top1_fraction
    for row in rows:
        samples = row.get("samples_ms") or []
        device = row.get("_device") or {}
        interval = interval_for(samples, stat, confidence) if samples else None
        value = row.get(f"{stat}_ms")
        row["ci"] = interval.describe().removesuffix(" ms") if interval is not None else None
        row["ci_low_ms"] = interval.low_ms if interval is not None else None
        row["ci_high_ms"] = interval.high_ms if interval is not None else None
        row["verdict"] = (budget_verdict(interval, value, budget_ms)
                          if budget_ms is not None and value is not None else None)
        if samples:
            verdict = stability(samples, stat, device.get("throttled_before"), device.get("throttled_after"),
                                confidence)
            row["stability"], row["stable"] = verdict.verdict, verdict.stable
        else:
            row["stability"], row["stable"] = None, None
        row["agreement"] = agreement.get(row.get("sha256"))
        row["published_top1"] = published_top1(row.get("variant") or "")


# --- axes -----------------------------------------------------------------------------------------

_SUBS = ((1.0,), (1.0, 2.0, 5.0), (1.0, 2.0, 3.0, 5.0), (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0))


def log_ticks(low: float, high: float, min_ticks: int = 4) -> list[float]:
    """Tick values for a log axis from ``low`` to ``high``: the coarsest 1-2-5-style series that puts
    at least ``min_ticks`` ticks in the range, else evenly spaced round numbers (a narrow range)."""
    if not (low > 0 and high > low):
        return [low] if low > 0 else []
    decades = range(math.floor(math.log10(low)) - 1, math.ceil(math.log10(high)) + 1)
    for subs in _SUBS:
        ticks = sorted({round(m * 10.0**e, 12) for e in decades for m in subs if low <= m * 10.0**e <= high})
        if len(ticks) >= min_ticks:
            return ticks
    from matplotlib.ticker import MaxNLocator

    return [float(t) for t in MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]).tick_values(low, high)
            if low <= t <= high]


def _tick_text(value: float) -> str:
    return f"{value:g}" if value >= 0.01 else f"{value:.2g}"


def log_axis(ax, which: str, values: list[float], pad: float = 1.15) -> None:
    """Log scale on ``which`` ("x"/"y") spanning ``values``, with labelled ticks (no 10^n notation)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    values = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    if not values:
        return
    low, high = min(values) / pad, max(values) * pad
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    (ax.set_xlim if which == "x" else ax.set_ylim)(low, high)
    axis.set_major_locator(FixedLocator(log_ticks(low, high)))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: _tick_text(v)))
    axis.set_minor_formatter(NullFormatter())


# --- pictures -------------------------------------------------------------------------------------


def _figure():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependencyError("matplotlib", "plot", "drawing the report's pictures") from None
    fig = Figure(figsize=(7.5, 4.8), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    return atomic_write_bytes(path, buf.getvalue())


def _errors(rows: list[dict], key: str) -> tuple[list[float], list[float], list[bool]]:
    """Distances below/above each value to its interval's ends; an unbounded end is drawn to the
    slowest run and flagged."""
    below, above, open_ended = [], [], []
    for r in rows:
        value = r[key]
        low = r.get("ci_low_ms")
        high = r.get("ci_high_ms")
        samples = r.get("samples_ms") or []
        unbounded = r.get("ci") is not None and high is None
        if high is None and unbounded and samples:
            high = max(samples)
        below.append(max(value - low, 0.0) if low is not None else 0.0)
        above.append(max(high - value, 0.0) if high is not None else 0.0)
        open_ended.append(unbounded)
    return below, above, open_ended


def short_name(variant: str) -> str:
    """A point's label: the table name, or a custom spec's compact name (phi0-w0.25-d0.25-r32)."""
    from ..errors import VariantError
    from ..family.variants import parse_variant

    try:
        return parse_variant(variant).name
    except (VariantError, ValueError):
        return variant


def _annotate(ax, rows: list[dict], xs: list[float], ys: list[float]) -> None:
    """Name every point, alternately below and above it so that neighbours do not overprint."""
    for i, (r, x, y) in enumerate(zip(rows, xs, ys, strict=True)):
        ax.annotate(short_name(r["variant"]), (x, y), textcoords="offset points", xytext=(6, -12 if i % 2 else 6),
                    fontsize=8)


def _mark_pick(ax, x: float, y: float, variant: str) -> None:
    ax.scatter([x], [y], marker="*", s=260, color="tab:red", zorder=5, label=f"pick: {short_name(variant)}")


def _mark_unstable(ax, xs: list[float], ys: list[float]) -> None:
    if xs:
        ax.scatter(xs, ys, s=200, facecolors="none", edgecolors=UNSTABLE_COLOUR, linewidths=1.8, zorder=4,
                   label="unstable runs (see table)")


def _value_key(rows: list[dict], stat: str) -> str:
    return f"{stat}_ms" if rows and f"{stat}_ms" in rows[0] else "p50_ms"


def latency_vs_macs(rows: list[dict], budget_ms: float | None, stat: str, path: Path) -> Path:
    """Latency (with its interval) against multiply-adds, log-log, the budget line and the pick."""
    fig = _figure()
    ax = fig.add_subplot(111)
    key = _value_key(rows, stat)
    pts = sorted((r for r in rows if r["macs"] and r[key] is not None), key=lambda r: r["macs"])
    xs = [r["macs"] / 1e6 for r in pts]
    ys = [r[key] for r in pts]
    below, above, open_ended = _errors(pts, key)
    ax.errorbar(xs, ys, yerr=[below, above], fmt="o", color="tab:blue", ecolor="tab:blue", capsize=4, zorder=3,
                label=f"{key.removesuffix('_ms')} with {CONFIDENCE:.0%} interval")
    if any(open_ended):
        ax.scatter([x for x, o in zip(xs, open_ended, strict=True) if o],
                   [y + a for y, a, o in zip(ys, above, open_ended, strict=True) if o],
                   marker="^", color="tab:purple", zorder=4, label="interval unbounded above (too few runs)")
    _annotate(ax, pts, xs, ys)
    _mark_unstable(ax, [x for r, x in zip(pts, xs, strict=True) if r.get("stable") is False],
                   [y for r, y in zip(pts, ys, strict=True) if r.get("stable") is False])
    picks = [r for r in pts if r["pick"]]
    if picks:
        _mark_pick(ax, picks[0]["macs"] / 1e6, picks[0][key], picks[0]["variant"])
    if budget_ms is not None:
        ax.axhline(budget_ms, color="tab:red", linestyle="--", label=f"budget {budget_ms:g} ms")
    log_axis(ax, "x", xs)
    log_axis(ax, "y", ys + [y + a for y, a in zip(ys, above, strict=True)]
              + [y - b for y, b in zip(ys, below, strict=True)] + ([budget_ms] if budget_ms else []))
    ax.set_xlabel("multiply-adds (millions, log scale)")
    ax.set_ylabel(f"latency {key.removesuffix('_ms')} (ms, log scale)")
    ax.set_title("Latency against multiply-adds")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def accuracy_vs_latency(rows: list[dict], budget_ms: float | None, stat: str, path: Path) -> Path:
    """Measured top-1 against latency (with its interval): the Pareto front, the budget and the pick."""
    fig = _figure()
    ax = fig.add_subplot(111)
    key = _value_key(rows, stat)
    pts = sorted((r for r in rows if r["top1"] is not None and r[key] is not None), key=lambda r: r[key])
    xs = [r[key] for r in pts]
    ys = [r["top1"] for r in pts]
    below, above, _ = _errors(pts, key)
    ax.errorbar(xs, ys, xerr=[below, above], fmt="o", color="tab:blue", capsize=4, zorder=3,
                label=f"measured top-1; {key.removesuffix('_ms')} with {CONFIDENCE:.0%} interval")
    _annotate(ax, pts, xs, ys)
    frontier, best = [], -1.0  # Pareto: no faster model is at least as accurate
    for r in pts:
        if r["top1"] > best:
            frontier.append(r)
            best = r["top1"]
    ax.plot([r[key] for r in frontier], [r["top1"] for r in frontier], color="tab:green", label="Pareto front")
    _mark_unstable(ax, [r[key] for r in pts if r.get("stable") is False],
                   [r["top1"] for r in pts if r.get("stable") is False])
    picks = [r for r in pts if r["pick"]]
    if picks:
        _mark_pick(ax, picks[0][key], picks[0]["top1"], picks[0]["variant"])
    if budget_ms is not None:
        ax.axvline(budget_ms, color="tab:red", linestyle="--", label=f"budget {budget_ms:g} ms")
    log_axis(ax, "x", xs + [x + a for x, a in zip(xs, above, strict=True)]
              + [x - b for x, b in zip(xs, below, strict=True)] + ([budget_ms] if budget_ms else []))
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))
    low, high = min(ys), max(ys)
    margin = max(1.0, 0.1 * (high - low))
    ax.set_ylim(low - margin, high + margin)
    ax.set_xlabel(f"latency {key.removesuffix('_ms')} (ms, log scale)")
    ax.set_ylabel("top-1 measured on your images (%)")
    ax.set_title("Accuracy against latency")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def latency_distribution(rows: list[dict], budget_ms: float | None, path: Path) -> Path:
    """Every timed run of every model as a box plot; unstable records in orange, named so."""
    fig = _figure()
    ax = fig.add_subplot(111)
    pts = sorted((r for r in rows if r["samples_ms"]), key=lambda r: (r["macs"] or 0, r["variant"]))
    boxes = ax.boxplot([r["samples_ms"] for r in pts], showfliers=True, patch_artist=True)
    for box, r in zip(boxes["boxes"], pts, strict=True):
        box.set_facecolor("#fde0c5" if r.get("stable") is False else "#dbe9f6")
        box.set_edgecolor(UNSTABLE_COLOUR if r.get("stable") is False else "tab:blue")
    names = [short_name(r["variant"]) + ("\n(unstable)" if r.get("stable") is False else "") for r in pts]
    ax.set_xticks(range(1, len(pts) + 1), names, rotation=0 if len(pts) <= 6 else 30, fontsize=8)
    for label, r in zip(ax.get_xticklabels(), pts, strict=True):
        if r.get("stable") is False:
            label.set_color(UNSTABLE_COLOUR)
    if budget_ms is not None:
        ax.axhline(budget_ms, color="tab:red", linestyle="--", label=f"budget {budget_ms:g} ms")
        ax.legend(fontsize=8)
    everything = [x for r in pts for x in r["samples_ms"]] + ([budget_ms] if budget_ms else [])
    log_axis(ax, "y", everything, pad=1.05)
    ax.set_xlabel("model, by multiply-adds (orange: unstable runs)")
    ax.set_ylabel("latency per invocation (ms, log scale)")
    ax.set_title("Latency distributions (every timed run)")
    ax.grid(True, axis="y", alpha=0.3)
    return _save(fig, path)
