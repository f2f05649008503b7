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
from functools import lru_cache

from ..errors import EdgenetError, VariantError
from ..family.variants import BASELINE_NAMES, parse_variant

__all__ = [
    "STATS",
    "Candidate",
    "Selection",
    "SettingKey",
    "analytic_counts",
    "bench_group",
    "device_name",
    "is_emulated",
    "select",
    "top1_percent",
    "variant_label",
    "variant_of",
]

STATS = ("p50", "p90", "p95", "p99", "mean", "min", "max")


@dataclass(frozen=True)
class SettingKey:
    """What makes latencies comparable: the device and how the interpreter ran."""

    device: str
    threads: int | None
    delegate: str | None
    xnnpack: bool | None

    def describe(self) -> str:
        xnn = {True: "xnnpack on", False: "xnnpack off", None: "xnnpack ?"}[self.xnnpack]
        return f"{self.device} threads={self.threads} delegate={self.delegate or 'cpu'} {xnn}"


def device_name(record: dict) -> str:
    """The user's label for the device, else its hostname."""
    device = record.get("device") or {}
    return str(device.get("label") or device.get("hostname") or "unknown-device")


def _setting_key(record: dict) -> SettingKey:
    settings = record.get("settings") or {}
    device = record.get("device") or {}
    delegate = settings.get("delegate") or ((device.get("delegate") or {}).get("name"))
    return SettingKey(device_name(record), settings.get("threads"), delegate, settings.get("xnnpack"))


def is_emulated(record: dict) -> bool:
    """True for a record made under an emulator (``device.emulation``, e.g. tools/emulated-pi)."""
    return bool((record.get("device") or {}).get("emulation"))


def _usable_bench(record: dict) -> bool:
    """A successful latency measurement of real hardware.

    An emulated device's latency is the emulator's speed, not the board's (qemu runs a Pi's code
    60-140x slower than a Pi): like a CPU figure under an Edge TPU label, it must never be picked
    on, reported or plotted as the board's, so it is left out here, where select, the latency
    model and the report all take their latencies.
    """
    return (record.get("kind") == "bench" and record.get("error") is None and bool(record.get("latency_ms"))
            and not is_emulated(record))


def bench_group(
    records: list[dict], device: str | None = None, threads: int | None = None
) -> tuple[SettingKey, list[dict]]:
    """The successful bench records of ONE device + setting, or a one-line refusal.

    ``device`` matches the device label or hostname. Raises :class:`EdgenetError` listing
    what was found when nothing matches or more than one setting remains.
    """
    bench = [r for r in records if _usable_bench(r)]
    if device is not None:
        bench = [
            r
            for r in bench
            if device in ((r.get("device") or {}).get("label"), (r.get("device") or {}).get("hostname"))
        ]
    if threads is not None:
        bench = [r for r in bench if (r.get("settings") or {}).get("threads") == threads]
    groups: dict[SettingKey, list[dict]] = {}
    for record in bench:
        groups.setdefault(_setting_key(record), []).append(record)
    if not groups:
        everything = sorted({_setting_key(r).describe() for r in records if _usable_bench(r)})
        narrowed = (
            " for "
            + ", ".join(
                x for x in (f"device {device!r}" if device else "", f"threads={threads}" if threads else "") if x
            )
            if (device or threads)
            else ""
        )
        found = f"; found: {'; '.join(everything)}" if everything else ""
        emulated = sum(1 for r in records if r.get("kind") == "bench" and is_emulated(r))
        if emulated:
            found += (f"; {emulated} result(s) from an emulated device left out: emulated latency is the "
                      "emulator's speed, not the board's")
        raise EdgenetError(f"no successful bench results{narrowed}{found}")
    if len(groups) > 1:
        found = "; ".join(
            f"{key.describe()} ({len(rs)} results)"
            for key, rs in sorted(groups.items(), key=lambda kv: kv[0].describe())
        )
        raise EdgenetError(
            f"results mix {len(groups)} devices/settings, latencies are not comparable: {found}; "
            "choose one with --device NAME and/or --threads N"
        )
    ((key, group),) = groups.items()
    return key, group


@lru_cache(maxsize=256)
def counts_if_known(variant_text: str) -> dict:
    """:func:`analytic_counts`, or an empty dict when the text names no variant (a model from elsewhere)."""
    try:
        return analytic_counts(variant_text)
    except (VariantError, ValueError):
        return {}


def analytic_counts(variant_text: str) -> dict:
    """Params, MACs, resolution and int8 size estimated from a variant name or spec.

    Reference models (MobileNetV2, ResNet-50) are not EfficientNets: their published counts
    are used. Unknown names raise :class:`VariantError`.
    """
    from ..family.architecture import architecture

    variant = parse_variant(variant_text)
    if variant.family == "baseline":
        pub = variant.published
        return {
            "variant": variant.name,
            "resolution": variant.resolution,
            "params": pub.params or (int(pub.params_approx) if pub.params_approx else None),
            "macs": int(pub.macs) if pub.macs else None,
            "int8_size_bytes": None,
            "phi": None,
        }
    arch = architecture(variant)
    return {
        "variant": variant.name,
        "resolution": arch.resolution,
        "params": arch.params,
        "macs": arch.macs,
        "int8_size_bytes": arch.int8_size_bytes,
        "phi": variant.phi,
    }


def variant_of(record: dict) -> str | None:
    """The variant a record is about: the manifest's name, else a model name that parses as one."""
    model = record.get("model") or {}
    for text in (model.get("variant"), model.get("name")):
        if text:
            try:
                return variant_label(str(text))
            except VariantError:
                continue
    return None


def variant_label(text: str) -> str:
    """A canonical, re-parseable label: the table name, or the spec of a custom variant."""
    variant = parse_variant(text)
    return variant.spec if variant.is_custom else variant.name


def top1_percent(value) -> float | None:
    """Top-1 accuracy as a percentage; a value <= 1 is read as a fraction (0.771 -> 77.1).

    The results schema does not pin the unit, and both appear in practice. No real model is
    evaluated at <= 1 % top-1 on purpose, so the rule is unambiguous for anything worth picking.
    """
    if value is None:
        return None
    value = float(value)
    return value * 100.0 if value <= 1.0 else value


def _latest(records: list[dict]) -> dict:
    return max(records, key=lambda r: str(r.get("created_utc") or ""))


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
    top1: float | None  # percent, from an eval record of the same model; None when unknown
    fits: bool  # within budget AND (top-1 unknown or above the floor)
    reason: str
    flags: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        data = asdict(self)
        data["flags"] = list(self.flags)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Candidate:
        data = dict(data)
        data["flags"] = tuple(data.get("flags") or ())
        return cls(**data)


@dataclass(frozen=True)
class Selection:
    """The outcome of :func:`select`: every candidate, the pick (or None) and the closest miss."""

    budget_ms: float
    stat: str
    min_top1: float | None
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


def _accuracy_index(records: list[dict]) -> tuple[dict, dict]:
    """Latest eval top-1 per model sha256 and per (variant, quant)."""
    by_sha: dict[str, list[dict]] = {}
    by_variant: dict[tuple, list[dict]] = {}
    for r in records:
        if r.get("kind") != "eval" or r.get("error") is not None:
            continue
        if top1_percent((r.get("accuracy") or {}).get("top1")) is None:
            continue
        model = r.get("model") or {}
        if model.get("sha256"):
            by_sha.setdefault(model["sha256"], []).append(r)
        variant = variant_of(r)
        if variant:
            by_variant.setdefault((variant, model.get("quant")), []).append(r)

    def top(rs):
        return top1_percent(_latest(rs)["accuracy"]["top1"])

    return {k: top(v) for k, v in by_sha.items()}, {k: top(v) for k, v in by_variant.items()}


def select(
    records: list[dict],
    budget_ms: float,
    stat: str = "p50",
    min_top1: float | None = None,
    device: str | None = None,
    threads: int | None = None,
) -> Selection:
    """The largest variant (by MACs) whose ``stat`` latency fits ``budget_ms``.

    Candidates are the successful bench records of one device + setting (see
    :func:`bench_group`); a model measured more than once counts with its latest record.
    ``min_top1`` (percent) disqualifies models whose known top-1 is lower. Ties in MACs go to
    the lower latency, then the name. When nothing fits, ``pick`` is None and ``closest`` is
    the fastest model over the budget (or, if every model failed only on accuracy, the most
    accurate one).
    """
    if stat not in STATS:
        raise EdgenetError(f"unknown latency statistic {stat!r}; choose from {', '.join(STATS)}")
    if not budget_ms > 0:
        raise EdgenetError(f"the latency budget must be > 0 ms, got {budget_ms:g}")
    key, group = bench_group(records, device=device, threads=threads)
    by_sha, by_variant = _accuracy_index(records)
    notes: list[str] = []

    latest: dict[tuple, list[dict]] = {}
    for r in group:
        model = r.get("model") or {}
        ident = (variant_of(r) or model.get("name") or model.get("path") or "?", model.get("quant"))
        latest.setdefault(ident, []).append(r)

    rows = []
    repeated: list[str] = []
    for (variant, quant), rs in latest.items():
        if variant in BASELINE_NAMES:
            # Bigger is not better across architectures: ResNet-50 has 10x B0's MACs and lower
            # accuracy. Reference models are compared in the report, never picked.
            notes.append(f"{variant} is a reference model, not a candidate")
            continue
        r = _latest(rs)
        if len(rs) > 1:
            repeated.append(variant)
        latency = (r.get("latency_ms") or {}).get(stat)
        if latency is None:
            notes.append(f"{variant}: no {stat} latency in its result, left out")
            continue
        model = r.get("model") or {}
        counts = counts_if_known(variant)
        macs = model.get("macs") or counts.get("macs")
        top1 = by_sha.get(model.get("sha256")) if model.get("sha256") else None
        if top1 is None:
            top1 = by_variant.get((variant, quant))
        rows.append(
            dict(
                variant=variant,
                quant=quant,
                model_name=model.get("name"),
                sha256=model.get("sha256"),
                macs=int(macs) if macs is not None else None,
                params=model.get("params") or counts.get("params"),
                resolution=model.get("resolution") or counts.get("resolution"),
                size_bytes=model.get("size_bytes"),
                latency_ms=float(latency),
                top1=top1,
            )
        )

    if repeated:
        notes.append(f"measured more than once, the latest result is used: {', '.join(repeated)}")
    # Largest first; among equal MACs the faster, then the name (stable, reproducible).
    rows.sort(key=lambda d: (-(d["macs"] if d["macs"] is not None else -1), d["latency_ms"], d["variant"]))
    pick_index = None
    verdicts = []
    for i, d in enumerate(rows):
        over = d["latency_ms"] - budget_ms
        in_budget = over <= 0
        acc_ok = min_top1 is None or d["top1"] is None or d["top1"] >= min_top1
        problems = []
        if not in_budget:
            problems.append(f"over budget by {over:.2f} ms")
        if not acc_ok:
            problems.append(f"top-1 {d['top1']:.1f} below floor {min_top1:g}")
        flags = ("top-1 unknown",) if (min_top1 is not None and d["top1"] is None) else ()
        fits = in_budget and acc_ok
        if problems:
            reason = "; ".join(problems)
        elif d["macs"] is None:
            reason = "fits, but its size (MACs) is unknown, so it cannot be ranked"
            fits = False
        elif pick_index is None:
            reason, pick_index = "picked", i
        else:
            pick = rows[pick_index]
            reason = (
                "smaller than the pick"
                if d["macs"] < pick["macs"]
                else "same MACs as the pick but slower"
                if d["latency_ms"] > pick["latency_ms"]
                else "same MACs and latency as the pick; the pick comes first by name"
            )
        verdicts.append(
            Candidate(
                **d,
                margin_ms=budget_ms - d["latency_ms"],
                margin_pct=100.0 * (budget_ms - d["latency_ms"]) / budget_ms,
                fits=fits,
                reason=reason,
                flags=flags,
            )
        )
    if min_top1 is not None and any("top-1 unknown" in c.flags for c in verdicts):
        notes.append("top-1 unknown for some candidates: they were not held to the accuracy floor")

    pick = verdicts[pick_index] if pick_index is not None else None
    closest = None
    if pick is None and verdicts:
        over = [c for c in verdicts if c.latency_ms > budget_ms]
        if over:
            closest = min(over, key=lambda c: (c.latency_ms, c.variant))
        else:
            closest = max(verdicts, key=lambda c: (c.top1 if c.top1 is not None else -1.0, -c.latency_ms))
    return Selection(
        budget_ms=float(budget_ms),
        stat=stat,
        min_top1=min_top1,
        setting=key,
        candidates=tuple(verdicts),
        pick=pick,
        closest=closest,
        notes=tuple(notes),
    )
