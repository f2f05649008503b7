"""One conversion request and its typed result: what crosses the process boundary to the worker.

:class:`ConvertRequest` is everything but the variants that determines a conversion. It is frozen
and validates itself when made: it is the one home of every option rule (the ``--io`` of a mode, the
repairs that need calibration, the budget's rungs, the Edge TPU's refusals...), so the CLI, the
Python API, the sweep and a Ray node all get the same one-line error naming the option. It
round-trips through JSON (:meth:`ConvertRequest.to_json` / :meth:`ConvertRequest.from_json`,
strict: an unknown key or a value of the wrong type is one line naming it).

What is derived from it, never copied by hand:

* the inputs fingerprint (:func:`fingerprint_inputs`): every field that shapes the model's bytes
  (:data:`RUN_FIELDS` do not; files enter by their content), plus what the request points at
  (variant spec, weights sha256, calibration and held-out images) and the versions;
* the worker's input (:class:`WorkerJob`: the request, the variant and the prepared arrays);
* the manifest's ``request`` block (:meth:`ConvertRequest.to_dict`).

The worker answers with a :class:`WorkerResult` (typed tensors, :class:`~edgenet.convert.fidelity.Fidelity`,
:class:`QualityReport`), also through JSON.
"""

from __future__ import annotations

import json
import math
import types
import typing
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from .._version import __version__
from ..errors import EdgenetError, InputFileError
from .calibration import DEFAULT_SAMPLES, DEFAULT_SOURCE
from .calibrator import CALIBRATORS
from .fidelity import Fidelity
from .modes import CALIBRATED_MODES, IO_TYPES, MODES, QUANT_MODES, default_io
from .quality import DEFAULT_MAX_LATENCY_COST_PCT
from .ranges import RANGE_METHODS
from .rounding import DEFAULT_METHOD as DEFAULT_ROUNDING_METHOD
from .rounding import METHODS as ROUNDING_METHODS

__all__ = [
    "CONVERTER_REVISION",
    "DEFAULT_EDGETPU_IO",
    "DEFAULT_ROUNDING_METHOD",
    "EDGETPU_IO",
    "ROUNDING_METHODS",
    "RUN_FIELDS",
    "TARGETS",
    "ConvertRequest",
    "QualityReport",
    "TensorInfo",
    "WorkerJob",
    "WorkerResult",
    "fingerprint_inputs",
]

#: Bumped when the conversion recipe changes, so older outputs are rebuilt.
CONVERTER_REVISION = 3
#: Where the model will run: ``edgetpu`` restricts the request to what the Edge TPU compiler takes.
TARGETS = ("cpu", "edgetpu")
#: The Edge TPU runs 8-bit full-integer models; classic Coral examples feed uint8 (the default), int8 works too.
EDGETPU_IO = ("uint8", "int8")
DEFAULT_EDGETPU_IO = "uint8"
#: Fields that say where and how to run, not what the model is: outside the fingerprint.
RUN_FIELDS = ("out_dir", "force", "progress", "target")
#: Fields that name files: the fingerprint takes their content instead (weights sha256, held-out pixels).
FILE_FIELDS = ("weights", "holdout")
#: Fields that only matter when a calibration pass runs (int8, int16x8).
CALIBRATION_FIELDS = ("calib", "samples", "calibrator", "ranges", "bias_correction", "weight_rounding",
                      "rounding_method", "min_agreement", "allow_float", "allow_int16", "max_latency_cost")


def _option(name: str) -> str:
    return {"out_dir": "--output"}.get(name, "--" + name.replace("_", "-"))


@dataclass(frozen=True)
class ConvertRequest:
    """Everything but the variants that determines a conversion; validated when made (see the module)."""

    quant: str = "int8"
    io: str | None = None  # None: default_io(quant) (uint8 for --target edgetpu); resolved when made
    weights: Path | None = None  # None: random initialisation (meaningless accuracy)
    calib: str = DEFAULT_SOURCE
    samples: int = DEFAULT_SAMPLES
    seed: int = 0
    batch_size: int | None = 1  # static batch 1 suits edge runtimes and the Edge TPU
    holdout: Path | None = None
    calibrator: str = CALIBRATORS[0]  # edgenet's streamed calibrator (see edgenet.convert.calibrator)
    ranges: str = "minmax"  # edgenet.convert.ranges.RANGE_METHODS
    bias_correction: bool = False  # edgenet.convert.bias
    weight_rounding: bool = False  # edgenet.convert.rounding (int8 weights re-rounded)
    rounding_method: str = DEFAULT_ROUNDING_METHOD  # how they are re-rounded: edgenet.convert.rounding.METHODS
    min_agreement: float | None = None  # accuracy budget, percent (edgenet.convert.quality)
    allow_float: bool = False  # budget may keep the worst ops in float (CPU only; edgenet.convert.quality)
    allow_int16: bool = False  # budget may give the worst tensors int16 activations (CPU only; convert.mixed)
    max_latency_cost: float = DEFAULT_MAX_LATENCY_COST_PCT  # percent over plain int8 a precision rung may cost
    target: str = "cpu"  # TARGETS
    out_dir: Path = Path(".")
    force: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, _typed(f.name, _TYPES[f.name], getattr(self, f.name)))
        if self.target == "edgetpu" and self.io is None and self.quant == "int8":
            object.__setattr__(self, "io", DEFAULT_EDGETPU_IO)
        if self.quant in QUANT_MODES and self.io is None:
            object.__setattr__(self, "io", default_io(self.quant))
        for rule in _RULES:
            problem = rule(self)
            if problem:
                raise EdgenetError(problem)

    # ---- what the request implies
    @property
    def calibrated(self) -> bool:
        return self.quant in CALIBRATED_MODES

    @property
    def repairs(self) -> bool:
        """Any quantization repair or the accuracy budget asked (they need edgenet's calibrator)."""
        return (self.ranges != "minmax" or self.bias_correction or self.weight_rounding
                or self.min_agreement is not None)

    def check_inputs(self) -> None:
        """What the options point at exists: the weights file, the held-out folder, the extra a rung needs."""
        import importlib.util

        if self.weights is not None and not self.weights.is_file():
            raise InputFileError(self.weights, "weights file does not exist")
        if self.holdout is not None and not self.holdout.is_dir():
            raise InputFileError(self.holdout, "holdout folder does not exist or is not a folder")
        if self.allow_int16 and importlib.util.find_spec("ai_edge_quantizer") is None:
            raise EdgenetError("--allow-int16 needs ai-edge-quantizer (pip install 'edgenet[mixed]')")

    # ---- JSON
    def to_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> ConvertRequest:
        if not isinstance(data, dict):
            raise EdgenetError(f"conversion request: expected a JSON object, got {type(data).__name__}")
        unknown = sorted(set(data) - set(_TYPES))
        if unknown:
            raise EdgenetError(f"conversion request: unknown option {unknown[0]!r}; known: {', '.join(_TYPES)}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> ConvertRequest:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise EdgenetError(f"conversion request: not JSON ({exc})") from None
        return cls.from_dict(data)

    def fingerprinted(self) -> dict:
        """The fields that shape the model's bytes, as in the fingerprint (a field that does not apply: None)."""
        out = {}
        for name, value in self.to_dict().items():
            if name in RUN_FIELDS or name in FILE_FIELDS:
                continue
            if name in CALIBRATION_FIELDS and not self.calibrated:
                value = None
            if name == "seed" and not self.calibrated and self.weights is not None:
                value = None  # the seed draws calibration samples and, without weights, the initial weights
            out[name] = value
        return out


_TYPES: dict[str, Any] = typing.get_type_hints(ConvertRequest)


def _typed(name: str, hint: Any, value: Any) -> Any:
    """``value`` as the field's type, or one line naming the option (JSON gives str for Path, int for float)."""
    option = _option(name)
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None:
        if type(None) in allowed:
            return None
        raise EdgenetError(f"{option} must not be empty")
    kind = next(t for t in allowed if t is not type(None))
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise EdgenetError(f"{option} must be true or false, got {value!r}")
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise EdgenetError(f"{option} must be a whole number, got {value!r}")
    if kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        raise EdgenetError(f"{option} must be a finite number, got {value!r}")
    if kind is Path:
        if isinstance(value, (str, Path)) and str(value):
            return Path(value)
        raise EdgenetError(f"{option} must be a path, got {value!r}")
    if isinstance(value, (str, Path)):  # --calib: a folder or 'default'
        return str(value)
    raise EdgenetError(f"{option} must be text, got {value!r}")


def _choice(name: str, choices: tuple[str, ...]):
    def rule(r: ConvertRequest) -> str | None:
        value = getattr(r, name)
        if value not in choices:
            return f"unknown {_option(name)} {value!r}; choose from {', '.join(choices)}"
        return None

    return rule


_REPAIR_FLAGS = "--ranges, --bias-correction, --weight-rounding and --min-agreement"

#: Every option rule, in the order they are checked: ``request -> problem line or None``.
_RULES = (
    _choice("quant", QUANT_MODES),
    _choice("io", IO_TYPES),
    _choice("calibrator", CALIBRATORS),
    _choice("ranges", RANGE_METHODS),
    _choice("target", TARGETS),
    _choice("rounding_method", ROUNDING_METHODS),
    lambda r: (f"--io {r.io} needs --quant int8 (a {r.quant} model has float input and output)"
               if r.io != "float" and not MODES[r.quant].integer_io else None),
    lambda r: f"--samples must be at least 1, got {r.samples}" if r.samples < 1 else None,
    lambda r: f"--batch-size must be 1 or none, got {r.batch_size}" if r.batch_size not in (1, None) else None,
    lambda r: (f"--max-latency-cost must be a percentage >= 0, got {r.max_latency_cost:g}"
               if r.max_latency_cost < 0 else None),
    lambda r: (f"--min-agreement must be a percentage in (0, 100], got {r.min_agreement:g}"
               if r.min_agreement is not None and not 0 < r.min_agreement <= 100 else None),
    lambda r: f"{_REPAIR_FLAGS} need --quant int8 or int16x8" if r.repairs and not r.calibrated else None,
    lambda r: f"{_REPAIR_FLAGS} need --calibrator edgenet" if r.repairs and r.calibrator != "edgenet" else None,
    lambda r: "--weight-rounding applies to --quant int8" if r.weight_rounding and r.quant != "int8" else None,
    lambda r: (f"--rounding-method {r.rounding_method} chooses how int8 weights are re-rounded: it needs "
               "--weight-rounding or --min-agreement with --quant int8"
               if r.rounding_method != DEFAULT_ROUNDING_METHOD
               and (r.quant != "int8" or not (r.weight_rounding or r.min_agreement is not None)) else None),
    lambda r: ("--allow-float lets the accuracy budget keep ops in float: it needs --min-agreement"
               if r.allow_float and r.min_agreement is None else None),
    lambda r: "--allow-float applies to --quant int8" if r.allow_float and r.quant != "int8" else None,
    lambda r: ("--allow-int16 is a rung of the accuracy budget of an int8 model: it needs --quant int8 and "
               "--min-agreement" if r.allow_int16 and (r.min_agreement is None or r.quant != "int8") else None),
    # The Edge TPU runs 8-bit full-integer models with static shapes, nothing else.
    lambda r: (f"{'--allow-float' if r.allow_float else '--allow-int16'} cannot be used with --target edgetpu "
               "(the Edge TPU runs 8-bit full-integer only)"
               if r.target == "edgetpu" and (r.allow_float or r.allow_int16) else None),
    lambda r: ("--target edgetpu needs full-integer --quant int8 (the Edge TPU runs 8-bit only)"
               if r.target == "edgetpu" and r.quant != "int8" else None),
    lambda r: ("--target edgetpu needs --batch-size 1 (the Edge TPU needs static shapes)"
               if r.target == "edgetpu" and r.batch_size != 1 else None),
    lambda r: (f"--target edgetpu needs --io uint8 or int8, not {r.io}"
               if r.target == "edgetpu" and r.io not in EDGETPU_IO else None),
)


def _tensorflow_version() -> str | None:
    from importlib import metadata

    for dist in ("tensorflow-cpu", "tensorflow"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def fingerprint_inputs(request: ConvertRequest, variant_spec: str, *, weights_sha256: str | None,
                       calibration: dict | None, holdout_sha256: str | None) -> dict:
    """Everything that determines one conversion's output: the request's own fields (derived, see
    :meth:`ConvertRequest.fingerprinted`), what its files hold, the variant and the versions."""
    return {
        "variant_spec": variant_spec,
        **request.fingerprinted(),
        "weights_sha256": weights_sha256,
        "calibration": calibration,
        # The fidelity in the manifest depends on the held-out images: their pixels are an input too.
        "holdout_sha256": holdout_sha256,
        "edgenet": __version__,
        "tensorflow": _tensorflow_version(),
        "converter_revision": CONVERTER_REVISION,
    }


# ---- the worker's input and output ----------------------------------------------------------------------------


def _from(cls, data: dict, what: str):
    """Strict construction of a result dataclass from JSON (unknown keys: one line)."""
    if not isinstance(data, dict):
        raise EdgenetError(f"{what}: expected a JSON object")
    unknown = sorted(set(data) - {f.name for f in fields(cls)})
    if unknown:
        raise EdgenetError(f"{what}: unknown field {unknown[0]!r}")
    try:
        return cls(**data)
    except TypeError as exc:
        raise EdgenetError(f"{what}: {exc}") from None


@dataclass(frozen=True)
class WorkerJob:
    """One variant's conversion as the worker child gets it (``python -m edgenet.convert.worker JOB.json``)."""

    request: ConvertRequest
    variant_spec: str
    model_out: str  # staging file the worker writes (and fsyncs); the parent renames it
    model_path: str  # the user's output, named in errors
    result_out: str
    log_path: str | None = None
    calib_npy: str | None = None
    holdout_npy: str | None = None
    holdout_images: int = 0
    holdout_source: str = ""
    holdout_groups: tuple[int, ...] | None = None  # image id per held-out row: the views of one photo share one

    def to_json(self) -> str:
        data = asdict(self)
        data["request"] = self.request.to_dict()
        data["holdout_groups"] = None if self.holdout_groups is None else list(self.holdout_groups)
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> WorkerJob:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise EdgenetError(f"conversion job: not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise EdgenetError("conversion job: expected a JSON object")
        data = dict(data, request=ConvertRequest.from_dict(data.get("request")))
        if data.get("holdout_groups") is not None:
            data["holdout_groups"] = tuple(int(g) for g in data["holdout_groups"])
        return _from(cls, data, "conversion job")


@dataclass(frozen=True)
class TensorInfo:
    """A model input or output as the runtime reads it back."""

    name: str | None
    dtype: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...]  # -1 marks a dynamic dimension (--batch-size none)
    scale: float | None  # None: not quantized
    zero_point: int | None

    def to_dict(self) -> dict:
        return {**asdict(self), "shape": list(self.shape), "shape_signature": list(self.shape_signature)}

    @classmethod
    def from_dict(cls, data: dict) -> TensorInfo:
        return _from(cls, dict(data, shape=tuple(data["shape"]), shape_signature=tuple(data["shape_signature"])),
                     "tensor info")


@dataclass(frozen=True)
class QualityReport:
    """What the range/bias/rounding repairs and the accuracy budget did (:func:`edgenet.convert.quality.repair`).

    The summaries of each repair keep the to_dict() of their own module's type; ``budget`` is the
    ladder's record (steps, verdict, latency) as :mod:`edgenet.convert.quality` writes it.
    """

    ranges: str
    bias_correction: dict | None = None  # edgenet.convert.bias.BiasCorrection.to_dict()
    weight_rounding: dict | None = None  # edgenet.convert.rounding.WeightRounding.to_dict()
    range_methods: dict[str, int] | None = None  # method -> tensors it was chosen for (--ranges auto)
    precision: dict | None = None  # {"kind": "float"|"int16", "ops": [...], "asked": [...]}
    budget: dict | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None or k in ("ranges", "bias_correction")}

    @classmethod
    def from_dict(cls, data: dict) -> QualityReport:
        return _from(cls, data, "quality report")


def _fidelity(data: dict) -> Fidelity:
    """A :class:`~edgenet.convert.fidelity.Fidelity` back from its ``to_dict()`` (JSON has no tuples)."""
    return _from(Fidelity, dict(data, top1_agreement_ci95=tuple(data["top1_agreement_ci95"]),
                                flipped_samples=tuple(data.get("flipped_samples", ())),
                                flipped_images=None if data.get("flipped_images") is None
                                else tuple(data["flipped_images"]),
                                close_margin_sq_error=tuple(data.get("close_margin_sq_error", ()))), "fidelity")


@dataclass(frozen=True)
class WorkerResult:
    """What the worker hands back for a finished conversion."""

    params: int
    macs: int | None
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    fidelity: Fidelity | None
    quality: QualityReport | None
    weights_format: str | None
    conversion_time_s: float
    worker_time_s: float
    peak_memory_mb: float
    peak_memory_after_convert_mb: float
    versions: dict[str, Any]
    converter_path: str

    @property
    def input(self) -> TensorInfo:
        return self.inputs[0]

    @property
    def output(self) -> TensorInfo:
        return self.outputs[0]

    def to_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["inputs"] = [t.to_dict() for t in self.inputs]
        data["outputs"] = [t.to_dict() for t in self.outputs]
        data["fidelity"] = None if self.fidelity is None else self.fidelity.to_dict()
        data["quality"] = None if self.quality is None else self.quality.to_dict()
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict) -> WorkerResult:
        data = dict(data)
        data["inputs"] = tuple(TensorInfo.from_dict(t) for t in data.get("inputs") or ())
        data["outputs"] = tuple(TensorInfo.from_dict(t) for t in data.get("outputs") or ())
        data["fidelity"] = None if data.get("fidelity") is None else _fidelity(data["fidelity"])
        data["quality"] = None if data.get("quality") is None else QualityReport.from_dict(data["quality"])
        return _from(cls, data, "conversion result")

