"""Every shared option of the command line, defined once (pip's ``cmdoptions``).

Each factory returns a click decorator; commands pick what they need. A name means one thing in
every command: one type, flag or value, one choice set, one default. Where one command's default
differs, the option declares why (``reason=``), and the test that walks the click tree
(tests/test_options.py) holds every other difference to be a defect. The measurement flags are
generated from :class:`edgenet.bench.params.BenchParams` (help, bounds, choices and defaults are
its fields'); a command that measures differently takes its defaults from a named preset
(:data:`PRESETS`), never from a retyped literal.

Renamed spellings keep working for one release: they are hidden, print one ``warning:`` line on
stderr naming the new spelling, and are listed in CHANGELOG.md under "Deprecated".

Numbers go through :class:`edgenet.cli.common.NumberType` (finite, in range, the option named in
the error), built on the bounds of :mod:`edgenet.numbers`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from .. import numbers
from ..bench.params import BenchParams, option_fields
from ..bench.profile import PROFILE_BENCH
from ..convert.modes import QUANT_MODES
from ..results.records import STATS
from ..sweep.params import SWEEP_BENCH
from .common import BUDGET_MS, VARIANT, WEIGHTS, NumberType

__all__ = [
    "FaceOption", "PRESETS", "deprecated", "deprecation", "json_flag", "json_records", "results_file", "output",
    "stat", "threads", "harness", "budget_ms", "constraint", "constraints", "objective", "remote", "remote_command", "ssh_option",
    "devices_file", "device_names", "device_filter", "cluster", "quant", "calib", "samples", "seed", "weights",
    "data", "labels", "quiet", "png", "top", "variant", "resolution", "label", "csv", "number", "json_and_results", "timeout_s", "min_agreement",
    "DeprecatedOption", "JsonRecordsOption", "STAT_CHOICE", "THREAD_COUNTS",
]

#: The named measurement presets: a command whose harness defaults differ takes them from one of these.
PRESETS: dict[str, BenchParams] = {
    "BenchParams()": BenchParams(),  # bench, tune: the TFLite benchmark tool's protocol
    "SWEEP_BENCH": SWEEP_BENCH,  # sweep: many models, shorter per model, still >= 30 runs
    "PROFILE_BENCH": PROFILE_BENCH,  # profile: rounds of whole-model and per-part timings
}


def deprecation(old: str, new: str) -> None:
    """The one line a deprecated spelling prints (stderr)."""
    click.echo(f"warning: {old} is deprecated and will be removed in the next release; use {new}", err=True)


class FaceOption(click.Option):
    """An option of the one set.

    ``old_names``: earlier spellings, accepted for one release (hidden, one warning line);
    ``reason``: why this command's default (or single/multiple form) differs from the others';
    ``preset``: the :data:`PRESETS` name a generated measurement option takes its default from.
    """

    def __init__(self, *args, old_names: Sequence[str] = (), reason: str | None = None,
                 preset: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.old_names = tuple(old_names)
        self.reason = reason
        self.preset = preset

    def _old_dest(self, old: str) -> str:
        return f"{self.name}\0{old}"

    def add_to_parser(self, parser, ctx) -> None:
        super().add_to_parser(parser, ctx)
        for old in self.old_names:
            if self.is_flag:
                parser.add_option(obj=self, opts=[old], dest=self._old_dest(old),
                                  action="append_const" if self.multiple else "store_const",
                                  const=self.flag_activation_value)
            else:
                parser.add_option(obj=self, opts=[old], dest=self._old_dest(old),
                                  action="append" if self.multiple else "store", nargs=self.nargs)

    def consume_value(self, ctx, opts):
        for old in self.old_names:
            if self._old_dest(old) in opts:
                opts = dict(opts)
                value = opts.pop(self._old_dest(old))
                deprecation(old, "/".join(self.opts))
                if self.multiple and self.name in opts:
                    value = list(opts[self.name]) + list(value)
                opts[self.name] = value
        return super().consume_value(ctx, opts)


class DeprecatedOption(click.Option):
    """A hidden option kept one release for an old way of working (``bench --tune``): one warning line."""

    def __init__(self, *args, instead: str, **kwargs):
        super().__init__(*args, hidden=True, **kwargs)
        self.instead = instead

    def process_value(self, ctx, value):
        value = super().process_value(ctx, value)
        source = ctx.get_parameter_source(self.name)
        if source is not None and source == click.core.ParameterSource.COMMANDLINE:
            deprecation("/".join(self.opts), self.instead)
        return value


def deprecated(*decls: str, instead: str, **attrs):
    """A hidden, deprecated option (see :class:`DeprecatedOption`)."""
    return click.option(*decls, cls=DeprecatedOption, instead=instead, **attrs)


def _option(*decls: str, cls: type[FaceOption] = FaceOption, **attrs):
    return click.option(*decls, cls=cls, **attrs)


def number(bounds: numbers.Bounds) -> NumberType:
    """The one parameter type of a number option (the family of ``--budget-ms``)."""
    return NumberType(bounds)


# --- results and output ---------------------------------------------------------------------------

def json_flag(help: str = "Print the results as JSON on stdout (human text stays on stderr)."):
    """``--json``: results as JSON on stdout. The one meaning in every command."""
    return _option("--json", "as_json", is_flag=True, help=help)


class JsonRecordsOption(FaceOption):
    """``--json`` of the commands that write result records (bench, tune, eval): the flag writes them
    as JSON lines on stdout. ``--json FILE`` was the file form, now ``--results FILE``: accepted for
    one release (a ``.tflite`` after ``--json`` is a model, not a file)."""


def json_records():
    return _option("--json", "as_json", cls=JsonRecordsOption, is_flag=False, flag_value="-", default=None,
                   metavar="", help="Write the result records (edgenet.result/1) as JSON lines on stdout "
                                    "(the table goes to stderr).")


def results_file(help: str = "Append the result records (edgenet.result/1 JSON lines) to FILE."):
    """``--results FILE``: the results file (JSON lines) a command appends to, or reads."""
    return _option("--results", "results_path", default=None, metavar="FILE", help=help)


def json_and_results(as_json, results_path, models: tuple = ()) -> tuple[bool, str | None, tuple]:
    """Resolve ``--json`` (flag, or the deprecated ``--json FILE``) and ``--results FILE``.

    Returns (records on stdout?, results file or None, models): a ``.tflite`` taken as the
    deprecated file value is a model given after the flag.
    """
    if as_json is None:
        return False, results_path, models
    if as_json == "-":
        return True, results_path, models
    if str(as_json).endswith(".tflite"):
        return True, results_path, (as_json, *models)
    deprecation("--json FILE", "--results FILE (and --json alone for JSON lines on stdout)")
    if results_path:
        raise click.UsageError("--json FILE and --results FILE both name the results file: give --results only")
    return False, as_json, models


def output(help: str, *, default: str | None = None, required: bool = False, reason: str | None = None,
           old_names: Sequence[str] = ()):
    """``-o/--output``: where a command writes (a folder or a file, as its help says)."""
    return _option("-o", "--output", "output", type=click.Path(path_type=Path), default=default, required=required,
                   show_default=default is not None, reason=reason, old_names=old_names, help=help)


def csv():
    return _option("--csv", "csv_path", default=None, metavar="FILE",
                   help="Also write the records as CSV (dotted columns).")


def png(help: str):
    return _option("--png", "png_path", type=click.Path(dir_okay=False, path_type=Path), default=None, help=help)


def quiet(*, old_names: Sequence[str] = ()):
    return _option("--quiet", is_flag=True, old_names=old_names, help="No progress bars on stderr.")


# --- statistics and measurement -------------------------------------------------------------------

class StatChoice(click.Choice):
    """A latency statistic of the results schema; ``median`` (profile's old word) is ``p50``, for one release."""

    OLD = {"median": "p50"}

    def convert(self, value, param, ctx):
        if isinstance(value, str) and value in self.OLD:
            deprecation(f"--stat {value}", f"--stat {self.OLD[value]}")
            value = self.OLD[value]
        return super().convert(value, param, ctx)


#: The one choice set of ``--stat``: the latency statistics a record holds (``latency_ms``: p50..p99,
#: mean, min, max; see edgenet/results/schema.py).
STAT_CHOICE = StatChoice(STATS)


def stat(*, default: str | None = "p50", reason: str | None = None, help: str | None = None):
    """``--stat``: a latency statistic of the results schema."""
    return _option("--stat", type=STAT_CHOICE, default=default, show_default=default is not None,
                   reason=reason, help=help or "Latency statistic (of the timed runs) the command works with.")


class ThreadCounts(click.ParamType):
    """Thread counts: ``1`` or a comma-separated list such as ``1,2,4`` (each 1..1024)."""

    name = "threads"

    def convert(self, value, param, ctx) -> tuple[int, ...]:
        if isinstance(value, tuple):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        parts = [part.strip() for part in str(value).split(",") if part.strip()]
        if not parts:
            self.fail(f"{value!r} is not a comma-separated list of thread counts", param, ctx)
        counts = []
        for part in parts:
            try:  # the bounds of BenchParams.threads
                counts.append(BenchParams.__dataclass_fields__["threads"].metadata["bounds"].check(part, "count"))
            except numbers.NumberError as exc:
                self.fail(f"{value!r} is not a comma-separated list of thread counts ({exc})", param, ctx)
        return tuple(counts)


THREAD_COUNTS = ThreadCounts()


def _one_count(ctx, param, value):
    if value is None:
        return None
    if len(value) != 1:
        raise click.BadParameter(f"this command runs one thread count, got {','.join(map(str, value))}", ctx, param)
    return value[0]


def threads(*, many: bool = False, default: int | None = BenchParams().threads, reason: str | None = None,
            help: str | None = None):
    """``--threads``: thread counts, generated from ``BenchParams.threads`` (its help, bounds and default); a
    list where a command measures several settings (bench, tune), else exactly one."""
    field = BenchParams.__dataclass_fields__["threads"]
    return _option("--threads", type=THREAD_COUNTS, default=None if default is None else str(default),
                   show_default=default is not None, callback=None if many else _one_count, reason=reason,
                   help=help or ("Thread counts to measure, e.g. 1,2,4." if many else field.metadata["help"]))


def _field_option(f, preset_name: str):
    meta = f.metadata
    default = getattr(PRESETS[preset_name], f.name)
    reason = None if preset_name == "BenchParams()" else f"the {preset_name} preset"
    if meta["flag"]:
        return _option(meta["flag"], f.name, is_flag=True, flag_value=not f.default, default=default,
                       preset=preset_name, reason=reason, help=meta["help"])
    if meta["choices"]:
        kind = click.Choice(meta["choices"])
    elif meta["bounds"] is not None:
        kind = NumberType(meta["bounds"])
    else:
        kind = str
    return _option(f"--{f.name.replace('_', '-')}", f.name, type=kind, default=default,
                   show_default=default is not None, preset=preset_name, reason=reason, help=meta["help"])


#: The measurement fields that ``--threads`` covers (a list in bench/tune, one count elsewhere).
_NOT_GENERATED = ("threads",)


def harness(*names: str, preset: str = "BenchParams()"):
    """The measurement options ``names`` (BenchParams fields; all of them when empty), generated from
    :class:`BenchParams` with the defaults of ``PRESETS[preset]``."""
    wanted = [f for f in option_fields() if f.name not in _NOT_GENERATED and (not names or f.name in names)]
    unknown = set(names) - {f.name for f in wanted}
    if unknown:
        raise ValueError(f"not BenchParams options: {', '.join(sorted(unknown))}")

    def decorate(fn):
        for f in reversed(wanted):
            fn = _field_option(f, preset)(fn)
        return fn

    return decorate


def timeout_s(*, default: float | None = None, reason: str | None = None, help: str):
    """``--timeout-s`` of a command that does not measure (a remote eval, a device check): the same type and
    bounds as the measurement flag BenchParams generates."""
    return _option("--timeout-s", type=NumberType(numbers.TIMEOUT_S), default=default,
                   show_default=default is not None, reason=reason, help=help)


def min_agreement(help: str):
    """``--min-agreement``: top-1 agreement with the float model, in percent (an accuracy budget): the constraint's
    option (:func:`constraint`) with the command's own help."""
    return constraint("min_agreement", help=help)


def budget_ms(*, required: bool = True, help: str = "Latency budget in milliseconds."):
    return _option("--budget-ms", type=BUDGET_MS, required=required, default=None, help=help)


#: The bounds of a constraint's limit, by its unit (the table: edgenet.decide.constraints.CONSTRAINTS).
_CONSTRAINT_BOUNDS = {"MB": numbers.MEGABYTES, "%": numbers.PERCENT_FLOOR}


def constraints():
    """Every limit beyond ``--budget-ms``, one option per row of :data:`edgenet.decide.constraints.CONSTRAINTS`
    (``--max-memory-mb``, ``--max-size-mb``, ``--min-top1``, ``--min-agreement``, ``--edgetpu-on-chip``); the
    command receives them under the table's names and builds :class:`~edgenet.decide.constraints.Constraints`."""
    from ..decide.constraints import CONSTRAINTS

    def decorate(fn):
        for c in reversed([c for c in CONSTRAINTS.values() if c.name != "budget_ms"]):
            fn = constraint(c.name)(fn)
        return fn

    return decorate


def constraint(name: str, help: str | None = None):
    """One constraint's option (a row of :data:`edgenet.decide.constraints.CONSTRAINTS`), e.g. ``convert
    --min-agreement``: the same figure, unit and bounds, with the command's own ``help`` where it acts on it."""
    from ..decide.constraints import CONSTRAINTS

    c = CONSTRAINTS[name]
    if c.bound == "flag":
        return _option(c.option, c.name, is_flag=True, help=help or c.help)
    return _option(c.option, c.name, type=NumberType(_CONSTRAINT_BOUNDS[c.unit]), default=None, help=help or c.help)


def objective():
    return _option("--objective", type=click.Choice(["largest", "accuracy"]), default=None,
                   help="Among the candidates that fit: the largest, or the most accurate by measured top-1 "
                        "[default: accuracy when every candidate has a measured top-1, else largest].")


# --- where the work runs --------------------------------------------------------------------------

def remote(help: str = "Run on another device: USER@HOST over ssh, or a device file (e.g. an emulated Pi's "
                       "from tools/emulated-pi)."):
    return _option("--remote", default=None, metavar="USER@HOST|DEVICE.json", help=help)


def remote_command(command: str):
    return _option("--remote-command", default=None,
                   help=f"How to start the {command} command on the remote device  [default: edgenet {command}, "
                        f"or the device file's command + {command}].")


def ssh_option():
    return _option("--ssh-option", "ssh_options", multiple=True, metavar="KEY=VALUE",
                   help="Extra ssh/scp -o option for --remote (repeatable), e.g. Port=2222.")


def devices_file(help: str = "Measure on the devices of this inventory, all in parallel, each one job at a time."):
    return _option("--devices", "inventory", default=None, type=click.Path(dir_okay=False), metavar="devices.toml",
                   help=help)


def device_names():
    return _option("--device", "device_names", multiple=True, metavar="NAME",
                   help="With --devices: only this device (repeatable).")


def device_filter():
    """``--device`` of the commands that read results: records of one device (its label or hostname)."""
    return _option("--device", default=None, metavar="NAME", help="Only results from this device label or hostname.",
                   reason="results are compared on one device: one name")


class ClusterType(click.ParamType):
    """``local`` | ``auto`` | ``ray://HOST:PORT`` | ``HOST:PORT``: checked before any work starts
    (a malformed address or port, or a cluster without Ray installed)."""

    name = "local|auto|ray://HOST:PORT"

    def convert(self, value, param, ctx):
        from ..cluster.executor import parse_cluster, require_ray
        from ..errors import EdgenetError, MissingDependencyError

        try:
            spec = parse_cluster(value)
        except EdgenetError as exc:
            self.fail(str(exc).removeprefix("--cluster "), param, ctx)
        if not spec.is_local:
            try:
                require_ray(spec.address)
            except MissingDependencyError as exc:
                raise click.ClickException(str(exc)) from None
        return value


def cluster():
    return _option(
        "--cluster", type=ClusterType(), default="local", show_default=True, metavar="local|auto|ray://HOST:PORT",
        help="Where the work runs: this process, the Ray cluster this machine is part of (auto), or a Ray head "
             "(ray://HOST:PORT with Ray Client, HOST:PORT directly). Needs pip install 'edgenet[ray]'.")


# --- what is converted ----------------------------------------------------------------------------

class QuantForms(click.Choice):
    """The quantization choices, several at once as ``int8,fp16,fp32`` (``sweep --quant``): the same choice set."""

    name = "quant forms"

    def convert(self, value, param, ctx):
        forms = [f.strip() for f in str(value).split(",") if f.strip()]
        if not forms:
            self.fail("give at least one form, e.g. int8 or int8,fp16,fp32", param, ctx)
        done = [super(QuantForms, self).convert(f, param, ctx) for f in forms]
        if len(set(done)) != len(done):
            self.fail(f"a form is repeated in {value!r}", param, ctx)
        return ",".join(done)


def quant(help: str = "Quantization mode (int8: full-integer, int8 builtin ops only).", many: bool = False):
    kind = QuantForms(QUANT_MODES) if many else click.Choice(QUANT_MODES)
    return _option("--quant", "-q", type=kind, default="int8", show_default=True, help=help)


def calib():
    return _option("--calib", default="default", show_default=True,
                   help="Calibration images: a folder (searched recursively) or 'default' (embedded photos).")


def samples(*, default: int, reason: str | None = None, help: str):
    return _option("--samples", type=NumberType(numbers.Bounds(1, 100_000, integer=True)), default=default, show_default=True, reason=reason,
                   help=help)


def seed():
    return _option("--seed", type=NumberType(numbers.SEED), default=0, show_default=True,
                   help="Seed for sampling and augmentation.")


def weights(help: str):
    return _option("--weights", "-w", type=WEIGHTS, default=None, help=help)


def data(*, required: bool = False, help: str):
    # Not checked by click: the one dataset reader says "no such file" in one line (edgenet.evaluation).
    return _option("--data", type=click.Path(path_type=Path), default=None, required=required,
                   metavar="DIR|FILE", help=help)


def labels():
    return _option("--labels", type=click.Path(dir_okay=False, path_type=Path), default=None,
                   help="Class folder -> index: 'folder index' lines, or one class name per line (index = line "
                        "number from 0). Default: sorted folder names -> 0..N-1.")


def top(*, default: int, reason: str | None = None, help: str):
    return _option("--top", type=NumberType(numbers.COUNT), default=default, show_default=True, reason=reason,
                   help=help)


def variant(*, multiple: bool = False, reason: str | None = None, help: str):
    return _option("--variant", "variants" if multiple else "variant", type=VARIANT, required=True,
                   multiple=multiple, reason=reason, help=help)


#: An input resolution in pixels.
RESOLUTION_PX = numbers.Bounds(32, 1024, integer=True, unit="px")


def resolution(help: str):
    return _option("--resolution", type=NumberType(RESOLUTION_PX), default=None, help=help)


def label():
    return _option("--label", default=None, help="Device label stored in the records  [default: hostname].")
