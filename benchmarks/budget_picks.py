"""What ``edgenet convert --min-agreement`` keeps for the real Lite networks, and how that pick does on photos
nobody tuned on.

    .venv/bin/python benchmarks/budget_picks.py --evaluation benchmarks/results/quant_quality_dev200_set157.json
        [--nets lite0,lite1,lite2] [--budget 99.5] [--run-dir DIR]

For each network the user's command runs as a user runs it (``python -m edgenet convert NET --weights imagenet
--min-agreement BUDGET -o DIR``: the embedded calibration set, its held-out photos split into a choice half and a
report half). A model already in ``--run-dir`` and up to date is not converted again (the CLI's own check), so the
picks of an earlier run can be collected (``worker_seconds`` is then that run's). From each manifest: every rung the ladder tried with its paired comparison
against plain int8 (flips, tested over photos, and the close-call error ratio with its test), the rung kept, and
the agreement on both halves. The kept rung is then looked up in ``--evaluation``, a ``quant_quality.py`` results file
measured with the same calibration set (``default``): its agreement, flips and top-1 drop on those photos (e.g.
imagenet-dev200 and foolbox's, 220 labelled photos) with their intervals, against plain int8's.

Results: ``benchmarks/results/budget_picks.json`` (``--out``), with the machine line of
:mod:`edgenet.runtime.envinfo`. Agreement and flips do not depend on the machine; the conversion seconds do.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from quant_quality import _setting_name  # the names quant_quality.py's rows carry (this folder is on sys.path)

RESULTS = Path(__file__).resolve().parent / "results"
EVALUATION_FIELDS = ("top1_agreement_pct", "agreement_ci95_pct", "flips", "samples", "photos", "top1_drop_points",
                     "top1_drop_ci95_points", "vs_plain_int8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluation", type=Path, required=True,
                        help="a quant_quality.py results file measured with --calib default")
    parser.add_argument("--nets", default="lite0,lite1,lite2")
    parser.add_argument("--budget", type=float, default=99.5)
    parser.add_argument("--run-dir", type=Path, default=None, help="where the models go (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=RESULTS / "budget_picks.json")
    args = parser.parse_args()

    from edgenet.fsutil import atomic_write_text
    from edgenet.runtime.envinfo import device_info

    try:
        evaluation = json.loads(args.evaluation.read_text(encoding="utf-8"))
        rows = {(r["net"], r["setting"]): r for r in evaluation["rows"] if r.get("calibration") == "default"}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        parser.error(f"--evaluation {args.evaluation}: not a quant_quality.py results file ({type(exc).__name__})")
    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="budget-picks-"))
    nets = [n for n in args.nets.split(",") if n]
    out = []
    for net in nets:
        code = subprocess.run([sys.executable, "-m", "edgenet", "convert", net, "--weights", "imagenet",
                               "--min-agreement", f"{args.budget:g}", "-o", str(run_dir / net)]).returncode
        if code != 0:
            sys.exit(f"budget_picks.py: edgenet convert {net} exited with {code} (its error is above)")
        manifest = json.loads((run_dir / net / f"{net}-int8.json").read_text())
        quality = manifest["quality"]
        budget = quality["budget"]
        kept = _setting_name(quality)
        evaluated = rows.get((net, kept))
        plain = rows.get((net, "minmax"))
        out.append({
            "net": net, "kept": kept, "met": budget["met"], "worker_seconds": manifest.get("worker_time_s"),
            "converted_at": manifest.get("created_utc"),
            "choice": {"agreement_pct": budget["reached_pct"], "ci95_pct": budget["reached_ci95_pct"],
                       "images": budget["choice_images"], "samples": budget["choice_samples"]},
            "report": budget["report"],
            "kept_vs_plain_int8": budget["vs_plain_int8"],
            "steps": [{"setting": _setting_name(s), "agreement_pct": round(100 * s["top1_agreement"], 2),
                       "vs_plain_int8": s["vs_plain_int8"]} for s in budget["steps"]],
            "on_evaluation": None if evaluated is None else {k: evaluated.get(k) for k in EVALUATION_FIELDS},
            "plain_int8_on_evaluation": None if plain is None else {k: plain.get(k) for k in EVALUATION_FIELDS},
        })
    result = {
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": f"benchmarks/budget_picks.py --evaluation {args.evaluation} --nets {args.nets} "
                   f"--budget {args.budget:g}",
        "machine": device_info()["measured_on"],
        "evaluation": {"file": str(args.evaluation), "photos": evaluation.get("evaluation_photos"),
                       "created": evaluation.get("created")},
        "nets": out,
    }
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    for r in out:
        ev, pl = r["on_evaluation"], r["plain_int8_on_evaluation"]
        print(f"{r['net']}: kept {r['kept']}; choice {r['choice']['agreement_pct']:.1f} %, report "
              f"{r['report']['top1_agreement_pct']:.1f} %" + (
                  f"; on {ev['photos']} evaluation photos {ev['top1_agreement_pct']:.2f} % ({ev['flips']} flips), "
                  f"drop {ev['top1_drop_points']:+.2f} pt; plain int8 {pl['top1_agreement_pct']:.2f} % "
                  f"({pl['flips']} flips), drop {pl['top1_drop_points']:+.2f} pt" if ev and pl else ""))


if __name__ == "__main__":
    main()
