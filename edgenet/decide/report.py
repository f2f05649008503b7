"""The run report: REPORT.md with the tables, results.json with the same numbers, and pictures.

The Markdown tables and ``results.json["tables"]`` are rendered from the same row dicts, so
what a reader sees is what a script reads. Pictures need matplotlib (the ``plot`` extra); it
is imported only here and only when a report is written, so the Pi install stays lean.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ..errors import EdgenetError
from ..family.counts import counts_if_known, variant_counts
from ..family.variants import BASELINE_NAMES, VARIANTS
from ..fsutil import atomic_write_text
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
    "ci": ("95% CI ms", "s"),
    "verdict": ("budget verdict", "s"),
    "stability": ("stability", "s"),
    "agreement": ("agreement with float %", ".1f"),
    "published_top1": ("published fp32 top-1 % (context)", ".1f"),
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
        "_device": record.raw.get("device") or {},
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


def _measured_on(rows: list[dict]) -> str:
    """The "measured on" line of the pick's record (else the largest row's), as its record stores it;
    records written before the line existed get it built from their device block, by the same function."""
    from ..runtime.envinfo import measured_on

    if not rows:
        return "unknown"
    row = next((r for r in rows if r.get("pick")), rows[0])
    device = row.get("_device") or {}
    line = device.get("measured_on")
    return line if isinstance(line, str) and line else measured_on(device)


def _public(row: dict) -> dict:
    return {k: v for k, v in row.items() if not k.startswith("_") and k != "samples_ms"}


def _plain_table(rows: list[dict]) -> str:
    """A markdown table of text cells, the columns of the first row ("|" escaped)."""
    if not rows:
        return ""
    titles = list(rows[0])
    lines = ["| " + " | ".join(titles) + " |", "|" + "---|" * len(titles)]
    lines += ["| " + " | ".join(str(r.get(t, "")).replace("|", "\\|") for t in titles) + " |" for r in rows]
    return "\n".join(lines)


def _constraint_section(decision) -> list[str]:
    """Every candidate's verdict on each constraint, when more than the budget was asked."""
    if decision.constraints is None or len(decision.constraints.active()) < 2:
        return []
    names = [c for c, _ in decision.constraints.active()]
    rows = [{"variant": f"{a.candidate.variant} ({a.candidate.quant or '?'})", "verdict": a.verdict,
             **{c.short: j.text(decision.confidence).removeprefix(f"{c.short} ").removeprefix(f"{c.short}: ")
                for c, j in zip(names, a.judgements, strict=True)}} for a in decision.assessments]
    return ["", "## Constraints", "", _plain_table(rows), ""]


def _alternatives_section(alternatives, stat: str) -> list[str]:
    """What would fit: one row per alternative, measured or predicted."""
    rows = []
    for a in alternatives:
        p = a.proposal
        interval = "" if a.low_ms is None and a.high_ms is None else (
            f"{'' if a.low_ms is None else f'{a.low_ms:.2f}'}-{'' if a.high_ms is None else f'{a.high_ms:.2f}'}")
        rows.append({"instead of": p.of, "try": p.change, "how": a.how,
                     f"{stat} ms": "" if a.latency_ms is None else f"{a.latency_ms:.2f}",
                     "interval ms": interval, "verdict": a.verdict or "not measured",
                     "other constraints": "; ".join(j.text() for j in a.judgements[1:]) or "",
                     "note": a.note})
    return ["", "## What would fit", "",
            "Nothing fits every constraint; these changes were tried for the largest candidate that failed and the "
            "smallest one. Measured rows ran on this device (95% interval from their runs); predicted rows come "
            "from the latency model (its error band), not from a measurement.", "",
            _plain_table(rows), ""]


def write_report(
    rundir: str | Path,
    records: list[dict],
    selection: Selection | None,
    budget_ms: float | None,
    baselines: bool = False,
    stat: str | None = None,
    decision=None,
    notes: Sequence[str] = (),
    alternatives: Sequence = (),
) -> Path:
    """Write REPORT.md, results.json and the PNGs into ``rundir``; returns REPORT.md's path.

    With a ``decision`` (:class:`edgenet.decide.decision.Decision`) its pick is marked and its
    sentence is the report's (``notes``: the caller's own lines, e.g. the sweep's); every row gets the interval of
    ``stat``, its budget verdict and its stability verdict either way (:func:`edgenet.decide.figures.annotate_rows`).
    With constraints beyond the budget, a table of every candidate's verdict on each; with ``alternatives``
    (:class:`edgenet.decide.alternatives.Alternative`, when nothing fits) the table of what would.
    """
    from dataclasses import replace

    from . import figures
    from .figures import annotate_rows

    rundir = Path(rundir)
    stat = stat or (selection.stat if selection else "p50")
    if budget_ms is None and selection is not None:
        budget_ms = selection.budget_ms
    if decision is not None:
        selection = replace(decision.selection, pick=decision.pick.candidate if decision.pick else None)
    tables = report_tables(records, selection)
    for t in tables:
        annotate_rows(t["rows"], records, stat, budget_ms)
    if not tables:
        emulated = usable_bench(records, emulated=True)
        why = (": its bench results come from an emulated device, whose latency is the emulator's, not the board's"
               if emulated else "")
        raise EdgenetError(f"{rundir}: no successful bench results to report{why}")
    base_rows = _baseline_rows(tables) if baselines else []
    annotate_rows(base_rows, records, stat, budget_ms)
    main_rows = [r for r in tables[0]["rows"] if not (baselines and r["variant"] in BASELINE_NAMES)]

    images = {
        "latency_vs_macs.png": figures.latency_vs_macs(
            main_rows + [r for r in base_rows if r.get("source") == "measured"],
            budget_ms,
            stat,
            rundir / "latency_vs_macs.png",
        )
    }
    if any(r["top1"] is not None and r["p50_ms"] is not None for r in main_rows):
        images["accuracy_vs_latency.png"] = figures.accuracy_vs_latency(
            main_rows, budget_ms, stat, rundir / "accuracy_vs_latency.png"
        )
    if any(r["samples_ms"] for r in main_rows):
        images["latency_distribution.png"] = figures.latency_distribution(
            main_rows, budget_ms, rundir / "latency_distribution.png"
        )

    lines = ["# edgenet report", ""]
    if budget_ms is not None:
        lines.append(f"Budget: **{budget_ms:g} ms** at {stat}.")
    if decision is not None:
        lines.append(f"Decision: {decision.message}.")
        lines.append(f"Objective: {decision.objective_reason}.")
        lines += [f"- note: {n}" for n in decision.notes]
        lines += _constraint_section(decision)
    if alternatives:
        lines += _alternatives_section(alternatives, stat)
    elif selection is not None and decision is None:  # a decision already said what the selection would
        lines.append(f"Decision: {selection.message}.")
        lines += [f"- note: {n}" for n in selection.notes]
    lines += [f"- note: {n}" for n in notes]
    lines.append("")
    for i, t in enumerate(tables):
        rows = main_rows if i == 0 else t["rows"]
        lines += [f"## {t['setting']}", "", f"Measured on: {_measured_on(rows)} (the {'pick' if any(r.get('pick') for r in rows) else 'largest model'}'s record; every record holds its own line).", "", _markdown_table(rows), ""]
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
        "decision": decision.to_dict() if decision is not None else None,
        "alternatives": [a.to_dict() for a in alternatives],
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
