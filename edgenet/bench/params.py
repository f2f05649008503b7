"""Benchmark parameters: one frozen object, defaults in one place (as the TFLite benchmark tool)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace

from ..errors import EdgenetError
from ..numbers import COUNT, DURATION_S, THREADS, TIMEOUT_S, Bounds, NumberError
from ..runtime.delegates import DELEGATES, EDGETPU_LIBRARY

__all__ = ["APIS", "BenchParams", "BenchParamsError", "DELEGATES", "QUANTILES", "option_fields", "runs_needed"]

#: How the model is run: LiteRT's Interpreter, or its CompiledModel API (ai-edge-litert 2.x).
APIS = ("interpreter", "compiled")
#: Slack on top of warm-up + max time before a child is declared hung: interpreter creation,
#: process start-up and, on a Pi, reading a large model from an SD card.
TIMEOUT_SLACK_S = 60.0
#: Percentile statistic -> the quantile it estimates (the ``pNN`` latencies of a record).
QUANTILES: dict[str, float] = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99}


def runs_needed(q: float, confidence: float = 0.95) -> int:
    """Fewest runs for which both ends of the ``q`` quantile's distribution-free interval exist (p99 at 95%: 367):
    the slowest of ``n`` runs bounds the quantile from above with probability ``1 - q**n``."""
    tail = (1.0 - confidence) / 2.0
    extreme = max(q, 1.0 - q)
    return max(1, math.ceil(math.log(tail) / math.log(extreme)))


class BenchParamsError(EdgenetError, ValueError):
    """A benchmark option out of range."""


def _option(help: str, bounds: Bounds | None = None, *, choices: tuple[str, ...] | None = None,
            flag: str | None = None) -> dict:
    """A field's command-line option: ``flag`` set for a switch (``--no-xnnpack`` stores False)."""
    return {"help": help, "bounds": bounds, "choices": choices, "flag": flag}


def option_fields() -> tuple:
    """The fields of :class:`BenchParams` that are command-line options, in declaration order."""
    return tuple(f for f in fields(BenchParams) if "help" in f.metadata)


@dataclass(frozen=True)
class BenchParams:
    """How to measure one (model, threads) setting.

    Warm-up is by time, not by count: caches, the CPU governor and XNNPACK's weight packing settle
    after a wall-clock interval whatever the model size. The measured phase runs until at least
    ``min_runs`` invocations AND at least ``min_s`` seconds, capped by ``max_s`` (so a slow model on
    a Pi still finishes); ``timeout_s`` kills a hung child (default: warm-up + max + 60 s).
    """

    # Each field's metadata is its command-line option (edgenet.cli.options generates the harness
    # flags of bench, tune, profile and sweep from it): help text, bounds, choices, and the flag name
    # where it is not ``--field-name``.
    threads: int = field(default=1, metadata=_option("Interpreter threads.", THREADS))
    xnnpack: bool = field(default=True, metadata=_option(
        "Builtin kernels without the default XNNPACK delegate.", flag="--no-xnnpack"))
    delegate: str = field(default="cpu", metadata=_option(
        "Run the model on this delegate (edgetpu: a model compiled for the Edge TPU).", choices=DELEGATES))
    warmup_s: float = field(default=1.0, metadata=_option("Warm-up time before timing starts.", DURATION_S))
    min_runs: int = field(default=50, metadata=_option("Timed invocations at least.", COUNT))
    min_s: float = field(default=2.0, metadata=_option("Measured time at least.", DURATION_S))
    max_s: float = field(default=30.0, metadata=_option("Cap on measured time.", DURATION_S))
    timeout_s: float | None = field(default=None, metadata=_option(
        "Kill a measuring process after this long; with --remote the whole remote run (connection and copying "
        "included) is bounded by it  [default: from the warm-up and maximum times: bench warm-up + max + 60].",
        TIMEOUT_S))
    seed: int = 0
    edgetpu_lib: str = field(default=EDGETPU_LIBRARY, metadata=_option("Edge TPU delegate library."))
    #: XNNPACK with every flag-protected feature (``experimental_default_delegate_latest_features``).
    xnnpack_latest: bool = field(default=False, metadata=_option(
        "XNNPACK with its flag-protected latest features.", flag="--xnnpack-latest"))
    api: str = field(default="interpreter", metadata=_option(
        "LiteRT's Interpreter or its CompiledModel API (ai-edge-litert 2.x).", choices=APIS))
    #: XNNPACK weight cache file (CompiledModel only): packed weights mapped at start-up, not rebuilt.
    xnnpack_weight_cache: bool = field(default=False, metadata=_option(
        "XNNPACK weight cache file (with --api compiled): packed weights reused across starts.",
        flag="--xnnpack-weight-cache"))
    #: YNNPACK before XNNPACK (CompiledModel only, where the installed LiteRT has the option).
    ynnpack: bool = field(default=False, metadata=_option(
        "YNNPACK before XNNPACK (with --api compiled, where the installed LiteRT offers it).", flag="--ynnpack"))

    def __post_init__(self):
        for f in option_fields():  # finite and in range, as on the command line
            bounds, value = f.metadata["bounds"], getattr(self, f.name)
            if bounds is None or value is None:
                continue
            if bounds.integer and not isinstance(value, int):
                raise BenchParamsError(f"{f.name} must be a whole number, got {value!r}")
            try:
                object.__setattr__(self, f.name, bounds.check(value, f.name))
            except NumberError as exc:
                raise BenchParamsError(str(exc)) from None
        if self.delegate not in DELEGATES:
            raise BenchParamsError(f"unknown delegate {self.delegate!r}; choose from {', '.join(DELEGATES)}")
        if self.max_s < self.min_s:
            raise BenchParamsError(f"max_s ({self.max_s}) must be >= min_s ({self.min_s})")
        if self.api not in APIS:
            raise BenchParamsError(f"unknown api {self.api!r}; choose from {', '.join(APIS)}")
        if self.xnnpack_latest and (not self.xnnpack or self.api != "interpreter"):
            raise BenchParamsError("the XNNPACK latest-features switch needs the interpreter api with XNNPACK on")
        if self.xnnpack_weight_cache and self.api != "compiled":
            raise BenchParamsError("the XNNPACK weight cache needs --api compiled (the Python Interpreter has none)")
        if self.ynnpack and self.api != "compiled":
            raise BenchParamsError("YNNPACK needs --api compiled (the Python Interpreter has no YNNPACK option)")
        if self.api == "compiled" and (self.delegate != "cpu" or not self.xnnpack):
            raise BenchParamsError("--api compiled runs on the CPU with XNNPACK (no --delegate, no --no-xnnpack)")

    def for_stat(self, stat: str, confidence: float = 0.95) -> BenchParams:
        """These parameters raised so that ``stat`` is always judged: at least the runs its interval needs
        (:func:`runs_needed`), and the per-model time cap raised by the same factor as the run count.

        The one rule for every command that holds a percentile to a budget: raising the runs alone lets the
        cap stop the loop first (p99 needs 367 runs; 30 runs in a 20 s cap become 367 in 245 s), and the
        verdict would read "too few runs". A model that gets the asked run count within the asked cap gets
        the statistic's within the raised one; the hung-child timeout follows the cap.
        """
        if stat not in QUANTILES:
            return self
        needed = runs_needed(QUANTILES[stat], confidence)
        if self.min_runs >= needed:
            return self
        factor = needed / self.min_runs
        return replace(self, min_runs=needed, max_s=max(self.max_s * factor, self.min_s),
                       timeout_s=None if self.timeout_s is None else self.timeout_s + self.max_s * (factor - 1))

    @property
    def effective_timeout_s(self) -> float:
        if self.timeout_s is not None:
            return float(self.timeout_s)
        return self.warmup_s + self.max_s + TIMEOUT_SLACK_S

    def to_dict(self) -> dict:
        return asdict(self)

    def label(self) -> str:
        """Short name of the runtime settings, e.g. ``interpreter/xnnpack+latest t=2``."""
        if self.delegate != "cpu":
            engine = self.delegate
        elif not self.xnnpack:
            engine = "builtin"
        else:
            engine = ("ynnpack+" if self.ynnpack else "") + "xnnpack" + ("+latest" if self.xnnpack_latest else "") + (
                "+cache" if self.xnnpack_weight_cache else "")
        return f"{self.api}/{engine} t={self.threads}"

    @classmethod
    def from_dict(cls, data: dict) -> BenchParams:
        return cls(**data)

    def settings(self) -> dict:
        """The ``settings`` object of a result record."""
        return {
            "threads": self.threads,
            "xnnpack": self.xnnpack,
            "delegate": self.delegate,
            "warmup_s": self.warmup_s,
            "min_runs": self.min_runs,
            "min_s": self.min_s,
            "max_s": self.max_s,
            "timeout_s": self.effective_timeout_s,
            "xnnpack_latest": self.xnnpack_latest,
            "api": self.api,
            "xnnpack_weight_cache": self.xnnpack_weight_cache,
            "ynnpack": self.ynnpack,
        }

    def interpreter_options(self) -> dict:
        """Keyword arguments of :func:`edgenet.runtime.interpreter.make_interpreter` beyond the basics."""
        return {"xnnpack_latest": self.xnnpack_latest}
