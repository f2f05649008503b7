"""``edgenet convert --target edgetpu``: make converted models Edge TPU-ready.

An Edge TPU model is full-integer int8 with a static batch of 1; the classic Coral
runtime and pycoral examples feed uint8 images, so uint8 input/output is the default
(the compiler also accepts int8). After conversion each model gets the static check
(recorded in its manifest under ``edgetpu``) and, where ``edgetpu_compiler`` exists,
is compiled into ``<stem>_edgetpu.tflite`` beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..convert.manifest import manifest_path_for, read_manifest, write_manifest
from .check import check_model
from .compiler import CompilerUnavailableError, compile_models


@dataclass(frozen=True)
class EdgeTPUReady:
    model_path: str
    ops_tpu_share: float
    macs_tpu_share: float
    first_unsupported: str | None
    compiled_path: str | None
    note: str


def prepare_for_edgetpu(model_paths, out_dir) -> list[EdgeTPUReady]:
    """Static check of each model (stored in its manifest), then compile when the compiler exists."""
    checks = {}
    for path in model_paths:
        report = check_model(path)
        checks[str(path)] = report
        manifest_path = manifest_path_for(path)
        manifest = read_manifest(manifest_path)
        if manifest is not None:
            manifest["edgetpu"] = {"static_check": report.to_dict(include_ops=False)}
            write_manifest(manifest_path, manifest)
    compiled: dict[str, str] = {}
    note = ""
    try:
        for result in compile_models(list(checks), out_dir):
            if result.ok and result.output_path:
                compiled[str(result.model_path)] = str(result.output_path)
        note = "compiled with edgetpu_compiler"
    except CompilerUnavailableError as exc:
        note = str(exc)
    out = []
    for path, report in checks.items():
        first = report.first_unsupported
        out.append(EdgeTPUReady(
            model_path=path, ops_tpu_share=report.ops_tpu_share, macs_tpu_share=report.macs_tpu_share,
            first_unsupported=f"#{first.index} {first.op}: {first.reason}" if first else None,
            compiled_path=compiled.get(path), note=note,
        ))
    return out
