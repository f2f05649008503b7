"""Typed, read-only views over ``edgenet.result/1`` records, and the queries their readers share.

A results line is read once, here, into a frozen dataclass with the units in its field names
(``p50_ms``, ``top1_fraction``, ``size_bytes``); everything outside :mod:`edgenet.results` works
with attributes, never with ``record.get("x") or {}``. Accuracies are fractions (0..1) in every
view: the schema's writers store fractions, and records from before that rule that stored a
percentage (``77.1``) are converted here, once (see :func:`fraction_from_stored`).

The queries are the ones select, the latency model, the report and the sweep all need: which
records are usable bench results, which device + setting they belong to (:class:`SettingKey`,
:func:`bench_group`), the variant a record is about (:func:`variant_of`), the latest record per
model (:func:`latest`), and the top-1 known for a model (:class:`AccuracyIndex`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

from ..errors import EdgenetError, VariantError
from ..family.variants import parse_variant
from .schema import NESTED_FIELDS

__all__ = [
    "PERCENTILES",
    "STATS",
    "AccuracyIndex",
    "BenchRecord",
    "ConvertRecord",
    "DeviceInfo",
    "EvalRecord",
    "Latency",
    "ModelInfo",
    "Record",
    "SettingKey",
    "accuracy_index",
    "as_record",
    "as_records",
    "bench_group",
    "fraction_from_stored",
    "latest",
    "latest_by",
    "usable_bench",
    "variant_label",
    "variant_of",
    "with_model_path",
]

#: Latency statistics a budget can be held to, in the order commands list them (the keys of
#: ``latency_ms`` that describe the timed runs; ``init``/``first``/``std`` are not budgets).
#: Derived from the schema: the percentiles first (what a budget usually holds to), then the rest.
STATS: tuple[str, ...] = tuple(sorted(
    (k for k in NESTED_FIELDS["latency_ms"] if k not in ("init", "first", "std")),
    key=lambda k: (not k.startswith("p"), ("mean", "min", "max").index(k) if not k.startswith("p") else int(k[1:]))))
#: The percentiles among them (what a budget usually holds to, and what the harness computes).
PERCENTILES: tuple[str, ...] = tuple(s for s in STATS if s.startswith("p"))


def _obj(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def fraction_from_stored(value: float | None) -> float | None:
    """An accuracy as stored in a record, as a fraction 0..1.

    edgenet writes fractions; some older records (and hand-written ones) hold percentages. A
    value above 1 can only be a percentage and is divided by 100. No real model is evaluated at
    <= 1 % top-1 on purpose, so the rule is unambiguous for anything worth reading.
    """
    if value is None:
        return None
    value = float(value)
    return value / 100.0 if value > 1.0 else value


@dataclass(frozen=True)
class ModelInfo:
    """The ``model`` object: which file, which variant, how big."""

    path: str | None = None
    name: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    variant: str | None = None
    quant: str | None = None
    resolution: int | None = None
    params: int | None = None
    macs: int | None = None
    # From the manifest beside the model (absent: None).
    #: Edge TPU parameter bytes streamed from host memory on every inference: the compiler's figure where it
    #: ran (``edgetpu.compiler``), else the static check's estimate (``edgetpu.static_check``).
    edgetpu_off_chip_bytes: int | None = None
    edgetpu_off_chip_source: str | None = None  # "edgetpu_compiler" | "static check"
    #: The conversion's top-1 agreement with the float model on held-out photos, its 95 % interval and method.
    fidelity_agreement_fraction: float | None = None
    fidelity_agreement_ci95: tuple[float, float] | None = None
    fidelity_ci_method: str | None = None

    @classmethod
    def from_dict(cls, data: dict | None) -> ModelInfo:
        data = _obj(data)
        manifest = _obj(data.get("manifest"))
        edgetpu = _obj(manifest.get("edgetpu"))
        compiled, static = _obj(edgetpu.get("compiler")), _obj(edgetpu.get("static_check"))
        off_chip, source = None, None
        if compiled.get("off_chip_used_bytes") is not None:
            off_chip, source = int(compiled["off_chip_used_bytes"]), "edgetpu_compiler"
        elif static.get("param_bytes_off_chip") is not None:
            off_chip, source = int(static["param_bytes_off_chip"]), "static check"
        fidelity = _obj(manifest.get("fidelity"))
        ci = fidelity.get("top1_agreement_ci95")
        own = {name: data.get(name) for name in cls.__dataclass_fields__ if name in _MODEL_KEYS}
        return cls(**own, edgetpu_off_chip_bytes=off_chip, edgetpu_off_chip_source=source,
                   fidelity_agreement_fraction=fraction_from_stored(fidelity.get("top1_agreement")),
                   fidelity_agreement_ci95=(float(ci[0]), float(ci[1])) if isinstance(ci, list | tuple) and len(ci) == 2
                   else None,
                   fidelity_ci_method=fidelity.get("ci_method"))


_MODEL_KEYS = ("path", "name", "sha256", "size_bytes", "variant", "quant", "resolution", "params", "macs")


@dataclass(frozen=True)
class DeviceInfo:
    """The ``device`` object's machine description (the runtime and delegate are on the record)."""

    label: str | None = None
    hostname: str | None = None
    machine: str | None = None
    cpu_model: str | None = None
    cores: int | None = None
    governor: str | None = None
    freq_mhz: float | None = None
    os: str | None = None
    python: str | None = None
    #: The one "measured on" line (CPU, int8 ISA features, cores, load): edgenet.runtime.envinfo.measured_on.
    measured_on: str | None = None

    @classmethod
    def from_dict(cls, data: dict | None) -> DeviceInfo:
        data = _obj(data)
        return cls(**{name: data.get(name) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Latency:
    """The ``latency_ms`` object, in milliseconds."""

    init_ms: float | None = None
    first_ms: float | None = None
    mean_ms: float | None = None
    std_ms: float | None = None
    min_ms: float | None = None
    p50_ms: float | None = None
    p90_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None

    @classmethod
    def from_dict(cls, data: dict | None) -> Latency:
        data = _obj(data)
        return cls(**{name: data.get(name.removesuffix("_ms")) for name in cls.__dataclass_fields__})

    def stat_ms(self, stat: str) -> float | None:
        """The latency of one statistic (``"p50"``, ``"mean"``, ``"init"``, ...)."""
        name = f"{stat}_ms"
        if name not in self.__dataclass_fields__:
            raise ValueError(f"unknown latency statistic {stat!r}")
        return getattr(self, name)


@dataclass(frozen=True)
class SettingKey:
    """What makes latencies comparable: the device and how the interpreter ran."""

    device: str
    threads: int | None
    delegate: str | None
    xnnpack: bool | None
    #: Runtime settings beyond the defaults (``bench --api/--xnnpack-latest/--xnnpack-weight-cache``), e.g.
    #: "compiled+cache"; "" for the default Interpreter, so older records and keys compare as before.
    engine: str = ""

    def describe(self) -> str:
        xnn = {True: "xnnpack on", False: "xnnpack off", None: "xnnpack ?"}[self.xnnpack]
        text = f"{self.device} threads={self.threads} delegate={self.delegate or 'cpu'} {xnn}"
        return f"{text} {self.engine}" if self.engine else text


@dataclass(frozen=True, kw_only=True)
class Record:
    """What every record kind has. ``raw`` is the stored dictionary, for writing it back unchanged."""

    kind: str
    created_utc: str
    model: ModelInfo
    device: DeviceInfo
    delegate_ran: str | None  # device.delegate.name: set only when a delegate really ran the model
    threads: int | None
    xnnpack: bool | None
    delegate_setting: str | None  # settings.delegate: what was asked for
    error: str | None
    emulation: str | None = None  # device.emulation, e.g. "pi4 cortex-a72 (qemu-user 7.2.22)"; None: real hardware
    raw: dict = field(repr=False, compare=False)
    # Runtime settings (issue 16); absent in older records, which ran the defaults.
    api: str = "interpreter"
    xnnpack_latest: bool = False
    xnnpack_weight_cache: bool = False
    ynnpack: bool = False  # CompiledModel with YNNPACK before XNNPACK (issue 24)
    throttled_before: str | None = None  # a Raspberry Pi's `vcgencmd get_throttled` before the run
    throttled_after: str | None = None  # ... and after it (None where vcgencmd is absent)

    @property
    def emulated(self) -> bool:
        """Made under an emulator (tools/emulated-pi): ARM code and numerics, but never a board's latency."""
        return self.emulation is not None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def device_name(self) -> str:
        """The user's label for the device, else its hostname."""
        return str(self.device.label or self.device.hostname or "unknown-device")

    @property
    def delegate(self) -> str | None:
        """The delegate of the setting: the one asked for, else the one that ran."""
        return self.delegate_setting or self.delegate_ran

    @property
    def setting(self) -> SettingKey:
        return SettingKey(self.device_name, self.threads, self.delegate, self.xnnpack, self.engine)

    @property
    def engine(self) -> str:
        """The non-default runtime settings in one word ("" for the default Interpreter)."""
        parts = [] if self.api == "interpreter" else [self.api]
        parts += ["latest"] if self.xnnpack_latest else []
        parts += ["cache"] if self.xnnpack_weight_cache else []
        parts += ["ynnpack"] if self.ynnpack else []
        return "+".join(parts)

    def on_device(self, device: str) -> bool:
        """True when ``device`` is this record's device label or hostname."""
        return device in (self.device.label, self.device.hostname)

    @cached_property
    def variant(self) -> str | None:
        """The variant this record is about (see :func:`variant_of`)."""
        for text in (self.model.variant, self.model.name):
            if text:
                try:
                    return variant_label(str(text))
                except VariantError:
                    continue
        return None

    @property
    def model_label(self) -> str:
        """The variant, else the model's name or path: how tables name the model."""
        return self.variant or self.model.name or self.model.path or "?"

    @staticmethod
    def _common(data: dict) -> dict:
        device = _obj(data.get("device"))
        settings = _obj(data.get("settings"))
        return dict(
            kind=str(data.get("kind")),
            created_utc=str(data.get("created_utc") or ""),
            model=ModelInfo.from_dict(data.get("model")),
            device=DeviceInfo.from_dict(device),
            delegate_ran=_obj(device.get("delegate")).get("name"),
            threads=settings.get("threads"),
            xnnpack=settings.get("xnnpack"),
            delegate_setting=settings.get("delegate"),
            error=data.get("error"),
            emulation=_emulation_text(device.get("emulation")),
            raw=data,
            api=settings.get("api") or "interpreter",
            xnnpack_latest=bool(settings.get("xnnpack_latest")),
            xnnpack_weight_cache=bool(settings.get("xnnpack_weight_cache")),
            ynnpack=bool(settings.get("ynnpack")),
            throttled_before=device.get("throttled_before"),
            throttled_after=device.get("throttled_after"),
        )


@dataclass(frozen=True, kw_only=True)
class BenchRecord(Record):
    """A ``bench`` record: latencies of one model under one setting."""

    latency: Latency | None  # None when the record holds no latency object (e.g. it failed early)
    runs: int | None
    failed_runs: int | None
    peak_rss_mb: float | None
    samples_ms: tuple[float, ...]
    init_anon_mb: float | None = None  # private memory the model's init and first run added
    init_file_mb: float | None = None  # file-backed (shareable) memory they added
    #: The measuring process's resident memory after init and the first run: private + file-backed (MiB-based MB).
    rss_after_first_run_mb: float | None = None

    @property
    def measured(self) -> bool:
        """A successful measurement with latencies (on real hardware or under an emulator)."""
        return self.ok and self.latency is not None

    @property
    def usable(self) -> bool:
        """A successful measurement of real hardware: the only kind a decision may use.

        An emulated device's latency is the emulator's speed, not the board's (qemu runs a Pi's code
        hundreds of times slower than a Pi): like a CPU figure under an Edge TPU label, it is never
        picked on, tabulated or plotted as the board's, so select, the latency model, the report and
        the sweep, which all take their latencies from here, leave it out.
        """
        return self.measured and not self.emulated

    def stat_ms(self, stat: str) -> float | None:
        return None if self.latency is None else self.latency.stat_ms(stat)

    @classmethod
    def from_dict(cls, data: dict) -> BenchRecord:
        latency = data.get("latency_ms")
        return cls(
            **cls._common(data),
            latency=Latency.from_dict(latency) if latency else None,
            runs=data.get("runs"),
            failed_runs=data.get("failed_runs"),
            peak_rss_mb=data.get("peak_rss_mb"),
            samples_ms=tuple(float(x) for x in data.get("samples_ms") or ()),
            init_anon_mb=(data.get("init_memory_mb") or {}).get("anon"),
            init_file_mb=(data.get("init_memory_mb") or {}).get("file"),
            rss_after_first_run_mb=data.get("rss_after_first_run_mb"),
        )


@dataclass(frozen=True, kw_only=True)
class EvalRecord(Record):
    """An ``eval`` record: accuracies as fractions 0..1, whatever unit the file used."""

    top1_fraction: float | None
    top5_fraction: float | None
    count: int | None
    dataset: str | None
    agreement_top1_fraction: float | None
    drop_top1_points: float | None  # percentage points
    reference: str | None

    @classmethod
    def from_dict(cls, data: dict) -> EvalRecord:
        acc = _obj(data.get("accuracy"))
        return cls(
            **cls._common(data),
            top1_fraction=fraction_from_stored(acc.get("top1")),
            top5_fraction=fraction_from_stored(acc.get("top5")),
            count=acc.get("count"),
            dataset=acc.get("dataset"),
            agreement_top1_fraction=fraction_from_stored(acc.get("agreement_top1")),
            drop_top1_points=acc.get("drop_top1_points"),
            reference=acc.get("reference"),
        )


@dataclass(frozen=True, kw_only=True)
class ConvertRecord(Record):
    """A ``convert`` record: the model written (its ``model`` object) or the error."""

    @classmethod
    def from_dict(cls, data: dict) -> ConvertRecord:
        return cls(**cls._common(data))


_VIEWS: dict[str, type[Record]] = {"bench": BenchRecord, "eval": EvalRecord, "convert": ConvertRecord}


def as_record(record: dict | Record) -> Record:
    """The typed view of one record (a view is returned as it is)."""
    if isinstance(record, Record):
        return record
    view = _VIEWS.get(record.get("kind"))
    if view is None:
        raise EdgenetError(f"unknown result kind {record.get('kind')!r}; expected one of {', '.join(_VIEWS)}")
    return view.from_dict(record)


def as_records(records: Iterable[dict | Record]) -> list[Record]:
    """Typed views of many records."""
    return [as_record(r) for r in records]


def with_model_path(record: dict, path: str) -> dict:
    """A copy of a stored record whose ``model.path`` is ``path`` (e.g. a remote path made local)."""
    return {**record, "model": {**_obj(record.get("model")), "path": path}}


def variant_label(text: str) -> str:
    """A canonical, re-parseable label: the table name, or the spec of a custom variant."""
    return parse_variant(text).label


def variant_of(record: dict | Record) -> str | None:
    """The variant a record is about: the manifest's name, else a model name that parses as one."""
    return as_record(record).variant


def _emulation_text(value: Any) -> str | None:
    """``{"emulator", "cpu", "profile"}`` -> ``"pi4 cortex-a72 (qemu-user 7.2.22)"``; None when not emulated."""
    if not value:
        return None
    data = _obj(value)
    what = " ".join(str(data[k]) for k in ("profile", "cpu") if data.get(k)) or "unknown CPU"
    return f"{what} ({data.get('emulator') or 'emulator'})"


def usable_bench(records: Iterable[dict | Record], *, emulated: bool = False) -> list[BenchRecord]:
    """The successful bench records (with latencies) of real hardware, as views.

    ``emulated=True`` also returns those made under an emulator (to reuse, never to decide on).
    """
    views = [r for r in as_records(records) if isinstance(r, BenchRecord)]
    return [r for r in views if (r.measured if emulated else r.usable)]


R = TypeVar("R", bound=Record)


def latest(records: Iterable[R]) -> R:
    """The most recent record (by ``created_utc``; on equal times, the one read last)."""
    return sorted(records, key=lambda r: r.created_utc)[-1]


def latest_by(records: Iterable[R], key: Callable[[R], Hashable]) -> dict[Hashable, list[R]]:
    """Records grouped by ``key``, each group oldest first (so ``group[-1]`` is the latest)."""
    groups: dict[Hashable, list[R]] = {}
    for record in sorted(records, key=lambda r: r.created_utc):
        groups.setdefault(key(record), []).append(record)
    return groups


def bench_group(
    records: Iterable[dict | Record], device: str | None = None, threads: int | None = None
) -> tuple[SettingKey, list[BenchRecord]]:
    """The successful bench records of ONE device + setting, or a one-line refusal.

    ``device`` matches the device label or hostname. Raises :class:`EdgenetError` listing what
    was found when nothing matches or more than one setting remains: silently comparing a Pi at
    four threads with a laptop at one would pick the wrong model.
    """
    usable = usable_bench(records)
    bench = [r for r in usable if (device is None or r.on_device(device)) and (threads is None or r.threads == threads)]
    groups: dict[SettingKey, list[BenchRecord]] = {}
    for record in bench:
        groups.setdefault(record.setting, []).append(record)
    if not groups:
        everything = sorted({r.setting.describe() for r in usable})
        wanted = [x for x in (f"device {device!r}" if device else "", f"threads={threads}" if threads else "") if x]
        narrowed = " for " + ", ".join(wanted) if wanted else ""
        found = f"; found: {'; '.join(everything)}" if everything else ""
        emulated = sum(1 for r in as_records(records) if isinstance(r, BenchRecord) and r.emulated)
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


@dataclass(frozen=True)
class AccuracyIndex:
    """The latest known top-1 (fraction) per model file (sha256) and per (variant, quant)."""

    by_sha256: dict[str, float]
    by_variant_quant: dict[tuple[str, str | None], float]

    def top1_fraction(self, record: Record) -> float | None:
        """Top-1 of the model ``record`` is about: its own file's eval first, else its variant's."""
        if record.model.sha256 and record.model.sha256 in self.by_sha256:
            return self.by_sha256[record.model.sha256]
        return self.by_variant_quant.get((record.model_label, record.model.quant))


def accuracy_index(records: Iterable[dict | Record]) -> AccuracyIndex:
    """Index the successful eval records that know a top-1 (the latest one wins)."""
    evals = [
        r for r in as_records(records) if isinstance(r, EvalRecord) and r.ok and r.top1_fraction is not None
    ]
    by_sha: dict[str, float] = {}
    by_variant: dict[tuple[str, str | None], float] = {}
    for r in sorted(evals, key=lambda r: r.created_utc):
        if r.model.sha256:
            by_sha[r.model.sha256] = r.top1_fraction
        if r.variant:
            by_variant[(r.variant, r.model.quant)] = r.top1_fraction
    return AccuracyIndex(by_sha, by_variant)
