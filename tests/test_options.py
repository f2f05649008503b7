"""One set of options (edgenet/cli/options.py): the whole click tree, walked.

A name means one thing in every command (same type, flag or value, same choices; a different
default or single/multiple form only with a declared reason or a named measurement preset), one
thing has one name, no hidden option but a deprecated spelling, and every number goes through the
one number type. Deprecated spellings still work with one warning line.
"""

from __future__ import annotations

from collections import defaultdict

import click
import pytest
from click.testing import CliRunner

from edgenet.bench.params import BenchParams, option_fields
from edgenet.cli import main
from edgenet.cli.common import NumberType
from edgenet.cli.options import PRESETS, STAT_CHOICE, DeprecatedOption, FaceOption, JsonRecordsOption
from edgenet.results.schema import NESTED_FIELDS


def walk(command: click.Command, path: tuple[str, ...] = ()):
    """Every command and group under ``command`` with its path (``("edgetpu", "check")``)."""
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from walk(sub, (*path, name))


TREE = [(" ".join(path) or "edgenet", command) for path, command in walk(main)]


def options_of(command: click.Command, hidden: bool = False):
    return [p for p in command.params if isinstance(p, click.Option) and p.hidden == hidden
            and "--help" not in p.opts]


def type_key(option: click.Option) -> str:
    """What kind of value an option takes, as far as its meaning goes."""
    kind = option.type
    if isinstance(option, JsonRecordsOption):  # the flag (its value form is the deprecated --json FILE)
        return "BoolParamType"
    if isinstance(kind, NumberType):
        return f"number{kind.bounds}"
    if isinstance(kind, click.Choice):
        return f"choice{tuple(kind.choices)}"
    return type(kind).__name__


def is_flag(option: click.Option) -> bool:
    # ``--json`` of the commands that write records is a flag; its value form is the deprecated ``--json FILE``.
    return bool(option.is_flag) or isinstance(option, JsonRecordsOption)


def by_name():
    names = defaultdict(list)
    for where, command in TREE:
        for option in options_of(command):
            for name in option.opts + option.secondary_opts:
                if name.startswith("--"):
                    names[name].append((where, option))
    return names


def test_the_walk_reaches_every_command_and_group():
    walked = {where for where, _ in TREE}
    assert {"edgenet", "bench", "tune", "profile", "sweep", "select", "devices", "edgetpu", "edgetpu check",
            "edgetpu compile", "weights", "weights list", "weights fetch", "weights verify"} <= walked
    assert len(walked) >= 22


def test_an_option_name_means_one_thing_everywhere():
    problems = []
    for name, uses in sorted(by_name().items()):
        kinds = {(is_flag(o), type_key(o)) for _, o in uses}
        if len(kinds) > 1:
            shown = sorted(f"{w}={type_key(o)}" + ("/flag" if is_flag(o) else "") for w, o in uses)
            problems.append(f"{name}: {shown}")
            continue
        if len(uses) < 2:
            continue
        for where, option in uses:  # a name used twice is defined once, in the options module
            if not isinstance(option, FaceOption):
                problems.append(f"{name} in {where} is not from edgenet/cli/options.py")
        # The most common default and form are the option's; every other needs its reason.
        defaults = defaultdict(list)
        for where, option in uses:
            off = is_flag(option) and option.default in (None, False, click.core.UNSET)  # a flag not given
            defaults[("off" if off else repr(option.default), option.multiple)].append((where, option))
        common = max(defaults, key=lambda k: len(defaults[k]))
        for key, odd in defaults.items():
            if key == common:
                continue
            for where, option in odd:
                preset = getattr(option, "preset", None)
                if preset is not None:  # a generated measurement option: its default is the preset's
                    field = option.name
                    if option.default != getattr(PRESETS[preset], field):
                        problems.append(f"{name} in {where}: default {option.default!r} is not {preset}.{field}")
                elif not getattr(option, "reason", None):
                    problems.append(f"{name} in {where}: default/form {key} differs from {common} without a reason")
    assert problems == []


def test_one_thing_has_one_name():
    short = defaultdict(set)  # -o is --output everywhere
    dest = defaultdict(set)  # the Python name of a value belongs to one option name
    for _, command in TREE:
        for option in options_of(command):
            longs = tuple(sorted(n for n in option.opts + option.secondary_opts if n.startswith("--")))
            for name in option.opts:
                if not name.startswith("--"):
                    short[name].add(longs)
            dest[option.name].add(longs)
    assert {k: v for k, v in short.items() if len(v) > 1} == {}
    assert {k: v for k, v in dest.items() if len(v) > 1} == {}
    # The spellings this release renamed are nowhere visible.
    visible = set(by_name())
    assert not visible & {"--out", "--out-dir", "--no-progress", "--inventory", "--tune", "--tune-reps",
                          "--tune-stat"}


def test_hidden_options_are_only_deprecated_spellings():
    hidden = [(where, o.opts) for where, command in TREE for o in options_of(command, hidden=True)
              if not isinstance(o, DeprecatedOption)]
    assert hidden == []  # `devices --probe/--delegate/--edgetpu-lib` are visible now


def test_every_number_goes_through_the_number_type():
    loose = [(where, o.opts[0], o.type) for where, command in TREE for o in options_of(command)
             if isinstance(o.type, (click.types.IntParamType, click.types.FloatParamType))]
    assert loose == []  # int, float, IntRange, FloatRange all let nan/inf/1e308 or huge values through


def test_json_is_results_as_json_on_stdout_everywhere():
    uses = by_name()["--json"]
    assert len(uses) >= 17
    assert all(is_flag(o) for _, o in uses)


def test_stat_is_one_choice_set_from_the_results_schema():
    uses = by_name()["--stat"]
    assert {w for w, _ in uses} >= {"select", "sweep", "report", "predict-latency", "profile", "tune"}
    assert all(o.type is STAT_CHOICE for _, o in uses)
    statistics = set(NESTED_FIELDS["latency_ms"]) - {"init", "first", "std"}
    assert set(STAT_CHOICE.choices) == statistics


def test_harness_flags_are_generated_from_benchparams():
    fields = {f"--{f.name.replace('_', '-')}" for f in option_fields()} - {"--xnnpack"} | {"--no-xnnpack"}
    names = by_name()
    for flag in ("--warmup-s", "--min-runs", "--min-s", "--max-s", "--timeout-s"):
        assert flag in fields
        for where, option in names[flag]:
            preset = getattr(option, "preset", None)
            if preset is None:  # --timeout-s of a command that does not measure: its own declared default
                assert flag == "--timeout-s" and option.reason, where
                continue
            assert preset in PRESETS, (flag, where)
            assert option.default == getattr(PRESETS[preset], option.name), (flag, where)
    bench = dict(TREE)["bench"]
    assert {n for o in options_of(bench) for n in o.opts} >= fields - {"--threads", "--seed"}
    assert {o.name: o.default for o in options_of(bench) if o.name in BenchParams.__dataclass_fields__} == {
        f.name: getattr(BenchParams(), f.name) for f in option_fields() if f.name != "threads"} | {"threads": "1"}


# --- deprecated spellings: still working, one warning line ----------------------------------------------

def _warnings(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("warning:") and "deprecated" in line]


@pytest.mark.parametrize("args, old", [
    (["devices", "-i", "{tmp}/none.toml"], ["--inventory/-i"]),
    (["devices", "--inventory", "{tmp}/none.toml"], ["--inventory/-i"]),
    (["sweep", "--budget-ms", "10", "--out", "{tmp}/run", "--settings", "{tmp}/none.json"], ["--out"]),
    (["edgetpu", "compile", "{tmp}/none.tflite", "--out-dir", "{tmp}/o"], ["--out-dir"]),
    (["bench", "{tmp}/none.tflite", "--json", "{tmp}/r.jsonl"], ["--json FILE"]),
    (["eval", "--no-progress", "{tmp}/none.tflite", "--data", "{tmp}"], ["--no-progress"]),
    (["bench", "{tmp}/a.tflite", "{tmp}/b.tflite", "--tune", "--save-settings", "{tmp}/s.json"],
     ["--tune", "--save-settings"]),
    (["report", "{tmp}", "--stat", "median"], ["--stat median"]),
    (["predict-latency", "--results", "{tmp}/none.jsonl", "--variant", "b0"], ["--results"]),
])
def test_a_deprecated_spelling_works_with_one_warning_line(tmp_path, args, old):
    result = CliRunner().invoke(main, [a.format(tmp=tmp_path) for a in args])
    warnings = _warnings(result.output)
    assert [w.split(" is deprecated")[0] for w in warnings] == [f"warning: {o}" for o in old], result.output
    assert all(" use " in w for w in warnings)
    assert "Traceback" not in result.output and not isinstance(result.exception, (TypeError, AttributeError))
    # It did the old thing: the option reached the command (which then failed on the missing inputs).
    assert result.exit_code in (1, 2) and "No such option" not in result.output, result.output


def test_json_file_still_appends_records_and_a_model_after_json_is_a_model(tmp_path):
    # `bench M --json FILE` is `bench M --results FILE`; `bench --json M.tflite` is the flag and a model.
    from edgenet.cli.options import json_and_results

    assert json_and_results("-", None, ("a.tflite",)) == (True, None, ("a.tflite",))
    assert json_and_results("b.tflite", None, ("a.tflite",)) == (True, None, ("b.tflite", "a.tflite"))
    assert json_and_results(None, "r.jsonl", ()) == (False, "r.jsonl", ())
    result = CliRunner().invoke(main, ["bench", str(tmp_path / "m.tflite"), "--json", str(tmp_path / "r.jsonl"),
                                       "--results", str(tmp_path / "s.jsonl")])
    assert result.exit_code == 2 and "give --results only" in result.output
