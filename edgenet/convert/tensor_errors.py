"""The error each quantized tensor adds, measured against the float model (the core of quant-report).

Moved here from :mod:`edgenet.quant.report` (which re-exports it and keeps the CLI side) so that the
conversion itself can rank tensors: the budget ladder (:mod:`edgenet.convert.quality`) picks the ops
to keep in higher precision from :meth:`QuantReport.ranked` measured on calibration samples.
What each figure means:

A quantized model and its float original are run side by side on the same held-out images with
every intermediate tensor kept (the interpreter's ``experimental_preserve_all_tensors``, builtin
kernels: a delegate such as XNNPACK fuses operators and hides their outputs). Tensors are matched
by name: the converter keeps the Keras layer names (``.../block6a_se_excite_1/Mul``) in both
graphs. For every quantized activation tensor ``t`` (int8, or int16 in int16x8 models), with
``f`` its float activation and ``q`` the quantized model's value dequantized:

* ``sqnr_db``: ``10 log10(sum f^2 / sum (f - q)^2)``, the *cumulative* error at ``t`` (everything
  quantized upstream plus ``t`` itself), as TF's QuantizationDebugger reports it;
* ``local_sqnr_db``: the error the operator producing ``t`` *adds*: the float operator alone (a
  one-operator model cut from the float graph) is run on the quantized model's own dequantized
  inputs and compared with the quantized operator's output, as TF's QuantizationDebugger does in
  its debug mode. This is what the report ranks by, because a tensor downstream of a bad one
  inherits its cumulative error but not its local one;
* ``own_sqnr_db``: ``f`` put on ``t``'s own int grid (scale, zero point, clipped to the dtype):
  the error of the range alone, rounding plus clipping, independent of everything upstream;
* ``clipped_fraction``: the share of ``f`` outside ``t``'s representable range (a range chosen too
  narrow shows here first); ``rmse_over_scale``: cumulative RMSE in units of ``t``'s step.

Tensors are named by their Keras layer (``block6a_se_excite``) and block (``block6a``).
:class:`QuantReport` renders a ranked Markdown table, JSON and a picture (matplotlib, the ``plot``
extra). The measurement runs user models: :func:`edgenet.quant.report.quant_report` runs it in a child
process; the conversion worker is one already.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import EdgenetError, MissingDependencyError

__all__ = ["TensorError", "QuantReport", "layer_of", "block_of", "measure_report"]

_SUFFIX = re.compile(r"_\d+$")
_BLOCK = re.compile(r"^(block\d+[a-z]+)_")


def layer_of(tensor_name: str) -> str:
    """The Keras layer behind a TFLite tensor name: ``m_1/block6a_se_excite_1/Mul`` -> ``block6a_se_excite``.

    Fused operators carry several names joined by ``;``; the last one is the operator that
    produced the tensor (``...bn_1/batchnorm/mul_1;...dwconv_1/depthwise`` -> ``block1a_dwconv``).
    """
    last = tensor_name.split(";")[-1]
    parts = [p for p in last.split("/") if p]
    if len(parts) >= 2:
        return _SUFFIX.sub("", parts[1])
    return _SUFFIX.sub("", parts[0]) if parts else tensor_name


def block_of(layer: str) -> str:
    """``block6a_se_excite`` -> ``block6a``; ``stem_conv`` -> ``stem``; ``predictions`` -> ``predictions``."""
    match = _BLOCK.match(layer)
    if match:
        return match.group(1)
    return layer.split("_", 1)[0]


def _db(signal: float, noise: float) -> float:
    if noise <= 0.0:
        return math.inf
    if signal <= 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


@dataclass(frozen=True)
class TensorError:
    """The error of one quantized activation tensor over the held-out samples (see the module docstring)."""

    order: int  # position in execution order among the reported tensors
    name: str
    layer: str
    block: str
    op: str  # the operator producing the tensor (QUANTIZE for the input)
    dtype: str
    scale: float
    zero_point: int
    sqnr_db: float
    local_sqnr_db: float
    own_sqnr_db: float
    rmse_over_scale: float
    clipped_fraction: float
    float_min: float
    float_max: float
    range_min: float
    range_max: float

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class QuantReport:
    """Per-tensor quantization error of ``model`` against ``float_source`` on ``images`` held-out photos."""

    model: str
    float_source: str
    images: int
    samples: int
    source: str
    tensors: tuple[TensorError, ...]
    output: dict = field(default_factory=dict)  # fidelity of the final output (edgenet.convert.fidelity)
    unmatched: int = 0  # quantized activation tensors with no float counterpart of the same name

    def ranked(self) -> list[TensorError]:
        """Worst first: lowest local SQNR (the error the tensor's operator adds), then lowest own SQNR."""
        return sorted(self.tensors, key=lambda t: (t.local_sqnr_db, t.own_sqnr_db, t.order))

    def worst_blocks(self, top: int = 5) -> list[tuple[str, float]]:
        """Blocks by the lowest local SQNR of their tensors."""
        best: dict[str, float] = {}
        for t in self.tensors:
            best[t.block] = min(best.get(t.block, math.inf), t.local_sqnr_db)
        return sorted(best.items(), key=lambda kv: kv[1])[:top]

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "float_source": self.float_source,
            "images": self.images,
            "samples": self.samples,
            "source": self.source,
            "output": self.output,
            "unmatched": self.unmatched,
            "ranked": [t.name for t in self.ranked()],
            "tensors": [t.to_dict() for t in self.tensors],
        }

    def markdown(self, top: int | None = 20) -> str:
        """A ranked Markdown table (worst ``top`` tensors; ``None``: all)."""
        out = self.output or {}
        lines = [
            f"# Quantization report: {Path(self.model).name}",
            "",
            f"Float reference: {self.float_source}. Held-out: {self.images} distinct image(s), {self.samples} "
            f"sample(s) (crops/flips), from {self.source}.",
        ]
        if out:
            from .fidelity import agreement_line

            lines.append(f"Output: {agreement_line(out)}, top-5 overlap "
                         f"{out['top5_overlap']:.2f}, logits SQNR {_fmt(out.get('sqnr_db'))} dB.")
        lines += ["", "Worst blocks (lowest local SQNR): " + ", ".join(
            f"{b} ({_fmt(db)} dB)" for b, db in self.worst_blocks()), ""]
        lines.append("| rank | layer | op | dtype | local SQNR dB | cumulative SQNR dB | own-range SQNR dB | "
                     "RMSE/scale | clipped % | float range | quant range |")
        lines.append("|---:|---|---|---|---:|---:|---:|---:|---:|---|---|")
        rows = self.ranked() if top is None else self.ranked()[:top]
        for rank, t in enumerate(rows, 1):
            lines.append(
                f"| {rank} | {t.layer} | {t.op} | {t.dtype} | {_fmt(t.local_sqnr_db)} | {_fmt(t.sqnr_db)} | "
                f"{_fmt(t.own_sqnr_db)} | {t.rmse_over_scale:.2f} | {100 * t.clipped_fraction:.2f} | "
                f"{t.float_min:.3g}..{t.float_max:.3g} | {t.range_min:.3g}..{t.range_max:.3g} |")
        if self.unmatched:
            lines += ["", f"{self.unmatched} quantized tensor(s) had no float tensor of the same name (not shown)."]
        return "\n".join(lines) + "\n"

    def plot(self, path: str | os.PathLike, top: int = 8) -> Path:
        """A picture of the error per tensor in execution order, the worst ``top`` labelled (PNG/SVG/PDF)."""
        try:
            import matplotlib
        except ImportError:
            raise MissingDependencyError("matplotlib", "plot", "drawing the quantization report") from None
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from ..fsutil import atomic_write_bytes

        xs = np.arange(len(self.tensors))

        def finite(values):
            return np.array([v if math.isfinite(v) else np.nan for v in values])

        cumulative = finite([t.sqnr_db for t in self.tensors])
        local = finite([t.local_sqnr_db for t in self.tensors])
        own = finite([t.own_sqnr_db for t in self.tensors])
        fig, ax = plt.subplots(figsize=(max(8.0, len(xs) * 0.06), 4.8), dpi=110)
        ax.plot(xs, cumulative, color="tab:blue", lw=1.4, label="cumulative SQNR (float vs quantized)")
        ax.scatter(xs, local, s=10, color="tab:red", label="local SQNR (error the op adds)", zorder=3)
        ax.plot(xs, own, color="tab:gray", lw=0.8, alpha=0.6, label="own-range SQNR (rounding + clipping)")
        previous = None
        for i, t in enumerate(self.tensors):
            if t.block != previous and t.block.startswith("block") and t.block.endswith("a"):
                ax.axvline(i, color="0.85", lw=0.8, zorder=0)
                ax.text(i, 1.0, t.block.removesuffix("a"), transform=ax.get_xaxis_transform(), fontsize=7,
                        va="bottom", ha="left", color="0.4")
            previous = t.block
        for t in self.ranked()[:top]:
            if math.isfinite(t.local_sqnr_db):
                ax.annotate(t.layer, (t.order, t.local_sqnr_db), fontsize=7, xytext=(3, -10),
                            textcoords="offset points", color="tab:red")
        ax.set_xlabel("quantized activation tensors in execution order (stages marked above)")
        ax.set_ylabel("dB (higher is better)")
        ax.set_title(f"{Path(self.model).name}: quantization error per tensor "
                     f"({self.images} held-out photo(s), {self.samples} samples)", fontsize=10)
        ax.legend(fontsize=8, loc="lower left")
        ax.grid(axis="y", color="0.9")
        fig.tight_layout()
        path = Path(path)
        import io

        buffer = io.BytesIO()
        fig.savefig(buffer, format=path.suffix.lstrip(".") or "png")
        plt.close(fig)
        atomic_write_bytes(path, buffer.getvalue())
        return path


def _fmt(value) -> str:
    if value is None:
        return "inf"
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.1f}"


# --------------------------------------------------------------------------------------------
# Measurement (runs native code on the user's models: call it in a child process)
# --------------------------------------------------------------------------------------------


@dataclass
class _Stats:
    signal: float = 0.0
    noise: float = 0.0
    own_noise: float = 0.0
    local_signal: float = 0.0
    local_noise: float = 0.0
    local_measured: bool = False
    clipped: int = 0
    count: int = 0
    low: float = math.inf
    high: float = -math.inf


@dataclass(frozen=True)
class _Target:
    """A quantized activation tensor of the quantized graph and its float counterpart."""

    quant_index: int
    float_index: int
    name: str
    op: str
    inputs: tuple[int, ...]  # quant indices of the producing op's activation inputs
    dtype: np.dtype
    scale: float
    zero_point: int
    float_op: int  # the float graph's operator producing the tensor (-1: a graph input)
    float_op_inputs: tuple[tuple[int, int], ...]  # (float index, quant index or -1) of its activation inputs


def _targets(float_bytes: bytes, quant_bytes: bytes) -> tuple[list[_Target], int]:
    from ..runtime.tflite_graph import read_graph

    fgraph, qgraph = read_graph(float_bytes), read_graph(quant_bytes)
    float_by_name = {t.name: t.index for t in fgraph.tensors if not t.is_constant}
    quant_by_name = {t.name: t.index for t in qgraph.tensors if not t.is_constant}
    float_producer = {t: k for k, op in enumerate(fgraph.operators) for t in op.outputs if t >= 0}
    producer: dict[int, str] = {}
    op_inputs: dict[int, tuple[int, ...]] = {}
    order: list[int] = list(qgraph.inputs)
    for op in qgraph.operators:
        for t in op.outputs:
            if t >= 0:
                producer[t] = op.opcode
                op_inputs[t] = tuple(i for i in op.inputs if i >= 0 and not qgraph.tensors[i].is_constant)
                order.append(t)
    targets, unmatched = [], 0
    for index in order:
        tensor = qgraph.tensors[index]
        if tensor.is_constant or tensor.dtype not in ("int8", "uint8", "int16") or not tensor.quantization.scale:
            continue
        if tensor.name not in float_by_name:
            unmatched += 1
            continue
        float_index = float_by_name[tensor.name]
        float_op = float_producer.get(float_index, -1)
        float_inputs = () if float_op < 0 else tuple(
            (i, quant_by_name.get(fgraph.tensors[i].name, -1))
            for i in fgraph.operators[float_op].inputs if i >= 0 and not fgraph.tensors[i].is_constant)
        targets.append(_Target(index, float_index, tensor.name, producer.get(index, "INPUT"),
                               op_inputs.get(index, ()), np.dtype(tensor.dtype),
                               float(tensor.quantization.scale[0]), int(tensor.quantization.zero_point[0]),
                               float_op, float_inputs))
    return targets, unmatched


def _op_interpreters(float_bytes: bytes, targets: Sequence[_Target]) -> dict[int, object]:
    """For each target whose float operator's inputs all exist in the quantized graph: an interpreter
    running that float operator alone (keyed by the target's quantized tensor index)."""
    from tensorflow.lite.tools import flatbuffer_utils

    from ..runtime.activations import preserving_interpreter
    from .calibrator import single_op_bytes

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(float_bytes))
    out = {}
    for t in targets:
        if t.float_op < 0 or not t.float_op_inputs or any(q < 0 for _, q in t.float_op_inputs):
            continue
        out[t.quant_index] = preserving_interpreter(single_op_bytes(model, t.float_op), 1)
    return out


def measure_report(float_bytes: bytes, quant_bytes: bytes, inputs: np.ndarray, *, model: str = "model",
                   float_source: str = "float model", images: int | None = None, source: str = "",
                   threads: int | None = None, groups: np.ndarray | None = None) -> QuantReport:
    """Run both models on ``inputs`` (N, H, W, 3 float pixels) and measure every matched quantized tensor.

    ``groups``: the image id of each input (views of one photo share one), for the output agreement's interval.
    Runs native code on the models: call it in a child process for untrusted files.
    """
    from ..runtime.activations import dequantizer, feed, output_float, preserving_interpreter
    from .fidelity import fidelity_metrics

    targets, unmatched = _targets(float_bytes, quant_bytes)
    if not targets:
        raise EdgenetError(f"{model}: no quantized activation tensor shares a name with the float model "
                           "(is it a quantized model of the same network?)")
    fi = preserving_interpreter(float_bytes, threads)
    qi = preserving_interpreter(quant_bytes, threads)
    stats = {t.quant_index: _Stats() for t in targets}
    op_interpreters = _op_interpreters(float_bytes, targets)
    quant_value = dequantizer(qi)
    ref_out, quant_out = [], []
    for x in np.asarray(inputs, dtype=np.float32):
        feed(fi, x[None])
        feed(qi, x[None])
        fi.invoke()
        qi.invoke()
        ref_out.append(output_float(fi))
        quant_out.append(output_float(qi))
        for t in targets:
            f = np.asarray(fi.get_tensor(t.float_index), dtype=np.float64)
            qv = qi.get_tensor(t.quant_index)
            if f.shape != qv.shape:
                continue
            info = np.iinfo(t.dtype)
            deq = (qv.astype(np.float64) - t.zero_point) * t.scale
            own_q = np.clip(np.sign(f / t.scale) * np.floor(np.abs(f / t.scale) + 0.5) + t.zero_point,
                            info.min, info.max)
            own = (own_q - t.zero_point) * t.scale
            lo, hi = (info.min - t.zero_point - 0.5) * t.scale, (info.max - t.zero_point + 0.5) * t.scale
            s = stats[t.quant_index]
            s.signal += float(np.sum(f * f))
            s.noise += float(np.sum((f - deq) ** 2))
            s.own_noise += float(np.sum((f - own) ** 2))
            s.clipped += int(np.count_nonzero((f < lo) | (f > hi)))
            s.count += f.size
            s.low, s.high = min(s.low, float(f.min())), max(s.high, float(f.max()))
            local_model = op_interpreters.get(t.quant_index)
            if local_model is not None:
                for float_index, quant_index in t.float_op_inputs:
                    local_model.set_tensor(float_index, quant_value(quant_index))
                local_model.invoke()
                ref = np.asarray(local_model.get_tensor(t.float_index), dtype=np.float64)
                s.local_signal += float(np.sum(ref * ref))
                s.local_noise += float(np.sum((ref - deq) ** 2))
                s.local_measured = True
    rows = []
    for t in targets:
        s = stats[t.quant_index]
        if s.count == 0:
            continue
        # A graph input has no operator: its local error is its own quantization.
        local = _db(s.local_signal, s.local_noise) if s.local_measured else _db(s.signal, s.own_noise)
        info = np.iinfo(t.dtype)
        layer = layer_of(t.name)
        block = block_of(layer)
        rows.append(TensorError(
            order=len(rows), name=t.name, layer=layer, block=block, op=t.op, dtype=t.dtype.name,
            scale=t.scale, zero_point=t.zero_point, sqnr_db=_db(s.signal, s.noise), local_sqnr_db=local,
            own_sqnr_db=_db(s.signal, s.own_noise), rmse_over_scale=math.sqrt(s.noise / s.count) / t.scale,
            clipped_fraction=s.clipped / s.count, float_min=s.low, float_max=s.high,
            range_min=(info.min - t.zero_point) * t.scale, range_max=(info.max - t.zero_point) * t.scale))
    fid = fidelity_metrics(np.concatenate(ref_out), np.concatenate(quant_out),
                           images=images if images is not None else len(inputs), source=source,
                           groups=groups).to_dict()
    fid = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in fid.items()}
    return QuantReport(model=model, float_source=float_source, images=int(images or len(inputs)),
                       samples=int(len(inputs)), source=source, tensors=tuple(rows), output=fid, unmatched=unmatched)


