"""Convert variants to (quantized) TFLite models, each with a manifest, resumably.

:func:`convert_variants` is the API behind ``edgenet convert``. For every variant it

1. loads the calibration set (int8/int16x8) through :func:`edgenet.convert.calibration.load_calibration`
   at the variant's resolution and checks every tensor is finite and in range: the TF 2.21
   converter segfaults on NaN/Inf instead of raising, so this must happen *before*;
2. computes an inputs fingerprint (variant spec, quantization, io, batch, weights sha256,
   calibration fingerprint with samples and seed, edgenet and TensorFlow versions) and skips
   the variant when the model beside its manifest was built from exactly these inputs;
3. runs the conversion in a child process (:mod:`edgenet.convert.worker`, which documents the
   pinned Keras 3 -> TFLite path): a crash or an out-of-memory kill becomes one error line for
   that variant and the run continues. The child reads the model back with the runtime and
   fails the variant if the input/output dtypes are not what ``--io`` asked, or if an int8 /
   int16x8 graph still computes anything in float (TF 2.21 silently keeps such ops float even
   with only the int8 op set allowed); int8/int16x8 then get the fidelity check
   (:mod:`edgenet.convert.fidelity`) on held-out images;
4. moves the finished model into place (``os.replace`` of a fully written, fsynced file) and
   writes the manifest last (:mod:`edgenet.convert.manifest`), atomically: the manifest marks
   completion, and an interrupted run leaves earlier outputs intact and nothing partial.

Preprocessing stays honest: edgenet models normalise inside the graph, so calibration and
fidelity tensors are :func:`edgenet.pixels.preprocess.preprocess` output (RGB pixels 0..255) and
are never normalised again. For a full-integer model this makes the int8 input quantize raw
pixels (scale ~1.0, zero point -128; uint8: 0), so a device feeds decoded bytes unchanged.

This module does not import TensorFlow (the child does), so the CLI stays light.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from .. import process
from .._version import __version__
from ..errors import EdgenetError, InputFileError, MissingDependencyError, signal_name
from ..family.variants import Variant
from ..fsutil import sha256_bytes, sha256_file, tmp_path, write_error
from ..pixels.contract import PreprocessContract
from .calibration import DEFAULT_SAMPLES, DEFAULT_SOURCE, CalibrationData, check_calibration_array, load_calibration
from .calibrator import CALIBRATORS
from .fidelity import HoldoutSet, agreement_line, holdout_set
from .manifest import SCHEMA, inputs_fingerprint, is_up_to_date, manifest_path_for, utc_now, write_manifest
from .modes import CALIBRATED_MODES, IO_TYPES, QUANT_MODES, default_io, resolve_io

__all__ = [
    "QUANT_MODES",
    "IO_TYPES",
    "CALIBRATED_MODES",
    "ConvertOptions",
    "ConvertResult",
    "convert_variants",
    "default_io",
    "output_stem",
    "summary_rows",
]

#: Bumped when the conversion recipe changes, so older outputs are rebuilt.
CONVERTER_REVISION = 2
WORKER_MODULE = "edgenet.convert.worker"


def output_stem(variant: Variant, quant: str, io: str) -> str:
    """``b0-int8``, ``b0-int8-float``, ``lite0-fp16``: the io suffix only when it is not the default."""
    stem = f"{variant.name}-{quant}"
    return stem if io == default_io(quant) else f"{stem}-{io}"


@dataclass(frozen=True)
class ConvertOptions:
    """Everything but the variants that determines a conversion."""

    quant: str = "int8"
    io: str | None = None  # None: default_io(quant)
    weights: Path | None = None  # None: random initialisation (meaningless accuracy)
    calib: str = DEFAULT_SOURCE
    samples: int = DEFAULT_SAMPLES
    seed: int = 0
    batch_size: int | None = 1  # static batch 1 suits edge runtimes and the Edge TPU
    holdout: Path | None = None
    calibrator: str = CALIBRATORS[0]  # "tflite": TF's own, single-threaded calibrator (see edgenet.convert.calibrator)
    out_dir: Path = Path(".")
    force: bool = False
    progress: bool = True
    ranges: str = "minmax"  # edgenet.convert.ranges.RANGE_METHODS
    bias_correction: bool = False  # edgenet.convert.bias
    weight_rounding: bool = False  # edgenet.convert.rounding (int8 weights re-rounded, GPTQ)
    min_agreement: float | None = None  # accuracy budget, percent (edgenet.convert.quality)
    allow_float: bool = False  # budget may keep the worst ops in float (CPU only; edgenet.convert.quality)
    allow_int16: bool = False  # budget may give the worst tensors int16 activations (CPU only; convert.mixed)
    max_latency_cost: float = 10.0  # percent over plain int8 a precision rung may cost


@dataclass(frozen=True)
class ConvertResult:
    """The outcome of one variant's conversion (``status``: converted, up to date, failed)."""

    variant: str
    spec: str
    quant: str
    io: str
    status: str
    model_path: str
    manifest_path: str
    size_bytes: int | None = None
    conversion_time_s: float | None = None
    worker_time_s: float | None = None
    peak_memory_mb: float | None = None
    fidelity: dict | None = None
    weights: str | None = None
    error: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def to_dict(self) -> dict:
        data = asdict(self)
        data["notes"] = list(self.notes)
        return data


def _tensorflow_version() -> str | None:
    from importlib import metadata

    for dist in ("tensorflow-cpu", "tensorflow"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def _remove_stale(out_dir: Path, name: str) -> None:
    """Remove staging files of ``name`` left by a run that was killed (its pid no longer exists)."""
    for path in out_dir.glob(f".{name}.tmp-*"):
        try:
            pid = int(path.name.rsplit("-", 1)[1])
            os.kill(pid, 0)
        except ValueError:
            continue
        except ProcessLookupError:
            path.unlink(missing_ok=True)
        except PermissionError:
            continue


WORKDIR_PREFIX = "edgenet-convert-"


def _remove_stale_workdirs() -> None:
    """Remove the temporary folders of conversions whose parent was killed (SIGKILL skips ``finally``)."""
    root = Path(tempfile.gettempdir())
    for path in root.glob(f"{WORKDIR_PREFIX}*"):
        try:
            pid = int(path.name[len(WORKDIR_PREFIX):].split("-", 1)[0])
            os.kill(pid, 0)
        except ValueError:
            continue  # not one of ours
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:
            continue


class _Context:
    """Per-run caches: calibration and held-out tensors per preprocessing contract."""

    def __init__(self, options: ConvertOptions, io: str):
        self.options = options
        self.io = io
        self.calibrated = options.quant in CALIBRATED_MODES
        self.weights_sha256 = sha256_file(options.weights) if options.weights else None
        self._calib: dict[PreprocessContract, CalibrationData] = {}
        self.log: Callable[[str], None] | None = None  # warnings for the terminal (skipped images, ranges)
        self._holdout: dict[PreprocessContract, HoldoutSet | None] = {}

    def calibration(self, contract: PreprocessContract) -> CalibrationData:
        if contract not in self._calib:
            self._calib.clear()  # one resolution at a time: B7's 100 samples are 430 MB
            o = self.options
            self._calib[contract] = load_calibration(o.calib, contract, o.samples, o.seed, progress=o.progress,
                                                     log=self.log)
        return self._calib[contract]

    def holdout(self, contract: PreprocessContract, calib: CalibrationData) -> HoldoutSet | None:
        if contract not in self._holdout:
            self._holdout.clear()
            self._holdout[contract] = holdout_set(self.options.calib, contract, calib.files, self.options.holdout)
        return self._holdout[contract]


def _inputs(variant: Variant, ctx: _Context, calib: CalibrationData | None) -> dict:
    o = ctx.options
    return {
        "variant_spec": variant.spec or variant.name,
        "quant": o.quant,
        "io": ctx.io,
        "batch_size": o.batch_size,
        "weights_sha256": ctx.weights_sha256,
        "calibration": dict(calib.fingerprint) if calib is not None else None,
        "samples": o.samples if calib is not None else None,
        # The seed draws the calibration samples and, without --weights, the random initial weights.
        "seed": o.seed if calib is not None or o.weights is None else None,
        "edgenet": __version__,
        "tensorflow": _tensorflow_version(),
        "converter_revision": CONVERTER_REVISION,
        "calibrator": o.calibrator if calib is not None else None,
        # Only when asked, so that plain conversions keep their fingerprints.
        **({"ranges": o.ranges} if calib is not None and o.ranges != "minmax" else {}),
        **({"bias_correction": True} if calib is not None and o.bias_correction else {}),
        # The budget's ladder of an int8 model may re-round weights too: its outputs differ from before.
        **({"weight_rounding": True} if calib is not None and (o.weight_rounding or (
            o.min_agreement is not None and o.quant == "int8")) else {}),
        **({"min_agreement": o.min_agreement} if calib is not None and o.min_agreement is not None else {}),
        **({"allow_float": True, "max_latency_cost": o.max_latency_cost}
           if calib is not None and o.allow_float else {}),
        **({"allow_int16": True, "max_latency_cost": o.max_latency_cost}
           if calib is not None and o.allow_int16 else {}),
    }


def _variant_block(variant: Variant) -> dict:
    return {
        "name": variant.name,
        "spec": variant.spec or variant.name,
        "family": variant.family,
        "activation": variant.activation,
        "se": variant.se,
        "fixed_stem_head": variant.fixed_stem_head,
    }


def _input_note(quant: str, io: str, tensor: dict, contract: PreprocessContract) -> str | None:
    """For integer input, check that it quantizes raw pixels (scale ~1), as in-graph normalisation implies."""
    if quant != "int8" or io == "float" or contract.normalization != "in_graph":
        return None
    expected_zp = -128 if io == "int8" else 0
    scale, zp = tensor.get("scale"), tensor.get("zero_point")
    if scale is not None and abs(scale - 1.0) < 0.01 and zp == expected_zp:
        return f"input quantization scale {scale:.6g}, zero point {zp}: the model takes raw pixels 0..255"
    return (f"input quantization scale {scale}, zero point {zp} differ from raw pixels (1.0, {expected_zp}); "
            f"feed {io} through the model's own scale and zero point")


def _quality_note(quality: dict | None) -> str | None:
    """One line on what the range/bias repairs and the accuracy budget did (None for plain min/max int8)."""
    if not quality:
        return None
    parts = []
    if quality.get("ranges") and quality["ranges"] != "minmax":
        methods = quality.get("range_methods") or {}
        chosen = ", ".join(f"{m} {n}" for m, n in methods.items())
        parts.append(f"{quality['ranges']} ranges" + (f" ({chosen} tensors)" if chosen else ""))
    if quality.get("weight_rounding"):
        rounded = quality["weight_rounding"]
        parts.append(f"int8 weights re-rounded ({rounded['ops']} ops, {rounded['weights_changed']} weights moved)")
    if quality.get("bias_correction"):
        bias = quality["bias_correction"]
        parts.append(f"bias correction ({bias['ops']} ops, {bias['channels']} biases moved)")
    budget = quality.get("budget")
    if budget:
        done = " + ".join(parts) or "plain int8 (min/max ranges)"
        verdict = "met" if budget["met"] else "NOT met"
        ci = budget.get("reached_ci95_pct")
        reached = f"{budget['reached_pct']:.1f} %"
        if budget.get("expected_pct") is not None:
            reached += f", expected {budget['expected_pct']:.1f} %"
        if ci:  # the interval over the choice photos: the budget is met only by its lower bound
            reached += f", 95 % CI {ci[0]:.1f}-{ci[1]:.1f} %"
            if budget.get("choice_images"):
                reached += f" on {budget['choice_images']} choice image(s)"
        shown = budget.get("report")
        if shown:  # the kept model on the held-out photos no choice saw
            reached += (f"; {shown['top1_agreement_pct']:.1f} % (95 % CI {shown['ci95_pct'][0]:.1f}-"
                        f"{shown['ci95_pct'][1]:.1f} %) on {shown['images']} report image(s)")
        head = f"accuracy budget {budget['min_agreement_pct']:g} % top-1 agreement: {verdict} ({reached}) with {done}"
        why = "" if budget["met"] else f"; ladder stopped: {budget.get('stopped', 'every rung tried')}"
        precision = quality.get("precision")
        if not precision:
            return head + "; still full-integer, same operators as plain int8" + why
        named = list(dict.fromkeys(_layer(name) for name in precision["ops"]))  # an op pair per layer: once
        layers = ", ".join(named[:8]) + (f", ... ({len(named)} layers)" if len(named) > 8 else "")
        lat = budget.get("latency_vs_plain_int8") or {}
        return (f"{head} + {precision['kind']} for {len(precision['ops'])} op(s) ({layers}); latency "
                f"{lat.get('ratio_of_minima', float('nan')):.2f}x plain int8 (ratio of minima, median pair "
                f"{lat.get('median_pair_ratio', float('nan')):.2f}x){why}")
    return ("quantization repairs: " + " + ".join(parts)) if parts else None


def _layer(tensor_name: str) -> str:
    from .tensor_errors import layer_of

    return layer_of(tensor_name)


def _build_manifest(variant: Variant, ctx: _Context, calib: CalibrationData | None, hold: HoldoutSet | None,
                    result: dict, model_path: Path, sha256: str, size_bytes: int, fingerprint: str,
                    inputs: dict) -> dict:
    o = ctx.options
    contract = variant.contract
    notes = []
    input_note = _input_note(o.quant, ctx.io, result["input"], contract)
    if input_note:
        notes.append(input_note)
    if o.weights is None:
        notes.append("random initial weights: accuracy and fidelity numbers are meaningless (pass --weights)")
    if calib is not None and calib.augmented_count:
        notes.append(calib.note)
    quality_note = _quality_note(result.get("quality"))
    if quality_note:
        notes.append(quality_note)
    fidelity_note = None
    if o.quant in CALIBRATED_MODES:
        fidelity_note = hold.note if hold is not None else (
            "not measured: every image of the calibration folder was used for calibration (pass --holdout DIR)")
    return {
        "schema": SCHEMA,
        "created_utc": utc_now(),
        "variant": _variant_block(variant),
        "coefficients": {"width": variant.width, "depth": variant.depth, "resolution": variant.resolution,
                         "dropout": variant.dropout, "phi": variant.phi},
        "resolution": variant.resolution,
        "params": result.get("params"),
        "macs": result.get("macs"),
        "quant": o.quant,
        "io": ctx.io,
        "batch_size": o.batch_size,
        "input": result["input"],
        "output": result["output"],
        "normalization": contract.normalization,
        "preprocessing": contract.to_dict(),
        "calibration": None if calib is None else {
            **calib.fingerprint,
            "skipped": len(calib.skipped),
            "note": calib.note,
        },
        "weights": None if o.weights is None else {
            "file": str(o.weights),
            "sha256": ctx.weights_sha256,
            "format": (result.get("weights_info") or {}).get("format"),
        },
        "random_weights": o.weights is None,
        "init_seed": o.seed if o.weights is None else None,
        "model": {"file": model_path.name, "sha256": sha256, "size_bytes": size_bytes},
        "sha256": sha256,
        "size_bytes": size_bytes,
        "versions": result.get("versions"),
        "converter": {"path": result.get("converter_path"), "revision": CONVERTER_REVISION,
                      "calibrator": o.calibrator if calib is not None else None},
        "conversion_time_s": result.get("conversion_time_s"),
        "worker_time_s": result.get("worker_time_s"),
        "peak_memory_mb": result.get("peak_memory_mb"),
        "peak_memory_after_convert_mb": result.get("peak_memory_after_convert_mb"),
        "fidelity": result.get("fidelity"),
        "fidelity_note": fidelity_note,
        "fidelity_summary": agreement_line(result["fidelity"]) if result.get("fidelity") else None,
        "quality": result.get("quality"),
        "notes": notes,
        "inputs": inputs,
        "inputs_fingerprint": fingerprint,
    }


def _run_worker(request: dict, workdir: Path) -> tuple[int, dict | None]:
    req_path = workdir / "request.json"
    req_path.write_text(json.dumps(request), encoding="utf-8")
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = package_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    # Own process group (edgenet.process): on SIGINT/SIGTERM the parent stops it and removes the workdir.
    proc = process.popen([sys.executable, "-m", WORKER_MODULE, str(req_path)], env=env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        code = proc.wait()
    finally:
        process.stop(proc)
    result = None
    result_path = Path(request["result_out"])
    if result_path.exists():
        try:
            result = json.loads(result_path.read_text(encoding="utf-8"))
        except ValueError:
            result = None
    return code, result


def _convert_one(variant: Variant, ctx: _Context) -> ConvertResult:
    o = ctx.options
    stem = output_stem(variant, o.quant, ctx.io)
    model_path = o.out_dir / f"{stem}.tflite"
    manifest_path = manifest_path_for(model_path)
    base = {"variant": variant.name, "spec": variant.spec or variant.name, "quant": o.quant, "io": ctx.io,
            "model_path": str(model_path), "manifest_path": str(manifest_path),
            "weights": str(o.weights) if o.weights else None}

    calib = ctx.calibration(variant.contract) if ctx.calibrated else None
    hold = ctx.holdout(variant.contract, calib) if calib is not None else None
    inputs = _inputs(variant, ctx, calib)
    # The fidelity in the manifest depends on the held-out images: their pixels are an input too.
    inputs["holdout_sha256"] = sha256_bytes(hold.array.tobytes()) if hold is not None else None
    fingerprint = inputs_fingerprint(inputs)
    if not o.force:
        done = is_up_to_date(model_path, fingerprint)
        if done is not None:
            return ConvertResult(**base, status="up to date", size_bytes=done["model"]["size_bytes"],
                                 conversion_time_s=done.get("conversion_time_s"),
                                 worker_time_s=done.get("worker_time_s"),
                                 peak_memory_mb=done.get("peak_memory_mb"), fidelity=done.get("fidelity"),
                                 notes=tuple(done.get("notes") or ()))

    _remove_stale(o.out_dir, model_path.name)
    staging = tmp_path(model_path)  # written (and fsynced) by the worker, renamed below
    try:  # a read-only output folder fails here, in one line, before the (slow) conversion
        staging.touch()
    except OSError as exc:
        raise write_error(model_path, exc) from None
    try:
        workdir = Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-{stem}-"))
    except OSError as exc:
        staging.unlink(missing_ok=True)
        raise write_error(tempfile.gettempdir(), exc) from None
    try:
        request = {
            "variant_spec": variant.spec or variant.name,
            "quant": o.quant,
            "io": ctx.io,
            "batch_size": o.batch_size,
            "weights": str(o.weights) if o.weights else None,
            "model_out": str(staging),
            "model_path": str(model_path),
            "result_out": str(workdir / "result.json"),
            "log_path": str(workdir / "converter.log"),
            "quiet": not o.progress,
            "calibrator": o.calibrator,
            "seed": o.seed,
            "ranges": o.ranges,
            "bias_correction": o.bias_correction,
            "weight_rounding": o.weight_rounding,
            "min_agreement": o.min_agreement,
            "allow_float": o.allow_float,
            "allow_int16": o.allow_int16,
            "max_latency_cost": o.max_latency_cost,
        }
        if calib is not None:
            names = [str(p) for p in calib.files] + [f"augmented sample {i + 1}" for i in range(calib.augmented_count)]
            check_calibration_array(calib.array, names, variant.contract)
            np.save(workdir / "calibration.npy", calib.array)
            request["calib_npy"] = str(workdir / "calibration.npy")
        if hold is not None:
            np.save(workdir / "holdout.npy", hold.array)
            request.update(holdout_npy=str(workdir / "holdout.npy"), holdout_images=hold.images,
                           holdout_source=hold.source,
                           holdout_groups=None if hold.groups is None else [int(g) for g in hold.groups])

        code, result = _run_worker(request, workdir)
        if code < 0:
            return ConvertResult(**base, status="failed", error=(
                f"{variant.name}: the converter process crashed ({signal_name(code)}) during the {o.quant} "
                f"conversion; nothing was written, earlier outputs are intact"))
        if code != 0 or not result or not result.get("ok") or not staging.exists():
            error = (result or {}).get("error") or f"conversion worker exited with code {code}"
            if not error.startswith(f"{variant.name}:"):
                error = f"{variant.name}: {error}"
            return ConvertResult(**base, status="failed", error=error)

        sha256 = sha256_file(staging)
        size_bytes = staging.stat().st_size
        manifest = _build_manifest(variant, ctx, calib, hold, result, model_path, sha256, size_bytes,
                                   fingerprint, inputs)
        # Model first, manifest last: the manifest is what marks the conversion finished.
        try:
            os.replace(staging, model_path)
        except OSError as exc:
            raise write_error(model_path, exc) from None
        write_manifest(manifest_path, manifest)
        return ConvertResult(**base, status="converted", size_bytes=size_bytes,
                             conversion_time_s=result.get("conversion_time_s"),
                             worker_time_s=result.get("worker_time_s"),
                             peak_memory_mb=result.get("peak_memory_mb"), fidelity=result.get("fidelity"),
                             notes=tuple(manifest["notes"]))
    finally:
        with contextlib.suppress(OSError):
            staging.unlink(missing_ok=True)
        shutil.rmtree(workdir, ignore_errors=True)


def convert_variants(
    variants: Sequence[Variant],
    options: ConvertOptions,
    on_result: Callable[[ConvertResult], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> list[ConvertResult]:
    """Convert each variant (see the module docstring); failures are results, not exceptions.

    Raises :class:`EdgenetError` only for problems that would fail every variant, before any
    conversion starts: a bad option, a missing weights file, an unusable calibration folder.
    """
    import importlib.util

    from tqdm import tqdm

    if importlib.util.find_spec("tensorflow") is None:
        # Fail before loading calibration images: the core (device) install has no TensorFlow.
        raise MissingDependencyError("tensorflow", "tf", "converting models")
    io = resolve_io(options.quant, options.io)
    if int(options.samples) < 1:
        raise EdgenetError(f"--samples must be at least 1, got {options.samples}")
    if options.calibrator not in CALIBRATORS:
        raise EdgenetError(f"unknown calibrator {options.calibrator!r}; choose {' or '.join(CALIBRATORS)}")
    from .ranges import RANGE_METHODS

    repairs = (options.ranges != "minmax" or options.bias_correction or options.weight_rounding
               or options.min_agreement is not None)
    if options.ranges not in RANGE_METHODS:
        raise EdgenetError(f"unknown --ranges {options.ranges!r}; choose from {', '.join(RANGE_METHODS)}")
    if repairs and options.quant not in CALIBRATED_MODES:
        raise EdgenetError("--ranges, --bias-correction, --weight-rounding and --min-agreement need --quant int8 or int16x8")
    if repairs and options.calibrator != "edgenet":
        raise EdgenetError("--ranges, --bias-correction, --weight-rounding and --min-agreement need --calibrator edgenet")
    if options.weight_rounding and options.quant != "int8":
        raise EdgenetError("--weight-rounding applies to --quant int8")
    if options.allow_float and options.min_agreement is None:
        raise EdgenetError("--allow-float lets the accuracy budget keep ops in float: it needs --min-agreement")
    if options.allow_float and options.quant != "int8":
        raise EdgenetError("--allow-float applies to --quant int8")
    if options.allow_int16 and (options.min_agreement is None or options.quant != "int8"):
        raise EdgenetError("--allow-int16 is a rung of the accuracy budget of an int8 model: it needs --quant int8 "
                           "and --min-agreement")
    if options.allow_int16:
        import importlib.util

        if importlib.util.find_spec("ai_edge_quantizer") is None:
            raise EdgenetError("--allow-int16 needs ai-edge-quantizer (pip install 'edgenet[mixed]')")
    if options.max_latency_cost < 0:
        raise EdgenetError(f"--max-latency-cost must be a percentage >= 0, got {options.max_latency_cost}")
    if options.min_agreement is not None and not 0 < options.min_agreement <= 100:
        raise EdgenetError(f"--min-agreement must be a percentage in (0, 100], got {options.min_agreement}")
    if options.batch_size not in (1, None):
        raise EdgenetError(f"--batch-size must be 1 or none, got {options.batch_size}")
    if options.weights is not None and not Path(options.weights).is_file():
        raise InputFileError(options.weights, "weights file does not exist")
    if options.holdout is not None and not Path(options.holdout).is_dir():
        raise InputFileError(options.holdout, "holdout folder does not exist or is not a folder")
    out_dir = Path(options.out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(out_dir, exc) from None
    _remove_stale_workdirs()
    ctx = _Context(options, io)
    ctx.log = log
    if ctx.calibrated and variants:
        # Fail on a bad calibration folder before the first (slow) conversion starts.
        ctx.calibration(variants[0].contract)

    results = []
    bar = tqdm(variants, desc="variants", unit="model", file=sys.stderr, position=0,
               disable=not options.progress or len(variants) < 2)
    for variant in bar:
        bar.set_postfix_str(variant.name)
        started = time.perf_counter()
        result = _convert_one(variant, ctx)
        if result.worker_time_s is None and result.status == "failed":
            result = replace(result, worker_time_s=round(time.perf_counter() - started, 3))
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def _fmt(value, digits: int) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "inf" if value == math.inf else "-"
    return f"{value:.{digits}f}"


def summary_rows(results: Sequence[ConvertResult]) -> list[dict]:
    """Rows for the end-of-run table."""
    rows = []
    for r in results:
        fid = r.fidelity or {}
        rows.append({
            "variant": r.variant,
            "quant": r.quant if r.io == default_io(r.quant) else f"{r.quant} ({r.io} io)",
            "size_mb": _fmt(r.size_bytes / 1e6 if r.size_bytes else None, 2),
            "time_s": _fmt(r.conversion_time_s, 1),
            "peak_mb": _fmt(r.peak_memory_mb, 0),
            "top1_agreement": _fmt(fid["top1_agreement"] * 100, 1) + " %" if fid else "-",
            "sqnr_db": _fmt(fid.get("sqnr_db"), 1) if fid else "-",
            "status": r.status if r.ok else "FAILED",
        })
    return rows


SUMMARY_HEADERS = {
    "variant": "variant",
    "quant": "quant",
    "size_mb": "size MB",
    "time_s": "convert s",
    "peak_mb": "peak MB",
    "top1_agreement": "top-1 agree",
    "sqnr_db": "SQNR dB",
    "status": "status",
}
