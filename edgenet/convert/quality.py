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
accepted and ends that kind's climb. When no rung meets the budget, the best accepted one is kept and
the verdict says the budget was missed and why the ladder stopped. Among the integer rungs (all at plain
int8's latency) the best is the one with the smallest logit error (highest SQNR; then the expected
agreement, the fidelity check's smooth estimate from the float margins, then the counted agreement; the
earlier, smaller change on a tie): on a few dozen held-out samples the counted flips of one repair move by
several with the random pixels of its statistics alone (benchmarks/weight_rounding.py ``--seeds``: Lite0
94.2-99.0 % at one SQNR), and the expected agreement, though much steadier, rests on the half of the samples
with small margins. A precision rung costs latency, so it must raise the counted agreement over the kept
rung's without lowering the expected one.

The held-out images decide only where to stop, never a range, a bias value or which ops to upgrade;
the stopping rule still makes the reported agreement a slightly optimistic estimate, which the
manifest says. The verdict also carries the agreement's 95 % interval (``reached_ci95_pct``, from
:mod:`edgenet.convert.fidelity`: a cluster bootstrap over the held-out photos), whether even its
lower bound meets the target (``met_at_ci_lower_bound``) and the smooth estimate of the agreement from
the margins (``expected_pct``, the fidelity's ``expected_agreement``); the ladder itself still stops on the counted
agreement, so ``met`` with ``met_at_ci_lower_bound`` false means "met on these photos, within their
noise".
"""

from __future__ import annotations

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

    def to_dict(self) -> dict:
        out = {"ranges": self.ranges, "bias_correction": self.bias_correction, "weight_rounding": self.weight_rounding,
               "top1_agreement": self.top1_agreement, "expected_agreement": self.expected_agreement,
               "sqnr_db": self.sqnr_db}
        if self.precision is not None:
            out.update(precision=self.precision, ops=list(self.ops), asked=list(self.asked),
                       latency_vs_plain_int8=self.latency, accepted=self.accepted)
        return out


def _met(fidelity: dict | None, min_agreement_pct: float) -> bool:
    return fidelity is not None and 100.0 * fidelity["top1_agreement"] >= min_agreement_pct - 1e-9


def _key(fid: dict) -> tuple[float, float, float]:
    """Which of two integer rungs is better: the logits' SQNR first (the error over every held-out logit, the most
    stable measure; counted flips on a few dozen held-out samples move by several at one SQNR, and the expected
    agreement rests on the half of the samples with small margins), then the expected agreement
    (:mod:`edgenet.convert.fidelity`), then the counted agreement."""
    sqnr = fid.get("sqnr_db")
    return (sqnr if sqnr is not None else float("-inf"), fid.get("expected_agreement", fid["top1_agreement"]),
            fid["top1_agreement"])


def repair(convert: Callable[[str], bytes], correct_bias: Callable[[bytes], tuple[bytes, dict]],
           fidelity: Callable[[bytes], dict | None], *, ranges: str = "minmax", bias_correction: bool = False,
           min_agreement_pct: float | None = None,
           precision: Sequence[tuple[str, PrecisionRung]] = (),
           rank: Callable[[bytes], list[str]] | None = None,
           upgraded: Callable[[bytes], list[str]] | None = None,
           latency: Callable[[bytes, bytes], dict] | None = None,
           max_latency_cost_pct: float = DEFAULT_MAX_LATENCY_COST_PCT,
           max_ops: int = MAX_UPGRADED_OPS,
           round_weights: Callable[[bytes], tuple[bytes, dict]] | None = None,
           weight_rounding: bool = False) -> tuple[bytes, dict | None, dict]:
    """Return ``(model bytes, its fidelity, quality record)``.

    ``convert(ranges)`` converts with a range method; ``correct_bias(bytes)`` returns corrected bytes
    and a summary; ``fidelity(bytes)`` measures on the held-out images (``None`` when there are none).
    Precision rungs (``precision``: ``(kind, rung)`` pairs, tried in order after the integer ladder
    misses) need ``rank(bytes)`` (op output names worst first, on calibration samples),
    ``upgraded(bytes)`` (the ops a result actually runs above int8) and ``latency(plain, candidate)``.
    ``round_weights(bytes)`` re-rounds the int8 weights (corrected bytes and a summary): applied before bias
    correction when ``weight_rounding`` is asked, and the budget's :data:`ROUNDING_LADDER` rungs when given.
    """
    if min_agreement_pct is None:
        data = convert(ranges)
        record: dict = {"ranges": ranges, "bias_correction": None}
        if weight_rounding:
            if round_weights is None:
                raise ValueError("weight rounding needs a weight rounder")
            data, record["weight_rounding"] = round_weights(data)
        if bias_correction:
            data, summary = correct_bias(data)
            record["bias_correction"] = summary
        return data, fidelity(data), record

    steps: list[Rung] = []
    best: tuple[bytes, dict | None, dict] | None = None
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
        steps.append(Rung(method, bias, fid["top1_agreement"], fid.get("sqnr_db"), weight_rounding=rounding,
                          expected_agreement=fid.get("expected_agreement")))
        record = {"ranges": method, "bias_correction": summary}
        if rounded is not None:
            record["weight_rounding"] = rounded
        if best is None or _key(fid) > _key(best[1]):
            best = (data, fid, record)
        if _met(fid, min_agreement_pct):
            best, met = (data, fid, record), True
            break
    assert best is not None
    stopped = "met" if met else "integer rungs exhausted" + (
        "" if precision else " (int16 or float for the worst ops needs --allow-int16 or --allow-float, CPU targets "
                             "only)")
    chosen_latency = None
    if not met and precision:
        if rank is None or upgraded is None or latency is None:
            raise ValueError("precision rungs need rank, upgraded and latency")
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
                steps.append(Rung(basis[0], basis[1], fid["top1_agreement"], fid.get("sqnr_db"), kind, ops, lat,
                                  accepted, tuple(ranked[:k]), weight_rounding=kind not in PRECISION_BASIS
                                  and bool(base_record.get("weight_rounding")),
                                  expected_agreement=fid.get("expected_agreement")))
                if not accepted:
                    stopped = (f"{kind} for {k} op(s) costs {cost_pct:+.1f} % latency against plain int8, over "
                               f"--max-latency-cost {max_latency_cost_pct:g} %")
                    break
                record = {**base_record, "precision": {"kind": kind, "ops": list(ops), "asked": list(ranked[:k])}}
                if kind in PRECISION_BASIS:
                    record.update(ranges=basis[0], bias_correction=None)
                    record.pop("weight_rounding", None)
                # A rung that costs latency is kept only for more agreement, counted and expected, not for a
                # better SQNR alone.
                if fid["top1_agreement"] > best[1]["top1_agreement"] and \
                        fid.get("expected_agreement", 0.0) >= best[1].get("expected_agreement", 0.0):
                    best, chosen_latency = (data, fid, record), lat
                if _met(fid, min_agreement_pct):
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
    at_lower = ci is not None and 100.0 * ci[0] >= min_agreement_pct - 1e-9
    note = ("the held-out images chose where the ladder stopped, so the reached agreement is slightly "
            "optimistic; measure on other images to confirm")
    if ci:
        if at_lower:
            verdict = "the target is met even by its lower bound"
        elif _met(fid, min_agreement_pct):
            verdict = "its lower bound misses the target, so on other images the agreement may fall below it"
        elif 100.0 * ci[1] >= min_agreement_pct - 1e-9:
            verdict = "the target lies inside it, so other images may meet it or miss it"
        else:
            verdict = "even its upper bound misses the target"
        note += (f". Its 95 % interval on these {fid.get('images')} image(s) is {ci_pct[0]:.1f}-{ci_pct[1]:.1f} % "
                 f"({fid.get('ci_method')}): {verdict}")
    record["budget"] = {
        "min_agreement_pct": min_agreement_pct,
        "met": _met(fid, min_agreement_pct),
        "reached_pct": round(100.0 * fid["top1_agreement"], 3),
        "reached_ci95_pct": ci_pct,
        "expected_pct": round(100.0 * fid["expected_agreement"], 3) if "expected_agreement" in fid else None,
        "met_at_ci_lower_bound": at_lower if ci else None,
        "stopped": stopped,
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
    return data, fid, record
