"""LiteRT's CompiledModel API (ai-edge-litert 2.x), the newer alternative to the Interpreter.

``CompiledModel`` runs a model through LiteRT's own accelerator layer (on a CPU: XNNPACK) with
tensor buffers instead of interpreter tensors, and exposes what the Python Interpreter does not:
the XNNPACK weight cache, a file where XNNPACK keeps its packed weights so that the next start
maps them instead of repacking (faster init, shared pages). Note that the cache option wants a
*file* path, not a folder: a folder fails with "could not open file ... Is a directory".

Only ``ai_edge_litert`` has it; ``tflite_runtime`` and ``tf.lite`` do not, and asking for it there
is one clear error. Models are passed as bytes, as everywhere in edgenet.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import EdgenetError

__all__ = ["CompiledRunner", "weight_cache_file", "ynnpack_available"]


def ynnpack_available() -> bool:
    """True when the installed LiteRT's CPU options offer YNNPACK (``CpuOptions.enable_ynnpack``)."""
    try:
        import dataclasses

        from ai_edge_litert.options import CpuOptions
    except ImportError:
        return False
    return "enable_ynnpack" in {f.name for f in dataclasses.fields(CpuOptions)}


def weight_cache_file(model_sha256: str, threads: int) -> Path:
    """Where edgenet keeps the XNNPACK weight cache of one model: the temp folder, by content hash."""
    folder = Path(os.environ.get("EDGENET_XNNPACK_CACHE_DIR") or Path(tempfile.gettempdir()) / "edgenet-xnnpack")
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{model_sha256[:24]}-t{threads}.xnnpack"


class CompiledRunner:
    """One model under ``CompiledModel``: seeded inputs written once, ``invoke()`` runs signature 0."""

    def __init__(self, model_bytes: bytes, threads: int, *, weight_cache: str | os.PathLike | None = None,
                 source: str = "<model bytes>", ynnpack: bool = False):
        try:
            from ai_edge_litert.compiled_model import CompiledModel
            from ai_edge_litert.options import CpuOptions, Options
        except ImportError:
            raise EdgenetError("the CompiledModel API needs ai-edge-litert 2.x (pip install ai-edge-litert)") from None
        extra = {}
        if ynnpack:
            if not ynnpack_available():
                raise EdgenetError("this ai-edge-litert has no YNNPACK option (CpuOptions.enable_ynnpack); "
                                   "measure without --ynnpack or install a LiteRT that has it")
            extra["enable_ynnpack"] = True
        options = Options(cpu_options=CpuOptions(num_threads=threads,
                                                 xnnpack_weight_cache_path=str(weight_cache or ""), **extra))
        try:
            self.model = CompiledModel.from_buffer(bytes(model_bytes), options=options)
            self.inputs = self.model.create_input_buffers(0)
            self.outputs = self.model.create_output_buffers(0)
        except (RuntimeError, ValueError) as exc:
            text = " ".join(str(exc).split())[:300]
            if ynnpack:  # the option exists, but this build may lack YNNPACK itself
                raise EdgenetError(f"{source}: CompiledModel rejected the model with YNNPACK on (this LiteRT build "
                                   f"may lack YNNPACK): {text}") from None
            raise EdgenetError(f"{source}: CompiledModel rejected the model: {text}") from None
        key = next(iter(self.model.get_signature_list()))
        self.input_details = list(self.model.get_input_tensor_details(key).values())
        self.output_details = list(self.model.get_output_tensor_details(key).values())

    def fill_inputs(self, rng: np.random.Generator) -> None:
        """The seeded input ``edgenet bench`` feeds the Interpreter: random values of the model's dtype."""
        for detail, buffer in zip(self.input_details, self.inputs, strict=True):
            dtype, shape = np.dtype(detail["dtype"]), tuple(int(d) for d in detail["shape"])
            if np.issubdtype(dtype, np.integer):
                info = np.iinfo(dtype)
                data = rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
            else:
                data = rng.uniform(0.0, 255.0, size=shape).astype(dtype)
            buffer.write(data)

    def read_output(self, index: int = 0) -> np.ndarray:
        """A copy of output ``index`` in its own dtype and shape."""
        detail = self.output_details[index]
        shape = tuple(int(d) for d in detail["shape"])
        values = self.outputs[index].read(int(np.prod(shape)), np.dtype(detail["dtype"]))
        return np.asarray(values).reshape(shape).copy()

    def invoke(self) -> None:
        self.model.run_by_index(0, self.inputs, self.outputs)
