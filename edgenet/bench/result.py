"""The read-only outcome of benchmarking one (model, threads) setting."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone

import numpy as np

from .. import results
from .params import BenchParams

__all__ = ["BenchResult", "LatencyStats"]

#: numpy percentiles of the harness: the ``pNN`` statistics of the results schema.
PERCENTILES = tuple(int(s[1:]) for s in results.PERCENTILES)


@dataclass(frozen=True)
class LatencyStats:
    """Summary of per-invocation latencies in milliseconds (numpy percentiles, method="linear")."""

    mean: float
    std: float
    min: float
    p50: float
    p90: float
    p95: float
    p99: float
    max: float

    @classmethod
    def from_samples(cls, samples_ms) -> LatencyStats | None:
        data = np.asarray(samples_ms, dtype=np.float64)
        if data.size == 0:
            return None
        p50, p90, p95, p99 = (float(v) for v in np.percentile(data, PERCENTILES, method="linear"))
        return cls(
            mean=float(data.mean()),
            std=float(data.std(ddof=1)) if data.size > 1 else 0.0,
            min=float(data.min()),
            p50=p50,
            p90=p90,
            p95=p95,
            p99=p99,
            max=float(data.max()),
        )


@dataclass(frozen=True)
class BenchResult:
    """Everything measured for one setting. ``error`` set means the numbers must not be used.

    ``samples_ms`` is a tuple so the result stays immutable; ``latency`` is derived from it.
    """

    model_path: str
    params: BenchParams
    model: dict | None = None
    runtime: dict | None = None
    delegate: dict | None = None
    init_ms: float | None = None
    first_ms: float | None = None
    samples_ms: tuple[float, ...] = ()
    failed_runs: int = 0
    peak_rss_mb: float | None = None
    init_memory_mb: dict | None = None  # {"anon", "file"} MB added by init + first run (runner.resident_mb)
    rss_after_first_run_mb: float | None = None  # resident (private + file-backed) after init + first run
    error: str | None = None
    device: dict | None = None
    # When it was measured, fixed once: the JSON line and the CSV row of one result carry the same time.
    created_utc: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    latency: LatencyStats | None = field(default=None, init=False)

    def __post_init__(self):
        object.__setattr__(self, "samples_ms", tuple(float(x) for x in self.samples_ms))
        object.__setattr__(self, "latency", LatencyStats.from_samples(self.samples_ms))

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def runs(self) -> int:
        return len(self.samples_ms)

    @property
    def size_bytes(self) -> int | None:
        return (self.model or {}).get("size_bytes")

    def latency_ms(self) -> dict:
        """The ``latency_ms`` object of a result record."""
        stats = asdict(self.latency) if self.latency else {}
        return {"init": self.init_ms, "first": self.first_ms, **stats}

    def with_device(self, device: dict) -> BenchResult:
        return replace(self, device=device)

    def to_record(self) -> dict:
        """This result as an ``edgenet.result/1`` record."""
        model = self.model or {"path": self.model_path, "name": self.model_path.rsplit("/", 1)[-1]}
        return results.make_record(
            "bench",
            model=model,
            device=self.device,
            settings=self.params.settings(),
            latency_ms=self.latency_ms(),
            runs=self.runs,
            failed_runs=self.failed_runs,
            peak_rss_mb=self.peak_rss_mb,
            init_memory_mb=self.init_memory_mb,
            rss_after_first_run_mb=self.rss_after_first_run_mb,
            samples_ms=self.samples_ms,
            error=self.error,
            created_utc=self.created_utc,
        )

    def to_dict(self) -> dict:
        """Wire format between the child process and the parent."""
        data = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in ("latency", "params")}
        data["samples_ms"] = list(self.samples_ms)
        data["params"] = self.params.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict) -> BenchResult:
        data = dict(data)
        data["params"] = BenchParams.from_dict(data["params"])
        data.pop("latency", None)
        return cls(**data)
