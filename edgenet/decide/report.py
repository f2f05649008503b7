"""The run report: REPORT.md with the tables, results.json with the same numbers, and pictures.

The Markdown tables and ``results.json["tables"]`` are rendered from the same row dicts, so
what a reader sees is what a script reads. Pictures need matplotlib (the ``plot`` extra); it
is imported only here and only when a report is written, so the Pi install stays lean.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from ..errors import EdgenetError, MissingDependencyError
from ..family.counts import counts_if_known, variant_counts
from ..family.variants import BASELINE_NAMES, VARIANTS
from ..fsutil import atomic_write_bytes, atomic_write_text
from ..results.records import (
    PERCENTILES,
    AccuracyIndex,
    BenchRecord,
    Record,
    SettingKey,
    accuracy_index,
    latest_by,
    usable_bench,
)
from .select import Selection, top1_percent

__all__ = ["REPORT_SCHEMA", "TABLE_COLUMNS", "report_tables", "write_report"]

REPORT_SCHEMA = "edgenet.report/1"
LATENCY_COLUMNS = ("min", *PERCENTILES)
#: Column key -> (Markdown title, format of the value). The test parses the Markdown back.
TABLE_COLUMNS: dict[str, tuple[str, str]] = {
    "variant": ("variant", "s"),
    "quant": ("quant", "s"),
    "resolution": ("resolution", "d"),
    "params": ("params", "d"),
    "macs_m": ("MACs (M)", ".1f"),
    "size_mb": ("size (MB)", ".2f"),
    "min_ms": ("min ms", ".2f"),
    "p50_ms": ("p50 ms", ".2f"),
    "p90_ms": ("p90 ms", ".2f"),
    "p95_ms": ("p95 ms", ".2f"),
    "p99_ms": ("p99 ms", ".2f"),
    "top1": ("top-1 %", ".1f"),
    "pick": ("pick", "s"),
}


def _cell(value, fmt: str, missing: str = "–") -> str:
    if value is None:
        return missing
    if fmt == "s":
        return str(value)
    if fmt == "d":
        return str(int(value))
    return format(float(value), fmt)


def _markdown_table(rows: list[dict], missing: str = "–") -> str:
    titles = [title for title, _ in TABLE_COLUMNS.values()]
    lines = ["| " + " | ".join(titles) + " |", "|" + "---|" * len(titles)]
    for row in rows:
        cells = [
            _cell(row.get(key), fmt, row.get("_missing", missing))
            if key.endswith("_ms")
            else _cell(row.get(key), fmt, missing)
            for key, (_, fmt) in TABLE_COLUMNS.items()
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _latest_per_model(records: list[BenchRecord]) -> list[BenchRecord]:
    groups = latest_by(records, lambda r: (r.model_label, r.model.quant, r.setting))
    return [group[-1] for group in groups.values()]


def _row(record: BenchRecord, accuracy: AccuracyIndex, pick: bool) -> dict:
    model = record.model
    variant = record.model_label
    counts = counts_if_known(variant)
    macs = model.macs or (counts.macs if counts else None)
    size = model.size_bytes
    return {
        "variant": variant,
        "quant": model.quant,
        "resolution": model.resolution or (counts.resolution if counts else None),
        "params": model.params or (counts.params if counts else None),
        "macs": macs,
        "macs_m": None if macs is None else macs / 1e6,
        "size_bytes": size,
        "size_mb": None if size is None else size / 1e6,
        **{f"{p}_ms": record.stat_ms(p) for p in LATENCY_COLUMNS},
        "top1": top1_percent(accuracy.top1_fraction(record)),
        "pick": "yes" if pick else "",
        "samples_ms": list(record.samples_ms),
        "sha256": model.sha256,
    }


def _is_pick(record: BenchRecord, selection: Selection | None) -> bool:
    pick = selection.pick if selection else None
    return bool(
        pick and record.setting == selection.setting and pick.variant == record.model_label
        and pick.quant == record.model.quant
    )


def report_tables(records: list, selection: Selection | None) -> list[dict]:
    """One table per device + setting: rows of the latest successful bench of each model,
    largest first (by MACs)."""
    accuracy = accuracy_index(records)
    groups: dict[SettingKey, list[BenchRecord]] = {}
    for r in _latest_per_model(usable_bench(records)):
        groups.setdefault(r.setting, []).append(r)
    tables = []
    for key, group in sorted(groups.items(), key=lambda kv: kv[0] != (selection.setting if selection else None)):
        rows = [_row(r, accuracy, _is_pick(r, selection)) for r in group]
        rows.sort(key=lambda d: (-(d["macs"] or 0), d["p50_ms"] or 0, d["variant"]))
        tables.append({"setting": key.describe(), "setting_key": key.__dict__, "rows": rows})
    return tables


def _baseline_rows(tables: list[dict]) -> list[dict]:
    """MobileNetV2 and ResNet-50 as the paper compares them: measured if a bench record exists,
    otherwise their published counts with latency not measured."""
    measured = {row["variant"]: row for t in tables[:1] for row in t["rows"]}
    rows = []
    for name in BASELINE_NAMES:
        if name in measured:
            rows.append({**measured[name], "pick": "", "source": "measured"})
            continue
        pub = VARIANTS[name].published
        counts = variant_counts(name)
        rows.append(
            {
                "variant": name,
                "quant": None,
                "resolution": counts.resolution,
                "params": counts.params,
                "macs": counts.macs,
                "macs_m": counts.macs / 1e6 if counts.macs else None,
                "size_bytes": None,
                "size_mb": None,
                **{f"{p}_ms": None for p in LATENCY_COLUMNS},
                "top1": pub.top1,
                "pick": "",
                "samples_ms": [],
                "sha256": None,
                "source": "published (fp32 ImageNet top-1), not measured",
                "_missing": "not measured",
            }
        )
    return rows


def _figure():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependencyError("matplotlib", "plot", "drawing the report's pictures") from None
    fig = Figure(figsize=(7, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _plain_log_ticks(ax, which: str) -> None:
    """Log axes with plain numbers (50, 100, 200) instead of 5x10^1: easier to read against a budget."""
    from matplotlib.ticker import FuncFormatter

    def label(value, _pos, keep=("1", "2", "3", "5")) -> str:
        text = f"{value:g}"
        return text if text.lstrip("0.")[:1] in keep else ""  # 1, 2, 3, 5 per decade: no overlaps

    fmt = FuncFormatter(label)
    for axis in (ax.xaxis if "x" in which else None, ax.yaxis if "y" in which else None):
        if axis is not None:
            axis.set_major_formatter(fmt)
            axis.set_minor_formatter(fmt)


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    return atomic_write_bytes(path, buf.getvalue())


def _plot_latency_vs_macs(rows, budget_ms, stat, path: Path) -> Path:
    fig = _figure()
    ax = fig.add_subplot(111)
    key = f"{stat}_ms" if f"{stat}_ms" in rows[0] else "p50_ms"
    pts = [r for r in rows if r["macs"] and r[key] is not None]
    ax.scatter([r["macs"] / 1e6 for r in pts], [r[key] for r in pts], color="tab:blue", zorder=3)
    for r in pts:
        ax.annotate(r["variant"], (r["macs"] / 1e6, r[key]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    picks = [r for r in pts if r["pick"]]
    if picks:
        _mark_pick(ax, picks[0]["macs"] / 1e6, picks[0][key], picks[0]["variant"])
    if budget_ms is not None:
        ax.axhline(budget_ms, color="tab:red", linestyle="--", label=f"budget {budget_ms:g} ms")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_log_ticks(ax, "xy")
    ax.set_xlabel("multiply-adds (millions)")
    ax.set_ylabel(f"latency {key.removesuffix('_ms')} (ms)")
    ax.set_title("Latency against multiply-adds")
    ax.grid(True, which="both", alpha=0.3)
    if picks or budget_ms is not None:
        ax.legend()
    return _save(fig, path)


def _mark_pick(ax, x: float, y: float, variant: str) -> None:
    """The picked variant as a red star, named in the legend."""
    ax.scatter([x], [y], marker="*", s=250, color="tab:red", zorder=4, label=f"pick: {variant}")


def _plot_accuracy_vs_latency(rows, budget_ms, stat, path: Path) -> Path:
    fig = _figure()
    ax = fig.add_subplot(111)
    key = f"{stat}_ms" if f"{stat}_ms" in rows[0] else "p50_ms"
    pts = sorted((r for r in rows if r["top1"] is not None and r[key] is not None), key=lambda r: r[key])
    ax.scatter([r[key] for r in pts], [r["top1"] for r in pts], color="tab:blue", zorder=3)
    for r in pts:
        ax.annotate(r["variant"], (r[key], r["top1"]), textcoords="offset points", xytext=(4, -10), fontsize=8)
    frontier, best = [], -1.0  # Pareto: no faster model is at least as accurate
    for r in pts:
        if r["top1"] > best:
            frontier.append(r)
            best = r["top1"]
    ax.plot([r[key] for r in frontier], [r["top1"] for r in frontier], color="tab:green", label="Pareto front")
    picks = [r for r in pts if r["pick"]]
    if picks:
        _mark_pick(ax, picks[0][key], picks[0]["top1"], picks[0]["variant"])
    if budget_ms is not None:
        ax.axvline(budget_ms, color="tab:red", linestyle="--", label=f"budget {budget_ms:g} ms")
    ax.set_xlabel(f"latency {key.removesuffix('_ms')} (ms)")
    ax.set_ylabel("top-1 (%)")
    ax.set_title("Accuracy against latency")
    ax.grid(True, alpha=0.3)
    ax.legend()
    return _save(fig, path)


def _plot_distributions(rows, budget_ms, path: Path) -> Path:
    fig = _figure()
    ax = fig.add_subplot(111)
    pts = sorted((r for r in rows if r["samples_ms"]), key=lambda r: (r["macs"] or 0, r["variant"]))
    ax.boxplot([r["samples_ms"] for r in pts], showfliers=True)
    ax.set_xticks(range(1, len(pts) + 1), [r["variant"] for r in pts], rotation=30, fontsize=8)
    if budget_ms is not None:
        ax.axhline(budget_ms, color="tab:red", linestyle="--", label=f"budget {budget_ms:g} ms")
        ax.legend()
    ax.set_yscale("log")
    _plain_log_ticks(ax, "y")
    ax.set_ylabel("latency per invocation (ms)")
    ax.set_title("Latency distributions (every timed run)")
    ax.grid(True, axis="y", alpha=0.3)
    return _save(fig, path)


def _public(row: dict) -> dict:
    return {k: v for k, v in row.items() if not k.startswith("_") and k != "samples_ms"}


def write_report(
    rundir: str | Path,
    records: list[dict],
    selection: Selection | None,
    budget_ms: float | None,
    baselines: bool = False,
    stat: str | None = None,
) -> Path:
    """Write REPORT.md, results.json and the PNGs into ``rundir``; returns REPORT.md's path."""
    rundir = Path(rundir)
    stat = stat or (selection.stat if selection else "p50")
    if budget_ms is None and selection is not None:
        budget_ms = selection.budget_ms
    tables = report_tables(records, selection)
    if not tables:
        raise EdgenetError(f"{rundir}: no successful bench results to report")
    base_rows = _baseline_rows(tables) if baselines else []
    main_rows = [r for r in tables[0]["rows"] if not (baselines and r["variant"] in BASELINE_NAMES)]

    images = {
        "latency_vs_macs.png": _plot_latency_vs_macs(
            main_rows + [r for r in base_rows if r.get("source") == "measured"],
            budget_ms,
            stat,
            rundir / "latency_vs_macs.png",
        )
    }
    if any(r["top1"] is not None and r["p50_ms"] is not None for r in main_rows):
        images["accuracy_vs_latency.png"] = _plot_accuracy_vs_latency(
            main_rows, budget_ms, stat, rundir / "accuracy_vs_latency.png"
        )
    if any(r["samples_ms"] for r in main_rows):
        images["latency_distribution.png"] = _plot_distributions(
            main_rows, budget_ms, rundir / "latency_distribution.png"
        )

    lines = ["# edgenet report", ""]
    if budget_ms is not None:
        lines.append(f"Budget: **{budget_ms:g} ms** at {stat}.")
    if selection is not None:
        lines.append(f"Decision: {selection.message}.")
        lines += [f"- note: {n}" for n in selection.notes]
    lines.append("")
    for i, t in enumerate(tables):
        rows = main_rows if i == 0 else t["rows"]
        lines += [f"## {t['setting']}", "", _markdown_table(rows), ""]
        if i == 0:
            lines += [
                "MACs: multiply-adds (the paper's FLOPs); params and MACs from the model manifest or the "
                "analytic counts; top-1 where an eval record of the same model exists.",
                "",
            ]
    if base_rows:
        lines += [
            "## Reference models (MobileNetV2, ResNet-50)",
            "",
            _markdown_table(base_rows),
            "",
            "Reference rows without a bench record show published counts and fp32 top-1; "
            "their latency was not measured here.",
            "",
        ]
    lines += ["## Pictures", ""] + [f"![{name}]({name})" for name in images] + [""]

    payload = {
        "schema": REPORT_SCHEMA,
        "budget_ms": budget_ms,
        "stat": stat,
        "selection": selection.to_dict() if selection else None,
        "tables": [
            {
                "setting": t["setting"],
                "setting_key": t["setting_key"],
                "rows": [_public(r) for r in (main_rows if i == 0 else t["rows"])],
            }
            for i, t in enumerate(tables)
        ],
        "baselines": [_public(r) for r in base_rows],
        "images": list(images),
        "records": [r.raw if isinstance(r, Record) else r for r in records],
    }
    atomic_write_text(rundir / "results.json", json.dumps(payload, indent=2, default=str))
    return atomic_write_text(rundir / "REPORT.md", "\n".join(lines))
