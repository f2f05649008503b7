"""Convert variants to (quantized) TFLite models, each with a manifest, resumably.

:func:`convert_variants` is the API behind ``edgenet convert``. For every variant it

1. loads the calibration set (int8/int16x8) through :func:`edgenet.convert.calibration.load_calibration`
   at the variant's resolution and checks every tensor is finite and in range: the TF 2.21
   converter segfaults on NaN/Inf instead of raising, so this must happen *before*;
2. computes the inputs fingerprint (:func:`edgenet.convert.request.fingerprint_inputs`: the
   request's own fields, the variant, the weights' sha256, the calibration and held-out images,
   edgenet and TensorFlow versions) and skips the variant when the model beside its manifest was
   built from exactly these inputs (:meth:`Converter.up_to_date`, the one check the Ray executor
   uses too);
3. runs the conversion in a child process (:mod:`edgenet.convert.worker`, which takes a
   :class:`~edgenet.convert.request.WorkerJob` and answers a typed
   :class:`~edgenet.convert.request.WorkerResult`, and documents the
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

Every option rule lives in :class:`~edgenet.convert.request.ConvertRequest` (``ConvertOptions`` is its
old name). This module does not import TensorFlow (the child does), so the CLI stays light.
"""

from __future__ import annotations

import contextlib
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
from ..errors import EdgenetError, MissingDependencyError, signal_name
from ..family.variants import Variant
from ..fsutil import sha256_bytes, sha256_file, tmp_path, write_error
from ..pixels.contract import PreprocessContract
from .calibration import CalibrationData, check_calibration_array, load_calibration
from .fidelity import HoldoutSet, agreement_line, holdout_set
from .manifest import SCHEMA, inputs_fingerprint, is_up_to_date, manifest_path_for, utc_now, write_manifest
from .modes import CALIBRATED_MODES, IO_TYPES, QUANT_MODES, default_io, resolve_io
from .request import CONVERTER_REVISION, ConvertRequest, QualityReport, TensorInfo, WorkerJob, WorkerResult
from .request import fingerprint_inputs as _fingerprint_inputs

__all__ = [
    "QUANT_MODES",
    "IO_TYPES",
    "CALIBRATED_MODES",
    "ConvertRequest",
    "ConvertResult",
    "Converter",
    "convert_variants",
    "default_io",
    "output_stem",
    "resolve_io",
    "summary_rows",
]

WORKER_MODULE = "edgenet.convert.worker"


def __getattr__(name: str):
    if name == "ConvertOptions":  # the old name of ConvertRequest, kept for one release
        import warnings

        warnings.warn("edgenet.convert.api.ConvertOptions is deprecated: use ConvertRequest (same fields, plus "
                      "target)", DeprecationWarning, stacklevel=2)
        return ConvertRequest
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def output_stem(variant: Variant, quant: str, io: str) -> str:
    """``b0-int8``, ``b0-int8-float``, ``lite0-fp16``: the io suffix only when it is not the default."""
    stem = f"{variant.name}-{quant}"
    return stem if io == default_io(quant) else f"{stem}-{io}"


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


@dataclass(frozen=True, eq=False)
class Plan:
    """One variant's conversion as planned: where it goes and the inputs it is built from."""

    variant: Variant
    model_path: Path
    calib: CalibrationData | None
    hold: HoldoutSet | None
    inputs: dict
    fingerprint: str

    @property
    def manifest_path(self) -> Path:
        return manifest_path_for(self.model_path)

    def result(self, request: ConvertRequest, status: str, **kw) -> ConvertResult:
        v = self.variant
        return ConvertResult(variant=v.name, spec=v.spec or v.name, quant=request.quant, io=request.io, status=status,
                             model_path=str(self.model_path), manifest_path=str(self.manifest_path),
                             weights=str(request.weights) if request.weights else None, **kw)


class Converter:
    """One request's conversions: plans them, says which are up to date, runs the worker for the rest.

    Keeps the calibration and held-out tensors of the current preprocessing contract (one resolution at
    a time: B7's 100 samples are 430 MB). Used by :func:`convert_variants` and by the Ray executor,
    which decides up-to-date on the submitting machine with the same :meth:`up_to_date`.
    """

    def __init__(self, request: ConvertRequest, log: Callable[[str], None] | None = None):
        self.request = request
        self.log = log  # warnings for the terminal (skipped images, ranges)
        self.weights_sha256 = sha256_file(request.weights) if request.weights else None
        self._calib: dict[PreprocessContract, CalibrationData] = {}
        self._holdout: dict[PreprocessContract, HoldoutSet | None] = {}
        try:
            request.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_error(request.out_dir, exc) from None

    def calibration(self, contract: PreprocessContract) -> CalibrationData:
        if contract not in self._calib:
            self._calib.clear()
            r = self.request
            self._calib[contract] = load_calibration(r.calib, contract, r.samples, r.seed, progress=r.progress,
                                                     log=self.log)
        return self._calib[contract]

    def holdout(self, contract: PreprocessContract, calib: CalibrationData) -> HoldoutSet | None:
        if contract not in self._holdout:
            self._holdout.clear()
            self._holdout[contract] = holdout_set(self.request.calib, contract, calib.files, self.request.holdout)
        return self._holdout[contract]

    def plan(self, variant: Variant) -> Plan:
        r = self.request
        calib = self.calibration(variant.contract) if r.calibrated else None
        hold = self.holdout(variant.contract, calib) if calib is not None else None
        inputs = _fingerprint_inputs(
            r, variant.spec or variant.name, weights_sha256=self.weights_sha256,
            calibration=dict(calib.fingerprint) if calib is not None else None,
            holdout_sha256=sha256_bytes(hold.array.tobytes()) if hold is not None else None)
        model_path = r.out_dir / f"{output_stem(variant, r.quant, r.io)}.tflite"
        return Plan(variant, model_path, calib, hold, inputs, inputs_fingerprint(inputs))

    def up_to_date(self, plan: Plan) -> ConvertResult | None:
        """The finished output when the model beside its manifest was built from exactly ``plan``'s inputs."""
        done = is_up_to_date(plan.model_path, plan.fingerprint)
        if done is None:
            return None
        return plan.result(self.request, "up to date", size_bytes=done["model"]["size_bytes"],
                           conversion_time_s=done.get("conversion_time_s"), worker_time_s=done.get("worker_time_s"),
                           peak_memory_mb=done.get("peak_memory_mb"), fidelity=done.get("fidelity"),
                           notes=tuple(done.get("notes") or ()))

    def __call__(self, variant: Variant) -> ConvertResult:
        """Convert ``variant`` unless it is up to date (or ``force``); failures are results."""
        started = time.perf_counter()
        plan = self.plan(variant)
        done = None if self.request.force else self.up_to_date(plan)
        if done is not None:
            return done
        result = self.convert(plan)
        if result.worker_time_s is None and result.status == "failed":
            result = replace(result, worker_time_s=round(time.perf_counter() - started, 3))
        return result

    def convert(self, plan: Plan) -> ConvertResult:
        """Run the worker for ``plan``; the model is moved into place, then the manifest is written."""
        r, variant, model_path = self.request, plan.variant, plan.model_path
        _remove_stale(r.out_dir, model_path.name)
        staging = tmp_path(model_path)  # written (and fsynced) by the worker, renamed below
        try:  # a read-only output folder fails here, in one line, before the (slow) conversion
            staging.touch()
        except OSError as exc:
            raise write_error(model_path, exc) from None
        try:
            workdir = Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-{model_path.stem}-"))
        except OSError as exc:
            staging.unlink(missing_ok=True)
            raise write_error(tempfile.gettempdir(), exc) from None
        try:
            code, outcome = _run_worker(_job(plan, r, staging, workdir), workdir)
            if code < 0:
                return plan.result(r, "failed", error=(
                    f"{variant.name}: the converter process crashed ({signal_name(code)}) during the {r.quant} "
                    f"conversion; nothing was written, earlier outputs are intact"))
            if code != 0 or not isinstance(outcome, WorkerResult) or not staging.exists():
                error = outcome if isinstance(outcome, str) else f"conversion worker exited with code {code}"
                if not error.startswith(f"{variant.name}:"):
                    error = f"{variant.name}: {error}"
                return plan.result(r, "failed", error=error)
            sha256 = sha256_file(staging)
            size_bytes = staging.stat().st_size
            manifest = build_manifest(plan, r, outcome, sha256, size_bytes)
            # Model first, manifest last: the manifest is what marks the conversion finished.
            try:
                os.replace(staging, model_path)
            except OSError as exc:
                raise write_error(model_path, exc) from None
            write_manifest(plan.manifest_path, manifest)
            fidelity = outcome.fidelity.to_dict() if outcome.fidelity is not None else None
            return plan.result(r, "converted", size_bytes=size_bytes, conversion_time_s=outcome.conversion_time_s,
                               worker_time_s=outcome.worker_time_s, peak_memory_mb=outcome.peak_memory_mb,
                               fidelity=fidelity, notes=tuple(manifest["notes"]))
        finally:
            with contextlib.suppress(OSError):
                staging.unlink(missing_ok=True)
            shutil.rmtree(workdir, ignore_errors=True)


def _job(plan: Plan, request: ConvertRequest, staging: Path, workdir: Path) -> WorkerJob:
    """The worker's input: the request and the variant, with the calibration and held-out tensors as files."""
    variant, calib, hold = plan.variant, plan.calib, plan.hold
    files: dict = {}
    if calib is not None:
        names = [str(p) for p in calib.files] + [f"augmented sample {i + 1}" for i in range(calib.augmented_count)]
        check_calibration_array(calib.array, names, variant.contract)
        np.save(workdir / "calibration.npy", calib.array)
        files["calib_npy"] = str(workdir / "calibration.npy")
    if hold is not None:
        np.save(workdir / "holdout.npy", hold.array)
        files.update(holdout_npy=str(workdir / "holdout.npy"), holdout_images=hold.images, holdout_source=hold.source,
                     holdout_groups=None if hold.groups is None else tuple(int(g) for g in hold.groups))
    return WorkerJob(request=request, variant_spec=variant.spec or variant.name, model_out=str(staging),
                     model_path=str(plan.model_path), result_out=str(workdir / "result.json"),
                     log_path=str(workdir / "converter.log"), **files)


def _run_worker(job: WorkerJob, workdir: Path) -> tuple[int, WorkerResult | str | None]:
    """Run the child; its return code and its typed result (or its one error line)."""
    import json

    job_path = workdir / "job.json"
    job_path.write_text(job.to_json(), encoding="utf-8")
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # TensorFlow writes autograph sources under the temp dir: the child's own, inside the workdir the
    # parent removes on any exit (SIGTERM included), so nothing is left behind.
    child_tmp = workdir / "tmp"
    child_tmp.mkdir()
    env["TMPDIR"] = str(child_tmp)
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = package_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    # Own process group (edgenet.process): on SIGINT/SIGTERM the parent stops it and removes the workdir.
    proc = process.popen([sys.executable, "-m", WORKER_MODULE, str(job_path)], env=env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        code = proc.wait()
    finally:
        process.stop(proc)
    try:
        out = json.loads(Path(job.result_out).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return code, None
    if not out.get("ok"):
        return code, str(out.get("error") or "")
    try:
        return code, WorkerResult.from_dict(out["result"])
    except (EdgenetError, KeyError, TypeError) as exc:
        return code, f"unreadable conversion result ({exc})"


def _variant_block(variant: Variant) -> dict:
    return {
        "name": variant.name,
        "spec": variant.spec or variant.name,
        "family": variant.family,
        "activation": variant.activation,
        "se": variant.se,
        "fixed_stem_head": variant.fixed_stem_head,
    }


def _input_note(request: ConvertRequest, tensor: TensorInfo, contract: PreprocessContract) -> str | None:
    """For integer input, check that it quantizes raw pixels (scale ~1), as in-graph normalisation implies."""
    io = request.io
    if request.quant != "int8" or io == "float" or contract.normalization != "in_graph":
        return None
    expected_zp = -128 if io == "int8" else 0
    scale, zp = tensor.scale, tensor.zero_point
    if scale is not None and abs(scale - 1.0) < 0.01 and zp == expected_zp:
        return f"input quantization scale {scale:.6g}, zero point {zp}: the model takes raw pixels 0..255"
    return (f"input quantization scale {scale}, zero point {zp} differ from raw pixels (1.0, {expected_zp}); "
            f"feed {io} through the model's own scale and zero point")


def _quality_note(quality: QualityReport | None) -> str | None:
    """One line on what the range/bias repairs and the accuracy budget did (None for plain min/max int8)."""
    if quality is None:
        return None
    parts = []
    if quality.ranges != "minmax":
        chosen = ", ".join(f"{m} {n}" for m, n in (quality.range_methods or {}).items())
        parts.append(f"{quality.ranges} ranges" + (f" ({chosen} tensors)" if chosen else ""))
    if quality.weight_rounding:
        rounded = quality.weight_rounding
        layerwise = rounded.get("layerwise_adaround_ops")
        parts.append(f"int8 weights re-rounded ({rounded.get('method', 'gptq')}, {rounded['ops']} ops, "
                     f"{rounded['weights_changed']} weights moved"
                     + (f", {layerwise} ops by layer-wise AdaRound outside simulated blocks" if layerwise else "") + ")")
    if quality.bias_correction:
        bias = quality.bias_correction
        parts.append(f"bias correction ({bias['ops']} ops, {bias['channels']} biases moved)")
    budget = quality.budget
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
        head += _why_kept(budget)
        why = "" if budget["met"] else f"; ladder stopped: {budget.get('stopped', 'every rung tried')}"
        precision = quality.precision
        if not precision:
            return head + "; still full-integer, same operators as plain int8" + why
        named = list(dict.fromkeys(_layer(name) for name in precision["ops"]))  # an op pair per layer: once
        layers = ", ".join(named[:8]) + (f", ... ({len(named)} layers)" if len(named) > 8 else "")
        lat = budget.get("latency_vs_plain_int8") or {}
        return (f"{head} + {precision['kind']} for {len(precision['ops'])} op(s) ({layers}); latency "
                f"{lat.get('ratio_of_minima', float('nan')):.2f}x plain int8 (ratio of minima, median pair "
                f"{lat.get('median_pair_ratio', float('nan')):.2f}x){why}")
    return ("quantization repairs: " + " + ".join(parts)) if parts else None


def _why_kept(budget: dict) -> str:
    """Why the budget kept what it kept, against plain int8 on the choice photos (the paired evidence)."""
    vs = budget.get("vs_plain_int8")
    if not vs or not vs.get("b_better"):
        return ", no rung beating it on the choice photos" if len(budget.get("steps") or ()) > 1 else ""
    evidence = f"flips only plain int8 / only this {vs['only_a']} / {vs['only_b']}"
    if vs.get("fewer_flips"):
        evidence += f", p = {vs['p_value']:.2g}"
    if vs.get("closer"):
        evidence += f"; close-call error {vs['close_error_ratio']:.2f}x, p = {vs['close_error_p_value']:.2g}"
    return f", which beats plain int8 on the choice photos ({evidence})"


def _layer(tensor_name: str) -> str:
    from .tensor_errors import layer_of

    return layer_of(tensor_name)


def build_manifest(plan: Plan, request: ConvertRequest, result: WorkerResult, sha256: str, size_bytes: int) -> dict:
    """The manifest of a finished conversion: the request (whole), the inputs it was built from, what came out."""
    variant, calib, hold = plan.variant, plan.calib, plan.hold
    contract = variant.contract
    notes = [note for note in (
        _input_note(request, result.input, contract),
        "random initial weights: accuracy and fidelity numbers are meaningless (pass --weights)"
        if request.weights is None else None,
        calib.note if calib is not None and calib.augmented_count else None,
        _quality_note(result.quality),
    ) if note]
    fidelity_note = None
    if request.calibrated:
        fidelity_note = hold.note if hold is not None else (
            "not measured: every image of the calibration folder was used for calibration (pass --holdout DIR)")
    fidelity = result.fidelity.to_dict() if result.fidelity is not None else None
    return {
        "schema": SCHEMA,
        "created_utc": utc_now(),
        # What was asked (where it was written and how it ran aside): the fingerprint's source, readable.
        "request": {k: v for k, v in request.to_dict().items() if k not in ("out_dir", "force", "progress")},
        "variant": _variant_block(variant),
        "coefficients": {"width": variant.width, "depth": variant.depth, "resolution": variant.resolution,
                         "dropout": variant.dropout, "phi": variant.phi},
        "resolution": variant.resolution,
        "params": result.params,
        "macs": result.macs,
        # Read by the runtime on a device (edgenet.runtime.envinfo): the request's, not copies kept apart.
        "quant": request.quant,
        "io": request.io,
        "batch_size": request.batch_size,
        "input": result.input.to_dict(),
        "output": result.output.to_dict(),
        "normalization": contract.normalization,
        "preprocessing": contract.to_dict(),
        "calibration": None if calib is None else {**calib.fingerprint, "skipped": len(calib.skipped),
                                                   "note": calib.note},
        "weights": None if request.weights is None else {
            "file": str(request.weights), "sha256": plan.inputs["weights_sha256"], "format": result.weights_format},
        "random_weights": request.weights is None,
        "init_seed": request.seed if request.weights is None else None,
        "model": {"file": plan.model_path.name, "sha256": sha256, "size_bytes": size_bytes},
        "sha256": sha256,
        "size_bytes": size_bytes,
        "versions": result.versions,
        "converter": {"path": result.converter_path, "revision": CONVERTER_REVISION,
                      "calibrator": request.calibrator if calib is not None else None},
        "conversion_time_s": result.conversion_time_s,
        "worker_time_s": result.worker_time_s,
        "peak_memory_mb": result.peak_memory_mb,
        "peak_memory_after_convert_mb": result.peak_memory_after_convert_mb,
        "fidelity": fidelity,
        "fidelity_note": fidelity_note,
        "fidelity_summary": agreement_line(fidelity) if fidelity else None,
        "quality": result.quality.to_dict() if result.quality is not None else None,
        "notes": notes,
        "inputs": plan.inputs,
        "inputs_fingerprint": plan.fingerprint,
    }


def convert_variants(
    variants: Sequence[Variant],
    options: ConvertRequest,
    on_result: Callable[[ConvertResult], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> list[ConvertResult]:
    """Convert each variant (see the module docstring); failures are results, not exceptions.

    ``options`` validated itself when it was made (:class:`ConvertRequest`); raises :class:`EdgenetError`
    only for problems that would fail every variant, before any conversion starts: TensorFlow missing,
    a missing weights file, an unusable calibration folder.
    """
    import importlib.util

    from tqdm import tqdm

    if importlib.util.find_spec("tensorflow") is None:
        # Fail before loading calibration images: the core (device) install has no TensorFlow.
        raise MissingDependencyError("tensorflow", "tf", "converting models")
    options.check_inputs()
    converter = Converter(options, log)
    # Conversions whose parent was killed (SIGKILL skips ``finally``) leave their folders behind.
    process.remove_orphaned(tempfile.gettempdir(), WORKDIR_PREFIX)
    if options.calibrated and variants:
        # Fail on a bad calibration folder before the first (slow) conversion starts.
        converter.calibration(variants[0].contract)

    results = []
    bar = tqdm(variants, desc="variants", unit="model", file=sys.stderr, position=0,
               disable=not options.progress or len(variants) < 2)
    for variant in bar:
        bar.set_postfix_str(variant.name)
        result = converter(variant)
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
