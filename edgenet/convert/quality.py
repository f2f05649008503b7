"""Repairs of a full-integer model, and the accuracy budget that decides how far to go.

``--ranges`` (:mod:`edgenet.convert.ranges`) and ``--bias-correction`` (:mod:`edgenet.convert.bias`)
apply as asked. ``--min-agreement P`` instead starts from plain int8 (min/max ranges) and climbs
:data:`LADDER` only as far as needed for the top-1 agreement with the float model on the held-out
images to reach ``P`` percent: bias correction, then per-tensor ``auto`` ranges, then both, then
(:data:`ROUNDING_LADDER`, int8 only) int8 weights re-rounded to minimise each op's output error
(``--weight-rounding``, :mod:`edgenet.convert.rounding`) followed by bias correction, with min/max then
auto ranges. Every integer rung keeps the model full-integer with the same operators, shapes and
scales as plain int8 (only ranges, bias values and weight values differ), so it is valid for
``--target edgetpu`` and costs no latency by construction (``benchmarks/quant_quality.py`` and
``benchmarks/weight_rounding.py`` measure it anyway).

Precision rungs (CPU targets only) come after the integer ladder when it misses the budget. A
precision rung is a function ``(bytes of the best integer rung, names of the ops to upgrade) ->
bytes``; each kind is one more entry of ``precision``, tried in order: ``int16`` with ``--allow-int16``
(16-bit activations for the named tensors, still full-integer: :mod:`edgenet.convert.mixed`, quantized
again from the float model with min/max ranges, :data:`PRECISION_BASIS`), then ``float`` with
``--allow-float`` (:func:`edgenet.convert.worker.keras_to_tflite` with ``float_nodes``). A precision
rung is kept only when it raises the agreement, counted and expected (it costs latency; a better SQNR alone does not pay). The ops are
taken worst first from the quant report's ranking (lowest local SQNR, :mod:`edgenet.convert.
tensor_errors`) measured on *calibration* samples, K = 1, 2, 4, ... up to :func:`k_schedule`'s cap.
These rungs change the graph, so each one's latency against plain int8 is measured side by side
(:mod:`edgenet.convert.paired_latency`); a rung costing more than ``max_latency_cost_pct`` is not
accepted and ends that kind's climb.

How the budget decides (issue #26: choices that generalise):

* **Fit, choose, report.** Ranges, bias values, re-rounded weights and the ranking of ops are fitted on the
  *calibration* samples only. The held-out photos are split by photo (:meth:`edgenet.convert.fidelity.HoldoutSet.
  split`): the ladder chooses on one half (``fidelity``) and the kept model's agreement is stated on the other
  (``report``), which no choice saw. A user's ``--holdout DIR`` gives up to
  :data:`edgenet.convert.fidelity.MAX_HOLDOUT_IMAGES` photos, seen through enough views for
  :data:`edgenet.convert.fidelity.MIN_HOLDOUT_SAMPLES` samples.
* **Met only by the lower bound.** The budget is met only when the lower bound of the agreement's 95 % interval
  on the choice photos (a cluster bootstrap over the photos, at least Wilson on the views) reaches the target
  (:func:`met_at_lower_bound`); otherwise the ladder keeps climbing. 100 % on 24 views of 3 photos has a lower
  bound of 86 %: not met.
* **Plain int8 unless beaten on paired evidence** (:func:`edgenet.convert.fidelity.paired_flips`, on the same
  choice samples, p < 0.05 each). A rung replaces plain int8 when it flips fewer of them, by an exact test on the
  samples only one of the two flips; the views of one photo flip together, so the test is over photos
  (:func:`edgenet.convert.fidelity.sign_flip_exact`; exact McNemar when each photo has one view). Or when it flips
  no more of them and its error on the close calls (the squared float top-1/top-2 margin error over the samples
  with a margin below the median, which decides which of them flip) is lower, by a sign-flip test over the photos
  (:func:`edgenet.convert.fidelity.sign_flip_test`): flips are rare events, a few per hundred views, and counting
  them alone cannot tell a rung that halves the error from noise. Among such rungs the one with the most agreement
  (then the expected agreement, then the logits' SQNR) is kept. A precision rung (it costs latency) must also
  raise the counted and the expected agreement over the kept rung's.

When no rung meets the budget, the best kept one is returned and the verdict says the budget was missed
and why the ladder stopped. The verdict (``record["budget"]``) carries the agreement on the choice photos with its
interval (``reached_pct``, ``reached_ci95_pct``), the paired comparison with plain int8 (``vs_plain_int8``), the
report photos' agreement and interval (``report``) and every rung tried (``steps``, each with its own paired
comparison).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

#: (range method, bias correction) rungs of the budget mode, cheapest first.
#: Bias correction comes before range changes: on the ReLU6 Lite networks it is what moves the error
#: (benchmarks/quant_quality.py: Lite0 logits SQNR 19.2 -> 23.0 dB) while ranges barely do.
LADDER: tuple[tuple[str, bool], ...] = (("minmax", False), ("minmax", True), ("auto", False), ("auto", True))
#: Integer rungs tried after :data:`LADDER` when a weight rounder is given: int8 weights re-rounded to
#: minimise each op's output error (GPTQ, :mod:`edgenet.convert.rounding`), then (bias True) bias correction
#: measured on the re-rounded model. Same operators, shapes and scales as plain int8; only slower to convert
#: (benchmarks/weight_rounding.py: Lite0 logits SQNR 19.2 -> 24.5 dB with bias correction).
ROUNDING_LADDER: tuple[tuple[str, bool], ...] = (("minmax", True), ("auto", True))


#: A precision rung: (bytes of the best integer rung, op output tensor names, worst first) -> bytes.
PrecisionRung = Callable[[bytes, Sequence[str]], bytes]

#: What a precision kind is built from when it is not the best integer rung: int16 is quantized again from
#: the float model with edgenet's min/max ranges, without bias correction (edgenet.convert.mixed).
PRECISION_BASIS: dict[str, tuple[str, bool]] = {"int16": ("minmax", False)}

#: Most ops a precision rung upgrades (and at most a quarter of the ranked ones).
MAX_UPGRADED_OPS = 32
DEFAULT_MAX_LATENCY_COST_PCT = 10.0


def k_schedule(ranked: int, cap: int = MAX_UPGRADED_OPS) -> list[int]:
    """K = 1, 2, 4, ... ops to upgrade, ending at ``min(cap, ranked // 4)`` (at least 1)."""
    top = max(1, min(cap, ranked // 4))
    ks, k = [], 1
    while k < top:
        ks.append(k)
        k *= 2
    return [*ks, top]


@dataclass(frozen=True)
class Rung:
    ranges: str
    bias_correction: bool
    top1_agreement: float | None
    sqnr_db: float | None
    precision: str | None = None  # None: an integer rung; else the kind ("float", ...)
    ops: tuple[str, ...] = ()  # the ops that kind upgraded (as read back from the bytes)
    latency: dict | None = None  # edgenet.convert.paired_latency against plain int8
    accepted: bool = True
    asked: tuple[str, ...] = ()  # the ops the rung asked for (``ops`` is what the bytes hold)
    weight_rounding: bool = False  # int8 weights re-rounded (edgenet.convert.rounding)
    expected_agreement: float | None = None  # the fidelity's smooth estimate (edgenet.convert.fidelity)
    vs_plain: dict | None = None  # paired flips against plain int8 (edgenet.convert.fidelity.PairedFlips)

    def to_dict(self) -> dict:
        out = {"ranges": self.ranges, "bias_correction": self.bias_correction, "weight_rounding": self.weight_rounding,
               "top1_agreement": self.top1_agreement, "expected_agreement": self.expected_agreement,
               "sqnr_db": self.sqnr_db, "vs_plain_int8": self.vs_plain}
        if self.precision is not None:
            out.update(precision=self.precision, ops=list(self.ops), asked=list(self.asked),
                       latency_vs_plain_int8=self.latency, accepted=self.accepted)
        return out


def met_at_lower_bound(fidelity: dict | None, min_agreement_pct: float) -> bool:
    """The budget is met only when the *lower* bound of the agreement's 95 % interval reaches the target: a point
    estimate of 100 % on 24 views of 3 photos (interval 43.9-100 %) says nothing about other images."""
    if fidelity is None or not fidelity.get("top1_agreement_ci95"):
        return False
    return 100.0 * float(fidelity["top1_agreement_ci95"][0]) >= min_agreement_pct - 1e-9


def _key(fid: dict) -> tuple[float, float, float]:
    """Which of two rungs that both beat plain int8 (paired test) is better: the counted agreement on the choice
    images first (hundreds of views make it the measure the budget is about), then the expected agreement
    (:mod:`edgenet.convert.fidelity`), then the logits' SQNR."""
    sqnr = fid.get("sqnr_db")
    return (fid["top1_agreement"], fid.get("expected_agreement", fid["top1_agreement"]),
            sqnr if sqnr is not None else float("-inf"))


def _beats(plain: dict, fid: dict) -> dict:
    """The paired comparison of a rung with plain int8 on the same choice samples (their flips, tested over photos)."""
    from .fidelity import paired_flips

    return paired_flips(plain, fid).to_dict()


@dataclass(frozen=True)
class RepairPlan:
    """Everything the repair ladder needs, as one frozen, self-validating object.

    ``convert(ranges)`` converts with a range method; ``correct_bias(bytes)`` returns corrected bytes
    and a summary; ``fidelity(bytes)`` measures on the held-out images (``None`` when there are none).
    ``ranges``/``bias_correction``/``weight_rounding`` are what was asked outright; ``min_agreement_pct``
    (percent) turns the budget on instead. Precision rungs (``precision``: ``(kind, rung)`` pairs, tried in
    order after the integer ladder misses) need ``rank(bytes)`` (op output names worst first, on calibration
    samples), ``upgraded(bytes)`` (the ops a result actually runs above int8) and ``latency(plain, candidate)``.
    ``round_weights(bytes)`` re-rounds the int8 weights (corrected bytes and a summary): applied before bias
    correction when ``weight_rounding`` is asked, and the budget's :data:`ROUNDING_LADDER` rungs when given.
    """

    convert: Callable[[str], bytes]
    correct_bias: Callable[[bytes], tuple[bytes, dict]]
    fidelity: Callable[[bytes], dict | None]
    ranges: str = "minmax"
    bias_correction: bool = False
    min_agreement_pct: float | None = None
    precision: tuple[tuple[str, PrecisionRung], ...] = ()
    rank: Callable[[bytes], list[str]] | None = None
    upgraded: Callable[[bytes], list[str]] | None = None
    latency: Callable[[bytes, bytes], dict] | None = None
    max_latency_cost_pct: float = DEFAULT_MAX_LATENCY_COST_PCT
    max_ops: int = MAX_UPGRADED_OPS
    round_weights: Callable[[bytes], tuple[bytes, dict]] | None = None
    weight_rounding: bool = False
    #: The fidelity on the *report* images (disjoint from ``fidelity``'s choice images): the kept model's
    #: agreement, measured where no choice was made. ``None``: the choice images report too (optimistic).
    report: Callable[[bytes], dict | None] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "precision", tuple(self.precision))
        if self.min_agreement_pct is not None and not (math.isfinite(self.min_agreement_pct)
                                                       and self.min_agreement_pct >= 0.0):
            raise ValueError(f"--min-agreement must be a non-negative percentage, got {self.min_agreement_pct}")
        if self.weight_rounding and self.round_weights is None:
            raise ValueError("weight rounding needs a weight rounder")
        if self.precision and (self.rank is None or self.upgraded is None or self.latency is None):
            raise ValueError("precision rungs need rank, upgraded and latency")
        if int(self.max_ops) < 1:
            raise ValueError(f"max_ops must be at least 1, got {self.max_ops}")


def repair(plan: RepairPlan) -> tuple[bytes, dict | None, dict]:
    """Return ``(model bytes, its fidelity, quality record)`` for ``plan`` (:class:`RepairPlan`)."""
    convert, correct_bias, fidelity = plan.convert, plan.correct_bias, plan.fidelity
    ranges, bias_correction, min_agreement_pct = plan.ranges, plan.bias_correction, plan.min_agreement_pct
    precision, rank, upgraded, latency = plan.precision, plan.rank, plan.upgraded, plan.latency
    max_latency_cost_pct, max_ops = plan.max_latency_cost_pct, plan.max_ops
    round_weights, weight_rounding = plan.round_weights, plan.weight_rounding
    report = plan.report
    if min_agreement_pct is None:
        data = convert(ranges)
        record: dict = {"ranges": ranges, "bias_correction": None}
        if weight_rounding:
            data, record["weight_rounding"] = round_weights(data)
        if bias_correction:
            data, summary = correct_bias(data)
            record["bias_correction"] = summary
        return data, (report or fidelity)(data), record

    steps: list[Rung] = []
    best: tuple[bytes, dict | None, dict] | None = None
    plain_fid: dict | None = None
    converted: dict[str, bytes] = {}
    met = False
    rungs = [(m, b, False) for m, b in LADDER] + [(m, b, True) for m, b in ROUNDING_LADDER if round_weights]
    for method, bias, rounding in rungs:
        if method not in converted:
            converted[method] = convert(method)
        data = converted[method]
        summary = rounded = None
        if rounding:
            data, rounded = round_weights(data)
        if bias:
            data, summary = correct_bias(data)
        fid = fidelity(data)
        if fid is None:
            raise ValueError("the accuracy budget needs held-out images (pass --holdout DIR)")
        paired = None if plain_fid is None else _beats(plain_fid, fid)
        steps.append(Rung(method, bias, fid["top1_agreement"], fid.get("sqnr_db"), weight_rounding=rounding,
                          expected_agreement=fid.get("expected_agreement"), vs_plain=paired))
        record = {"ranges": method, "bias_correction": summary}
        if rounded is not None:
            record["weight_rounding"] = rounded
        # Plain int8 is kept unless a rung beats it on paired evidence (fewer flips, or no more and closer: tests over
        # photos, p < 0.05), never on two rates.
        beats = paired is None or paired["b_better"]
        if plain_fid is None:
            plain_fid, best = fid, (data, fid, record)
        elif beats and _key(fid) > _key(best[1]):
            best = (data, fid, record)
        if beats and met_at_lower_bound(fid, min_agreement_pct):
            best, met = (data, fid, record), True
            break
    assert best is not None
    stopped = "met" if met else "integer rungs exhausted" + (
        "" if precision else " (int16 or float for the worst ops needs --allow-int16 or --allow-float, CPU targets "
                             "only)")
    chosen_latency = None
    if not met and precision:
        base, _, base_record = best
        plain = converted["minmax"]
        ranked = rank(base)
        schedule = k_schedule(len(ranked), max_ops)
        if not ranked:
            stopped = "no quantized op to upgrade was ranked"
        for kind, rung in precision if ranked else ():
            for k in schedule:
                data = rung(base, ranked[:k])
                ops = tuple(upgraded(data))
                fid = fidelity(data)
                lat = latency(plain, data)
                cost_pct = 100.0 * (lat["ratio_of_minima"] - 1.0)
                accepted = cost_pct <= max_latency_cost_pct
                basis = PRECISION_BASIS.get(kind, (base_record["ranges"], bool(base_record.get("bias_correction"))))
                paired = _beats(plain_fid, fid)
                steps.append(Rung(basis[0], basis[1], fid["top1_agreement"], fid.get("sqnr_db"), kind, ops, lat,
                                  accepted, tuple(ranked[:k]), weight_rounding=kind not in PRECISION_BASIS
                                  and bool(base_record.get("weight_rounding")),
                                  expected_agreement=fid.get("expected_agreement"), vs_plain=paired))
                if not accepted:
                    stopped = (f"{kind} for {k} op(s) costs {cost_pct:+.1f} % latency against plain int8, over "
                               f"--max-latency-cost {max_latency_cost_pct:g} %")
                    break
                record = {**base_record, "precision": {"kind": kind, "ops": list(ops), "asked": list(ranked[:k])}}
                if kind in PRECISION_BASIS:
                    record.update(ranges=basis[0], bias_correction=None)
                    record.pop("weight_rounding", None)
                # A rung that costs latency is kept only for more agreement, counted and expected, not for a
                # better SQNR alone, and only when it beats plain int8 on the paired flips.
                if not paired["b_better"]:
                    continue
                if fid["top1_agreement"] > best[1]["top1_agreement"] and \
                        fid.get("expected_agreement", 0.0) >= best[1].get("expected_agreement", 0.0):
                    best, chosen_latency = (data, fid, record), lat
                if met_at_lower_bound(fid, min_agreement_pct):
                    best, chosen_latency, met = (data, fid, record), lat, True
                    stopped = "met"
                    break
            else:
                stopped = f"{kind} reached its cap of {schedule[-1]} op(s) without meeting the budget"
            if met:
                break
    data, fid, record = best
    precise = record.get("precision")
    ci = fid.get("top1_agreement_ci95")
    ci_pct = [round(100.0 * ci[0], 3), round(100.0 * ci[1], 3)] if ci else None
    reported = report(data) if report is not None else None
    if reported is None:
        note = ("the choice images also report the agreement (no separate report images): it is slightly "
                "optimistic; measure on other images to confirm")
    else:
        note = (f"chosen on {fid.get('images')} image(s), reported on {reported.get('images')} other image(s) that "
                "neither the repairs nor the choice saw")
    if ci:
        if met:
            verdict = "its lower bound meets the target"
        elif 100.0 * ci[1] >= min_agreement_pct - 1e-9:
            verdict = "the target lies inside it, so the budget is not met (it is met only by the lower bound)"
        else:
            verdict = "even its upper bound misses the target"
        note += (f". Its 95 % interval on the {fid.get('images')} choice image(s) is {ci_pct[0]:.1f}-{ci_pct[1]:.1f} "
                 f"% ({fid.get('ci_method')}): {verdict}")
    kept_vs_plain = None if fid is plain_fid else _beats(plain_fid, fid)
    record["budget"] = {
        "min_agreement_pct": min_agreement_pct,
        "met": met,
        "rule": "met only when the 95 % interval's lower bound on the choice images reaches the target; a rung "
                "replaces plain int8 only when, on the choice photos, it flips fewer samples, or no more samples with a "
                "lower error on the close calls (paired sign-flip tests over the photos, p < 0.05)",
        "reached_pct": round(100.0 * fid["top1_agreement"], 3),
        "reached_ci95_pct": ci_pct,
        "expected_pct": round(100.0 * fid["expected_agreement"], 3) if "expected_agreement" in fid else None,
        "met_at_ci_lower_bound": met_at_lower_bound(fid, min_agreement_pct) if ci else None,
        "vs_plain_int8": kept_vs_plain,
        "choice_images": fid.get("images"),
        "choice_samples": fid.get("samples"),
        "report": None if reported is None else {
            "images": reported.get("images"), "samples": reported.get("samples"),
            "top1_agreement_pct": round(100.0 * reported["top1_agreement"], 3),
            "ci95_pct": [round(100.0 * v, 3) for v in reported["top1_agreement_ci95"]]},
        "stopped": stopped if not met else "met",
        "steps": [s.to_dict() for s in steps],
        "full_integer": not precise or precise["kind"] != "float",
        "int8_only": not precise,
        "max_latency_cost_pct": max_latency_cost_pct if precision else None,
        "latency_vs_plain_int8": chosen_latency if precise else (
            "same operators, shapes and dtypes as plain int8 (only ranges, bias values and, when re-rounded, "
            "int8 weight values differ): no latency cost by construction"),
        "note": note,
    }
    if precise:
        record["budget"]["ranking"] = ("ops worst first by local SQNR (edgenet.convert.tensor_errors) on "
                                       "calibration samples, never the held-out images")
    return data, reported if reported is not None else fid, record
