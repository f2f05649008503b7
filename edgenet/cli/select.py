"""``edgenet select``, ``edgenet predict-latency`` and ``edgenet report``: the decision layer."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..errors import InputFileError
from ..fsutil import read_input_text
from . import options
from .common import emit_json, info, table, user_errors


def _read_all(paths) -> list[dict]:
    from ..results import read_records

    records: list[dict] = []
    for path in paths:
        records.extend(read_records(path))
    return records


def _fmt(value, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def _candidate_rows(decision) -> list[dict]:
    rows = []
    for a in decision.assessments:
        c = a.candidate
        rows.append({
            "variant": c.variant,
            "quant": c.quant or "?",
            "macs_m": _fmt(c.macs / 1e6 if c.macs else None, ".1f"),
            "latency": f"{c.latency_ms:.2f}",
            "interval": a.interval.describe() if a.interval else "no raw runs",
            "verdict": a.verdict,
            "margin": f"{c.margin_ms:+.2f} ({c.margin_pct:+.1f}%)",
            "top1": _fmt(c.top1, ".1f"),
            "top1_published": _fmt(a.published_top1, ".1f"),
            "stability": a.stability.verdict,
            "reason": a.reason + ("".join(f" [{f}]" for f in c.flags)),
            "constraints": "; ".join(a.verdict_lines(decision.confidence)[1:]),
        })
    return rows


def _suggestion(records, selection, device, threads):
    """A custom phi between the pick and the next larger measured B variant, if the model allows."""
    from ..decide.latency_model import LatencyModel, suggest_custom_phi
    from ..family.variants import VARIANTS

    def published_b(name: str) -> bool:  # a row of the variant table in the B family (not Lite, not custom)
        return name in VARIANTS and VARIANTS[name].family == "efficientnet"

    pick = selection.pick
    larger = [
        c
        for c in selection.candidates
        if c.macs and pick.macs and c.macs > pick.macs and not c.fits and published_b(c.variant)
    ]
    if not published_b(pick.variant) or not larger:
        return None, "no larger published B variant was measured over budget: no custom phi to suggest"
    nxt = min(larger, key=lambda c: c.macs)
    model = LatencyModel.fit(records, stat=selection.stat, device=device, threads=threads)
    return suggest_custom_phi(model, selection.budget_ms, pick.variant, nxt.variant), None


def _predicted_alternatives(records, decision, device, threads) -> list:
    """When nothing fits: the sizes that might (the Lite variant of the same size, a smaller phi), predicted from
    the latency model of these results; measuring them, and other threads and engines, is `edgenet sweep`'s job."""
    from ..decide.alternatives import predicted, propose

    if decision.pick is not None:
        return []
    found = []
    for p in propose(decision, threads=decision.selection.setting.threads or 1):
        a = predicted(p, records, decision.constraints, decision.stat, threads=threads, device=device)
        if a is not None:
            found.append(a)
    return found


@click.command("select")
@click.argument("results", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@options.budget_ms()
@options.stat(help="Latency statistic to hold to the budget.")
@options.constraints()
@options.objective()
@options.device_filter()
@options.threads(default=None, reason="a filter: results of any thread count unless told",
                 help="Only results measured with this many threads.")
@click.option(
    "--suggest-phi",
    is_flag=True,
    help="Also predict a custom phi between the pick and the next size that fits the budget more tightly.",
)
@options.json_flag(help="Print the decision as JSON on stdout.")
@user_errors
def select(results, budget_ms, stat, objective, device, threads, suggest_phi, as_json, **limits):
    """Pick the largest (or most accurate) variant whose measured latency surely fits the budget.

    Each candidate's latency comes with a 95% confidence interval from its timed runs: "fits"
    (all of it within the budget), "does not fit", or "too close to call on this device". Every
    other constraint asked for (memory, size, top-1, agreement, Edge TPU on-chip) gets the same
    three verdicts with its own interval; when nothing fits, the sizes that might are predicted.

    \b
    Example:
      edgenet select runs/pi4/results.jsonl --budget-ms 50 --stat p90
    Exits 1 when no variant fits (naming the closest).
    """
    from ..decide.constraints import Constraints
    from ..decide.decision import decide

    records = _read_all(results)
    constraints = Constraints(budget_ms=budget_ms, **limits)
    min_top1 = constraints.min_top1
    decision = decide(records, stat=stat, objective=objective, device=device, threads=threads,
                      constraints=constraints)
    selection = decision.selection
    suggestion, why_not = (None, None)
    if suggest_phi and selection.pick is not None:
        suggestion, why_not = _suggestion(records, selection, device, threads)
    alternatives = _predicted_alternatives(records, decision, device, threads)
    if as_json:
        payload = decision.to_dict()
        payload["alternatives"] = [a.to_dict() for a in alternatives]
        if suggest_phi:
            payload["suggested_phi"] = suggestion.to_dict() if suggestion else None
        emit_json(payload)
    else:
        info(
            f"{selection.setting.describe()}: budget {budget_ms:g} ms at {stat}"
            + (f", top-1 floor {min_top1:g}%" if min_top1 is not None else "")
            + f"; objective: {decision.objective_reason}"
        )
        click.echo(
            table(
                _candidate_rows(decision),
                {
                    "variant": "variant",
                    "quant": "quant",
                    "macs_m": "MACs (M)",
                    "latency": f"{stat} ms",
                    "interval": f"{decision.confidence:.0%} CI",
                    "verdict": "verdict",
                    "margin": "margin ms (%)",
                    "top1": "measured top-1 %",
                    "top1_published": "published top-1 %",
                    "stability": "stability",
                    "reason": "reason",
                    **({"constraints": "other constraints"} if len(constraints.active()) > 1 else {}),
                },
            )
        )
        for a in alternatives:
            info(f"alternative: {a.line(stat, decision.confidence)}")
        for note in decision.notes:
            info(f"note: {note}")
        if suggest_phi:
            if suggestion:
                info(
                    f"suggestion: {suggestion.spec} predicted {suggestion.predicted_ms:.2f} ms "
                    f"(±{suggestion.rel_uncertainty:.0%}) between {suggestion.lo_variant} and "
                    f"{suggestion.hi_variant}; convert and measure it to confirm"
                )
            else:
                info(f"suggestion: {why_not or 'even the smaller variant is predicted over budget'}")
    info(decision.message)
    if decision.pick is None:
        sys.exit(1)


@click.command("predict-latency")
@click.argument("results", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@options.deprecated("--results", "results_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
                    instead="predict-latency RESULTS... (the files as arguments, as select takes them)")
@options.variant(multiple=True, reason="predicts several variants at once",
                 help="Variant name or custom spec (phi=2.5); repeatable.")
@options.stat()
@options.device_filter()
@options.threads(default=None, reason="a filter: results of any thread count unless told",
                 help="Only results measured with this many threads.")
@options.json_flag(help="Print the prediction and the fitted model as JSON.")
@user_errors
def predict_latency(results, results_path, variants, stat, device, threads, as_json):
    """Predict a variant's latency from the variants already measured on a device (RESULTS: JSON-lines results
    with >= 3 measured variants on one device and thread setting).

    \b
    Example:
      edgenet predict-latency runs/pi4/results.jsonl --variant b4 --variant phi=3.5
    """
    from ..decide.latency_model import LatencyModel

    paths = [*results, *([results_path] if results_path else [])]
    if not paths:
        raise click.UsageError("give the results file(s): edgenet predict-latency RESULTS... --variant V")
    model = LatencyModel.fit(_read_all(paths), stat=stat, device=device, threads=threads)
    predictions = [model.predict_detail(v) for v in variants]
    if as_json:
        emit_json({"predictions": [p.to_dict() for p in predictions], "model": model.to_dict()})
        return
    info(
        f"{model.setting}: model '{model.form}' fitted on {', '.join(model.measured_ms)}; "
        f"leave-one-out error rms {model.loo_rms_rel_error:.1%}, worst {model.loo_max_abs_rel_error:.1%}"
    )
    for note in model.notes:
        info(f"note: {note}")
    click.echo(
        table(
            [
                {
                    "variant": p.variant,
                    "predicted": f"{p.latency_ms:.2f}",
                    "range": f"{p.low_ms:.2f}-{p.high_ms:.2f}",
                    "measured": _fmt(p.measured_ms, ".2f"),
                    "note": "extrapolated" if p.extrapolated else "",
                }
                for p in predictions
            ],
            {
                "variant": "variant",
                "predicted": f"predicted {stat} ms",
                "range": "range ms",
                "measured": "measured ms",
                "note": "note",
            },
        )
    )


@click.command("report")
@click.argument("rundir", type=click.Path(file_okay=False, path_type=Path))
@options.budget_ms(required=False, help="Budget to select against (default: the one in RUNDIR/selection.json or "
                                        "RUNDIR/sweep.json, if any).")
@options.stat(default=None, reason="the run's own statistic unless told",
              help="Latency statistic (default: the selection's, or p50).")
@click.option("--baselines", is_flag=True, help="Add MobileNetV2 and ResNet-50 reference rows.")
@user_errors
def report(rundir, budget_ms, stat, baselines):
    """Write REPORT.md, results.json and PNG charts for a run folder.

    \b
    Reads RUNDIR/results.jsonl (and RUNDIR/selection.json when present).
    Example:
      edgenet report runs/pi4 --budget-ms 50 --baselines
    """
    from ..decide.decision import decide
    from ..decide.report import write_report
    from ..decide.select import Selection
    from ..errors import EdgenetError

    records = _read_all([rundir / "results.jsonl"])
    selection = decision = None
    sel_path = rundir / "selection.json"
    sweep_path = rundir / "sweep.json"
    sweep_params = {}
    if budget_ms is None and not sel_path.exists() and sweep_path.exists():
        try:  # a sweep's run folder: decide again against the sweep's own budget, statistic and objective
            sweep_params = json.loads(read_input_text(sweep_path, "a sweep.json")).get("params") or {}
            budget_ms = float(sweep_params["budget_ms"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InputFileError(sweep_path, f"not a sweep written by edgenet: {exc}") from None
        stat = stat or sweep_params.get("stat")
    if budget_ms is None and sel_path.exists():
        try:
            selection = Selection.from_dict(json.loads(read_input_text(sel_path, "a selection.json")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputFileError(sel_path, f"not a selection written by edgenet: {exc}") from None
    elif budget_ms is not None:
        try:
            decision = decide(records, budget_ms, stat=stat or "p50", objective=sweep_params.get("objective"),
                              min_top1=sweep_params.get("min_top1"), threads=sweep_params.get("threads"))
            selection = decision.selection
        except EdgenetError as exc:
            info(f"no selection in the report: {exc}")
    path = write_report(rundir, records, selection, budget_ms, baselines=baselines, stat=stat, decision=decision)
    info(f"wrote {path}")
    if decision is not None:
        info(decision.message)
    elif selection is not None:
        info(selection.message)
    click.echo(str(path))
