"""Predict a variant's latency on a device from a few measured ones.

Why a model at all: converting and measuring B5-B7 (or a custom phi) takes minutes each, and
a sweep only needs to know whether the next size *could* fit. Latency on one device and
thread setting is well described by a handful of costs that :mod:`edgenet.family.architecture`
knows exactly for any variant, custom phi included:

* ``pointwise_macs``: 1x1 convolutions, stem, head, classifier and squeeze-excitation --
  dense GEMM-like work that int8 kernels run near peak;
* ``depthwise_macs``: depthwise convolutions, which do little work per byte and run far
  below peak, so one MAC of them costs more than one pointwise MAC;
* ``activation_elems``: feature-map elements written and read between ops (memory traffic;
  it grows with resolution squared and dominates once maps fall out of cache);
* ``ops``: per-op dispatch overhead (blocks, about 15 TFLite ops each: convolutions, swish as
  LOGISTIC + MUL, squeeze-excitation MEAN and MUL, the residual ADD);
* an intercept for fixed costs (input quantize, pooling, invoke overhead).

Every coefficient is a cost, so it must be non-negative: fits use non-negative least squares
(Lawson-Hanson active set on numpy's ``lstsq``; scipy is not a core dependency). That also
makes predictions monotone in width, depth and resolution, hence in phi. Rows are weighted by
1/latency so the fit minimises *relative* error: a 10 % miss on B0 matters as much as on B7.

Several candidate forms are tried, from a two-parameter power law ``k * MACs**e`` and
``a + b*MACs`` up to all four costs; the one with the lowest leave-one-out relative error
wins (a form needs at least one more measurement than parameters to be considered). The
leave-one-out errors of the winner are the honest uncertainty reported with each prediction,
inflated when predicting beyond the measured range.

Measured on a 2-vCPU x86 VM at one thread (``benchmarks/latency_model_error.py``), the power
law wins with an exponent just under 1 (bigger int8 GEMMs run closer to peak): leave-one-out
and fit-on-B0..B2 errors stay within about 6 % for every B0-B7 -- as long as the latencies
themselves are clean (see that script's note on contended p50s).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import EdgenetError, VariantError
from ..family.variants import Variant, parse_variant
from ..results.records import STATS, BenchRecord, bench_group

__all__ = [
    "FEATURES",
    "FORMS",
    "LatencyModel",
    "PhiSuggestion",
    "equivalent_phi",
    "Prediction",
    "features",
    "holdout_errors",
    "nnls",
    "suggest_custom_phi",
]

FEATURES = ("macs", "pointwise_macs", "depthwise_macs", "activation_elems", "ops")
#: Candidate model forms: name -> linear features (all with an intercept), or "power".
FORMS: dict[str, tuple[str, ...]] = {
    "power": ("macs",),
    "macs": ("macs",),
    "macs+act": ("macs", "activation_elems"),
    "pw+dw+act": ("pointwise_macs", "depthwise_macs", "activation_elems"),
    "pw+dw+act+ops": ("pointwise_macs", "depthwise_macs", "activation_elems", "ops"),
}


def _n_params(form: str) -> int:
    return 2 if form == "power" else 1 + len(FORMS[form])


def features(variant: Variant | str) -> dict[str, float]:
    """The cost features of a variant, from its exact layer plan."""
    from ..family.architecture import architecture

    v = parse_variant(variant) if isinstance(variant, str) else variant
    if v.family == "baseline":
        raise VariantError(f"{v.name} is a reference model: the latency model covers EfficientNet variants only")
    arch = architecture(v)
    dw = sum(b.output_size**2 * b.kernel_size**2 * b.expanded for b in arch.blocks)
    act = arch.stem_size**2 * arch.stem_filters
    for b in arch.blocks:
        if b.expand_ratio != 1:
            act += b.input_size**2 * b.expanded  # expand output
        act += b.output_size**2 * b.expanded  # depthwise output (SE rescales it in place)
        act += b.output_size**2 * b.filters_out  # project output (+ the residual add)
    act += arch.head_size**2 * arch.head_filters
    macs = float(arch.macs)
    return {
        "macs": macs,
        "pointwise_macs": macs - dw,
        "depthwise_macs": float(dw),
        "activation_elems": float(act),
        "ops": float(len(arch.blocks) + 2),
    }


def nnls(a: np.ndarray, b: np.ndarray, max_iter: int | None = None) -> np.ndarray:
    """Solve min ||A x - b|| subject to x >= 0 (Lawson & Hanson's active-set method)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    _, n = a.shape
    x = np.zeros(n)
    passive = np.zeros(n, dtype=bool)
    max_iter = max_iter or 3 * n + 30
    tol = 10 * np.finfo(float).eps * np.linalg.norm(a, 1) * max(a.shape)
    for _ in range(max_iter):
        w = a.T @ (b - a @ x)
        if passive.all() or w[~passive].max(initial=-np.inf) <= tol:
            break
        j = int(np.argmax(np.where(passive, -np.inf, w)))
        passive[j] = True
        while True:
            z = np.zeros(n)
            z[passive] = np.linalg.lstsq(a[:, passive], b, rcond=None)[0]
            if (z[passive] > 0).all():
                x = z
                break
            # Step back towards x until the first passive variable hits zero, drop it.
            mask = passive & (z <= 0)
            alpha = np.min(x[mask] / (x[mask] - z[mask]))
            x = x + alpha * (z - x)
            passive &= x > tol
            x[~passive] = 0.0
    return x


@dataclass(frozen=True)
class _Fit:
    form: str
    coef: tuple[float, ...]  # power: (k, e); linear: (intercept, *feature coefficients)
    scale: tuple[float, ...]  # feature scales used in fitting (coefficients are per scaled unit)

    def predict(self, feats: dict[str, float]) -> float:
        if self.form == "power":
            k, e = self.coef
            return float(k * (feats["macs"] / self.scale[0]) ** e)
        x = [1.0] + [feats[f] / s for f, s in zip(FORMS[self.form], self.scale, strict=True)]
        return float(np.dot(self.coef, x))


def _fit_form(form: str, feats: list[dict[str, float]], y: np.ndarray) -> _Fit:
    names = FORMS[form]
    scale = tuple(max(f[n] for f in feats) or 1.0 for n in names)
    if form == "power":
        lx = np.log([f["macs"] / scale[0] for f in feats])
        ly = np.log(y)
        e, logk = np.polyfit(lx, ly, 1)
        if e < 0:  # bigger is never faster: fall back to a constant (keeps predictions monotone)
            e, logk = 0.0, float(np.mean(ly))
        return _Fit(form, (float(math.exp(logk)), float(e)), scale)
    x = np.array([[1.0] + [f[n] / s for n, s in zip(names, scale, strict=True)] for f in feats])
    w = 1.0 / y  # relative error: residual (pred - y) / y
    coef = nnls(x * w[:, None], y * w)
    return _Fit(form, tuple(float(c) for c in coef), scale)


def _loo(form: str, feats: list[dict[str, float]], y: np.ndarray) -> list[float]:
    errors = []
    for i in range(len(y)):
        keep = [j for j in range(len(y)) if j != i]
        fit = _fit_form(form, [feats[j] for j in keep], y[keep])
        errors.append((fit.predict(feats[i]) - y[i]) / y[i])
    return errors


def _choose(feats: list[dict[str, float]], y: np.ndarray) -> tuple[str, list[float], dict[str, float]]:
    """The form with the lowest leave-one-out RMS relative error (ties: fewer parameters)."""
    scores: dict[str, float] = {}
    loo: dict[str, list[float]] = {}
    for form in FORMS:
        if len(y) < _n_params(form) + 1:  # each leave-one-out fit needs >= as many points as parameters
            continue
        loo[form] = _loo(form, feats, y)
        scores[form] = float(np.sqrt(np.mean(np.square(loo[form]))))
    best = min(scores, key=lambda f: (round(scores[f], 4), _n_params(f)))
    return best, loo[best], scores


@dataclass(frozen=True)
class Prediction:
    """A predicted latency with an honest error band."""

    variant: str
    latency_ms: float
    rel_uncertainty: float  # from leave-one-out errors, inflated when extrapolating
    extrapolated: bool  # outside the measured MACs range
    measured_ms: float | None = None

    @property
    def low_ms(self) -> float:
        return self.latency_ms / (1 + self.rel_uncertainty)  # symmetric in log space, never negative

    @property
    def high_ms(self) -> float:
        return self.latency_ms * (1 + self.rel_uncertainty)

    def to_dict(self) -> dict:
        return {
            "variant": self.variant,
            "latency_ms": self.latency_ms,
            "rel_uncertainty": self.rel_uncertainty,
            "low_ms": self.low_ms,
            "high_ms": self.high_ms,
            "extrapolated": self.extrapolated,
            "measured_ms": self.measured_ms,
        }


@dataclass(frozen=True)
class LatencyModel:
    """Latency as a function of a variant's costs, for one device + thread setting."""

    form: str
    coef: tuple[float, ...]
    scale: tuple[float, ...]
    stat: str
    setting: str  # e.g. "pi4 threads=1 delegate=cpu xnnpack on"
    measured_ms: dict[str, float]  # variant label -> measured latency used in the fit
    loo_rel_errors: dict[str, float]  # variant label -> leave-one-out relative error
    form_scores: dict[str, float] = field(default_factory=dict)  # LOO RMS relative error per form
    macs_range: tuple[float, float] = (0.0, 0.0)
    notes: tuple[str, ...] = ()
    family: str = "efficientnet"

    @classmethod
    def fit(
        cls, records: list, stat: str = "p50", device: str | None = None, threads: int | None = None
    ) -> LatencyModel:
        """Fit on the bench records (dicts or views) of one device + setting (>= 3 distinct variants)."""
        if stat not in STATS:
            raise EdgenetError(f"unknown latency statistic {stat!r}; choose from {', '.join(STATS)}")
        key, group = bench_group(records, device=device, threads=threads)
        latest: dict[str, BenchRecord] = {}
        notes = []
        for r in sorted(group, key=lambda r: r.created_utc):
            label = r.variant
            if label is None:
                notes.append(f"{r.model.name}: variant unknown, left out")
                continue
            if r.stat_ms(stat) is None:
                continue
            latest[label] = r  # latest measurement wins
        # One family per model: at equal MACs, Lite (ReLU6, no squeeze-excitation) runs faster
        # than B (swish = LOGISTIC + MUL, SE), which the cost features do not tell apart.
        families: dict[str, list[str]] = {}
        for label in latest:
            try:
                families.setdefault(parse_variant(label).family, []).append(label)
            except VariantError:
                continue
        family = max(families, key=lambda f: (len(families[f]), f == "efficientnet")) if families else "efficientnet"
        for other, names in families.items():
            if other != family:
                notes.append(f"left out the {other} variants ({', '.join(names)}): one family per model")
                for name in names:
                    latest.pop(name)
        labels, feats, ys = [], [], []
        for label, r in latest.items():
            try:
                feats.append(features(label))
            except VariantError as exc:
                notes.append(f"{label}: {exc}")
                continue
            labels.append(label)
            ys.append(float(r.stat_ms(stat)))
        if len(labels) < 3:
            raise EdgenetError(
                f"the latency model needs at least 3 measured EfficientNet variants on {key.describe()}, "
                f"found {len(labels)}{': ' + ', '.join(labels) if labels else ''}"
            )
        y = np.array(ys)
        form, loo, scores = _choose(feats, y)
        fit = _fit_form(form, feats, y)
        macs = [f["macs"] for f in feats]
        return cls(
            form=form,
            coef=fit.coef,
            scale=fit.scale,
            stat=stat,
            setting=key.describe(),
            measured_ms=dict(zip(labels, ys, strict=True)),
            loo_rel_errors=dict(zip(labels, loo, strict=True)),
            form_scores=scores,
            macs_range=(min(macs), max(macs)),
            notes=tuple(notes),
            family=family,
        )

    @property
    def loo_max_abs_rel_error(self) -> float:
        return max(abs(e) for e in self.loo_rel_errors.values())

    @property
    def loo_rms_rel_error(self) -> float:
        return float(np.sqrt(np.mean(np.square(list(self.loo_rel_errors.values())))))

    def _check_family(self, variant: Variant | str) -> Variant:
        v = parse_variant(variant) if isinstance(variant, str) else variant
        if v.family != self.family:
            raise VariantError(
                f"{v.name} is a {v.family} variant but this latency model was fitted on {self.family} variants"
            )
        return v

    def predict(self, variant: Variant | str) -> float:
        """Predicted latency in ms at this model's statistic."""
        return _Fit(self.form, self.coef, self.scale).predict(features(self._check_family(variant)))

    def predict_detail(self, variant: Variant | str) -> Prediction:
        """The prediction with its uncertainty: the worst leave-one-out relative error, grown by
        half of it per doubling of MACs beyond the measured range (extrapolation is less sure)."""
        v = self._check_family(variant)
        feats = features(v)
        ms = _Fit(self.form, self.coef, self.scale).predict(feats)
        lo, hi = self.macs_range
        base = self.loo_max_abs_rel_error
        beyond = max(feats["macs"] / hi, lo / feats["macs"], 1.0)
        uncertainty = base * (1 + 0.5 * math.log2(beyond))
        label = v.spec if v.is_custom else v.name
        return Prediction(label, ms, uncertainty, beyond > 1.0, self.measured_ms.get(label))

    def to_dict(self) -> dict:
        return {
            "form": self.form,
            "coef": list(self.coef),
            "scale": list(self.scale),
            "stat": self.stat,
            "setting": self.setting,
            "measured_ms": dict(self.measured_ms),
            "loo_rel_errors": dict(self.loo_rel_errors),
            "form_scores": dict(self.form_scores),
            "macs_range": list(self.macs_range),
            "notes": list(self.notes),
            "family": self.family,
            "features": ["intercept", *FORMS[self.form]] if self.form != "power" else ["k", "exponent"],
        }

    @classmethod
    def from_dict(cls, data: dict) -> LatencyModel:
        if data.get("form") not in FORMS:
            raise EdgenetError(f"not a latency model: unknown form {data.get('form')!r}")
        return cls(
            form=data["form"],
            coef=tuple(data["coef"]),
            scale=tuple(data["scale"]),
            stat=data["stat"],
            setting=data["setting"],
            measured_ms=dict(data["measured_ms"]),
            loo_rel_errors=dict(data["loo_rel_errors"]),
            form_scores=dict(data.get("form_scores") or {}),
            macs_range=tuple(data.get("macs_range") or (0.0, 0.0)),
            notes=tuple(data.get("notes") or ()),
            family=data.get("family", "efficientnet"),
        )


def holdout_errors(
    records: list[dict], stat: str = "p50", device: str | None = None, threads: int | None = None
) -> list[dict]:
    """Nested leave-one-out: for each measured variant, fit (form choice included) on the others
    and predict it. This is the error a user should expect on an unmeasured variant."""
    _, group = bench_group(records, device=device, threads=threads)
    full = LatencyModel.fit(group, stat=stat)
    labels = sorted(full.measured_ms, key=lambda s: features(s)["macs"])
    rows = []
    for label in labels:
        rest = [r for r in group if r.variant != label]
        measured = full.measured_ms[label]
        model = LatencyModel.fit(rest, stat=stat)
        pred = model.predict(label)
        rows.append(
            {
                "variant": label,
                "measured_ms": measured,
                "predicted_ms": pred,
                "rel_error": (pred - measured) / measured,
                "form": model.form,
            }
        )
    return rows


@dataclass(frozen=True)
class PhiSuggestion:
    """The largest pure compound-scaling phi predicted to fit the budget."""

    phi: float
    spec: str  # "phi=1.37", for parse_variant / convert
    macs: int
    predicted_ms: float
    rel_uncertainty: float
    budget_ms: float
    lo_variant: str
    hi_variant: str
    phi_range: tuple[float, float]  # the phi interval searched (MACs-equivalent of lo and hi)

    def to_dict(self) -> dict:
        data = dict(self.__dict__)
        data["phi_range"] = list(self.phi_range)
        return data


def _spec(phi: float, family: str) -> str:
    return f"phi={phi:g}" + (",base=lite" if family == "lite" else "")


def equivalent_phi(variant: Variant | str, tol: float = 1e-4) -> float:
    """The pure compound-scaling phi with the same multiply-adds as ``variant``.

    The published B1-B7 are hand-tuned and much smaller than the formula at their nominal phi
    (pure ``phi=2`` has about B3's MACs, not B2's), so "a phi between B2 and B3" must be searched
    between their MACs-equivalent phis, not between 2 and 3.
    """
    from ..family.variants import PHI_RANGE

    v = parse_variant(variant) if isinstance(variant, str) else variant
    target = features(v)["macs"]
    lo, hi = PHI_RANGE
    while hi - lo > tol:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if features(_spec(mid, v.family))["macs"] < target else (lo, mid)
    return hi


def suggest_custom_phi(
    model: LatencyModel,
    budget_ms: float,
    lo_variant: str,
    hi_variant: str,
    step: float = 0.01,
    safety: float = 0.0,
) -> PhiSuggestion | None:
    """The largest ``phi=X`` (pure compound scaling, to ``step``) between two variants whose
    predicted latency fits ``budget_ms``; None when nothing above ``lo_variant`` is predicted to fit.

    The search runs over the phis whose multiply-adds lie between the two variants' (see
    :func:`equivalent_phi`), so the suggestion really is a size between them. Predictions are
    monotone in phi (non-negative costs of non-decreasing width, depth and resolution), so
    bisection is sound. A prediction is not a measurement: a sweep must convert and measure it.
    ``safety`` (e.g. ``model.loo_max_abs_rel_error``) requires ``predicted * (1 + safety) <= budget``:
    fewer suggestions that then miss the budget when measured, at the price of some headroom.
    """
    lo_v, hi_v = model._check_family(lo_variant), model._check_family(hi_variant)
    lo, hi = sorted((equivalent_phi(lo_v), equivalent_phi(hi_v)))
    if hi - lo < step:
        raise VariantError(f"{lo_variant} and {hi_variant} are the same size; choose two different sizes")
    family = lo_v.family

    def fits(phi: float) -> bool:
        return model.predict(_spec(phi, family)) * (1.0 + safety) <= budget_ms

    # Candidates are on the step grid strictly inside (lo, hi): the endpoints are the two
    # published variants themselves.
    first = math.floor(lo / step + 1e-9) * step + step
    last = math.ceil(hi / step - 1e-9) * step - step
    if first > last or not fits(first):
        return None
    good, bad = round(first / step), round(last / step)
    if fits(last):
        good = bad
    else:
        while bad - good > 1:
            mid = (good + bad) // 2
            good, bad = (mid, bad) if fits(mid * step) else (good, mid)
    best = round(good * step, 6)
    spec = _spec(best, family)
    detail = model.predict_detail(spec)
    return PhiSuggestion(
        phi=best,
        spec=spec,
        macs=int(features(spec)["macs"]),
        predicted_ms=detail.latency_ms,
        rel_uncertainty=detail.rel_uncertainty,
        budget_ms=float(budget_ms),
        lo_variant=lo_v.name,
        hi_variant=hi_v.name,
        phi_range=(lo, hi),
    )
