"""``edgenet edgetpu``: will a model run on a Coral Edge TPU, and how much of it?

Nothing here imports TensorFlow: the check reads the flatbuffer directly, so it runs on
the Raspberry Pi or Dev Board that hosts the accelerator.
"""

from __future__ import annotations

import click

from . import options
from .common import emit_json, info, user_errors


@click.group("edgetpu")
def edgetpu() -> None:
    """Coral Edge TPU: static compatibility check and edgetpu_compiler integration.

    \b
    Example:
      edgenet edgetpu check efficientnet_lite0_int8.tflite
      edgenet edgetpu compile efficientnet_lite0_int8.tflite -o out/edgetpu
    """


_MODELS = click.argument("models", nargs=-1, required=True, type=click.Path(dir_okay=False))


@edgetpu.command("check")
@_MODELS
@options.json_flag(help="Print the full report (every op) as JSON.")
@user_errors
def check(models: tuple[str, ...], as_json: bool) -> None:
    """Check MODELS op by op against the documented Edge TPU rules (no compiler needed).

    Reports which ops map, where the compiler would cut the graph (everything after the
    first unsupported op runs on the CPU), the share of ops and MACs on the Edge TPU and
    the parameter bytes against the ~8 MiB on-chip cache. Exit status 0 even when ops do
    not map: the report is the result.

    \b
    Example:
      edgenet edgetpu check efficientnet_b0_int8.tflite efficientnet_lite0_int8.tflite
      edgenet edgetpu check model.tflite --json | jq .first_unsupported
    """
    from ..edgetpu.check import check_model, format_report

    reports = [check_model(path) for path in models]
    if as_json:
        payload = [r.to_dict() for r in reports]
        emit_json(payload[0] if len(payload) == 1 else payload)
        return
    click.echo("\n\n".join(format_report(r) for r in reports))


@edgetpu.command("compile")
@_MODELS
@options.output("Folder for the compiled *_edgetpu.tflite files and their reports.", default="edgetpu_out",
                reason="each command's own output", old_names=("--out-dir",))
@options.json_flag(help="Print the parsed compiler reports as JSON.")
@click.option("--require-compiler", is_flag=True,
              help="Fail (exit 1) when edgetpu_compiler is unavailable instead of falling back to the static check.")
@user_errors
def compile_(models: tuple[str, ...], output, as_json: bool, require_compiler: bool) -> None:
    """Compile MODELS with edgetpu_compiler (x86-64 Linux only) and summarise the mapping.

    Where the compiler is not installed or cannot run (ARM, macOS), prints how to install
    it to stderr and runs the static check instead, with exit status 0: the question
    "how much of this model maps" still gets an answer. Use --require-compiler in scripts
    that need the compiled file.

    \b
    Example:
      edgenet edgetpu compile efficientnet_lite0_int8.tflite -o out/edgetpu --json
    """
    from ..edgetpu.check import check_model, format_report
    from ..edgetpu.compiler import CompilerUnavailableError, compile_models

    try:
        results = compile_models(models, output)
    except CompilerUnavailableError as exc:
        if require_compiler:
            raise
        info(str(exc))
        info("notice: edgetpu_compiler did not run; showing the static check (an estimate from Coral's documentation)")
        reports = [check_model(path) for path in models]
        if as_json:
            emit_json([{"compiled": False, "compiler_error": str(exc), "static_check": r.to_dict()} for r in reports])
        else:
            click.echo("\n\n".join(format_report(r) for r in reports))
        return

    if as_json:
        emit_json([r.report | {"report_path": r.report_path, "log_path": r.log_path} for r in results])
    else:
        for r in results:
            rep = r.report
            if not r.ok:
                click.echo(f"{r.model_path}: compilation failed: {rep.get('error')}")
                continue
            for model in rep["models"]:
                mib = 1024 * 1024
                click.echo(
                    f"{model['input_model']} -> {model['output_model']}: "
                    f"{model.get('ops_tpu') if model.get('ops_tpu') is not None else rep['ops_mapped']}"
                    f"/{model['ops_total']} ops on the Edge TPU, {model['subgraphs']} subgraph(s), "
                    f"on-chip {(model['on_chip_used_bytes'] or 0) / mib:.2f} MiB, "
                    f"off-chip {(model['off_chip_used_bytes'] or 0) / mib:.2f} MiB"
                )
            for reason, count in rep["not_mapped_by_reason"].items():
                click.echo(f"  not mapped: {count} op(s): {reason}")
    failed = [r for r in results if not r.ok]
    if failed:
        raise click.ClickException(f"{len(failed)} of {len(results)} model(s) failed to compile; see "
                                   + ", ".join(r.log_path for r in failed))
