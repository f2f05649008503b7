"""What a sweep is asked: the variants, the budget, how to convert, measure and decide (not where)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from ..bench import BenchParams
from ..decide.constraints import Constraints
from ..errors import EdgenetError
from ..family.variants import Variant

__all__ = ["SWEEP_BENCH", "SweepParams", "Step", "weights_for"]

#: A sweep measures many models: shorter than `edgenet bench`'s defaults, still >= 30 runs per model.
SWEEP_BENCH = BenchParams(warmup_s=0.5, min_runs=30, min_s=1.5, max_s=20.0)
WEIGHT_SUFFIXES = (".weights.h5", ".h5", ".pth", ".pt", ".bin", ".safetensors", ".npz")


@dataclass(frozen=True)
class SweepParams:
    """Everything that defines a sweep but its targets (frozen: derive variations with ``dataclasses.replace``)."""

    budget_ms: float
    variants: tuple[Variant, ...]
    quant: str = "int8"  # one form, or several ("int8,fp16,fp32"): each measured, the pick made across them
    stat: str = "p50"
    threads: int = 1  # this machine's thread count when no device is given (a device's own: its largest)
    calib: str = "default"
    # Latency does not depend on calibration, and the embedded set has 8 real photos (more samples are
    # augmentations of them), so the sweep calibrates on 32; re-convert the pick on your own images.
    samples: int = 32
    seed: int = 0
    weights_dir: Path | None = None
    weights: str | None = None  # "imagenet": each variant's published weights (custom specs stay random)
    min_top1: float | None = None
    far_factor: float = 1.5  # skip a conversion predicted above far_factor * budget
    refine: bool = False  # try a custom phi between the pick and the next variant
    objective: str | None = None  # "largest" | "accuracy"; None: accuracy when measured for every contender
    remeasure_rounds: int = 2  # A-B rounds for a candidate too close to call; 0 turns the rule off
    data: Path | None = None  # labelled images: measure each converted model's top-1
    labels: Path | None = None  # class-name -> index file for a class-folder data set
    agreement_images: Path | None = None  # unlabelled images: top-1 agreement with the float model
    bench: BenchParams = field(default_factory=lambda: SWEEP_BENCH)
    #: Every limit the pick is held to (decide/constraints.py); None: the budget and min_top1 alone. A device in
    #: devices.toml may carry its own (its ``constraints`` table), which take precedence for that device.
    constraints: Constraints | None = None
    alternatives: bool = True  # when nothing fits: measure what would (decide/alternatives.py)

    @property
    def forms(self) -> tuple[str, ...]:
        """The quantization forms measured, in the order given."""
        return tuple(q.strip() for q in self.quant.split(",") if q.strip())

    def __post_init__(self):
        if self.constraints is None:
            object.__setattr__(self, "constraints", Constraints(budget_ms=self.budget_ms, min_top1=self.min_top1))
        elif (self.constraints.budget_ms, self.constraints.min_top1) != (self.budget_ms, self.min_top1):
            raise EdgenetError("the sweep's constraints must carry its budget_ms and min_top1")
        if not (self.budget_ms > 0 and math.isfinite(self.budget_ms)):
            raise EdgenetError(f"--budget-ms must be a positive number, got {self.budget_ms:g}")
        if not self.variants:
            raise EdgenetError("no variants to sweep")
        if self.far_factor < 1:
            raise EdgenetError(f"far_factor must be >= 1, got {self.far_factor:g}")
        if self.bench.threads != self.threads:  # one thread count: the sweep's
            object.__setattr__(self, "bench", replace(self.bench, threads=self.threads))
        if self.objective not in (None, "largest", "accuracy"):
            raise EdgenetError(f"unknown objective {self.objective!r}; choose from largest, accuracy")
        if self.objective == "accuracy" and self.data is None:
            raise EdgenetError("--objective accuracy needs --data DIR|FILE (labelled images) to measure top-1")
        if self.remeasure_rounds < 0:
            raise EdgenetError(f"remeasure_rounds must be >= 0, got {self.remeasure_rounds}")
        if self.weights not in (None, "imagenet"):
            raise EdgenetError(f"weights must be None or 'imagenet', got {self.weights!r}")
        if self.weights is not None and self.weights_dir is not None:
            raise EdgenetError("--weights imagenet and --weights-dir exclude each other")
        from ..convert.modes import QUANT_MODES

        unknown = [q for q in self.forms if q not in QUANT_MODES]
        if not self.forms or unknown:
            raise EdgenetError(f"--quant: unknown form {(unknown or [self.quant])[0]!r}; choose from "
                               f"{', '.join(QUANT_MODES)} (several as int8,fp16,fp32)")
        if len(set(self.forms)) != len(self.forms):
            raise EdgenetError(f"--quant: a form is repeated in {self.quant!r}")
        if self.bench.delegate == "edgetpu" and any(q != "int8" for q in self.forms):
            raise EdgenetError("--quant: an Edge TPU runs full-integer models only; use --quant int8")

    def to_dict(self) -> dict:
        """The parameters as sweep.json records them (paths as text, variants as their specs)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "variants":
                value = [v.spec or v.name for v in value]
            elif f.name in ("bench", "constraints"):
                value = value.to_dict()
            elif isinstance(value, Path):
                value = str(value)
            out[f.name] = value
        return out


@dataclass(frozen=True)
class Step:
    """What the sweep did with one variant on one device."""

    variant: str
    macs: int
    action: str  # "measured" | "reused" | "skipped" | "failed" | "remeasured"
    latency_ms: float | None = None
    predicted_ms: float | None = None
    model: str | None = None
    reason: str = ""
    quant: str = ""  # the quantization form measured


def weights_for(variant: Variant, weights_dir: Path | None, weights: str | None = None) -> Path | None:
    """The weights a variant is converted with: its published file for ``weights="imagenet"`` (None for a
    custom spec, which has none), else ``DIR/<variant>.weights.h5`` (or .pth, .safetensors, ...) when present."""
    if weights == "imagenet":
        from ..weights.fetch import resolve_path
        from ..weights.registry import REGISTRY

        return resolve_path(variant) if variant.name in REGISTRY else None
    if weights_dir is None:
        return None
    for suffix in WEIGHT_SUFFIXES:
        candidate = Path(weights_dir) / f"{variant.name}{suffix}"
        if candidate.is_file():
            return candidate
    return None
