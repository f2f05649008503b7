"""Shared pieces of the command line: parameter types, error translation and output.

Human text goes to stderr, results (tables, ``--json``) to stdout so they can be piped.
User mistakes become ``click.UsageError``/``BadParameter`` (exit 2), domain failures
``click.ClickException`` (exit 1); neither prints a traceback.
"""

from __future__ import annotations

import functools
import json
import signal
import sys

import click

from .. import numbers
from ..errors import EdgenetError, VariantError, printable
from ..family.variants import Variant, parse_variant, parse_variant_list
from ..numbers import Bounds, NumberError
from ..process import signal_name, stop_all
from ..results.table import table

__all__ = ["BUDGET_MS", "NumberType", "VARIANT", "VARIANT_LIST", "emit_json", "info", "table", "user_errors"]


class VariantType(click.ParamType):
    """A variant name from the table or a custom spec such as ``phi=1.5``."""

    name = "variant"

    def convert(self, value, param, ctx) -> Variant:
        if isinstance(value, Variant):
            return value
        try:
            return parse_variant(value)
        except VariantError as exc:
            self.fail(str(exc), param, ctx)


class VariantListType(click.ParamType):
    """A comma-separated list or range of variants, e.g. ``b0-b3,lite0``."""

    name = "variants"

    def convert(self, value, param, ctx) -> list[Variant]:
        if isinstance(value, list):
            return value
        try:
            return parse_variant_list([value])
        except VariantError as exc:
            self.fail(str(exc), param, ctx)


class NumberType(click.ParamType):
    """A number within :class:`edgenet.numbers.Bounds`: finite, in range, the option named in the error.

    The one parameter type of every duration, count, factor, percentage, port and budget of the
    command line (``nan``, ``inf`` and ``1e308`` end in one usage line, exit 2).
    """

    def __init__(self, bounds: Bounds, name: str | None = None):
        self.bounds = bounds
        self.name = name or ("integer" if bounds.integer else bounds.unit or "number")

    def convert(self, value, param, ctx):
        try:
            return self.bounds.check(value, "value")
        except NumberError as exc:
            self.fail(str(exc).removeprefix("value: "), param, ctx)

    def __repr__(self) -> str:
        return f"NumberType({self.bounds!r})"


VARIANT = VariantType()
VARIANT_LIST = VariantListType()
BUDGET_MS = NumberType(numbers.BUDGET_MS, "ms")

#: ``--weights imagenet``: each variant's published ImageNet weights (see ``edgenet weights list``).
IMAGENET = "imagenet"


class WeightsType(click.ParamType):
    """A weights file, or ``imagenet`` for the published weights of each variant.

    A file that is really called ``imagenet`` is passed as ``./imagenet``.
    """

    name = "FILE|imagenet"

    def convert(self, value, param, ctx):
        if value is None:
            return None
        return IMAGENET if str(value).lower() == IMAGENET else str(value)


WEIGHTS = WeightsType()


def weights_for(weights: str | None, variant) -> str | None:
    """The weights file for ``variant``: the path given, or its published ImageNet weights.

    ``imagenet`` resolves through the weights registry: an installed package copy or the
    cache (verified, no network), else a verified download; failures are one line.
    """
    if weights != IMAGENET:
        return weights
    from ..family.variants import parse_variant
    from ..weights.fetch import resolve

    if not hasattr(variant, "name"):
        variant = parse_variant(str(variant))
    located = resolve(variant, log=info)
    info(f"{variant.name}: ImageNet weights ({located.entry.source}, {located.origin}): {located.path}")
    return str(located.path)


def user_errors(fn):
    """Turn edgenet's one-line errors and Ctrl-C into clean CLI exits."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except click.ClickException:
            raise
        except VariantError as exc:
            raise click.UsageError(printable(str(exc))) from None
        except EdgenetError as exc:
            raise click.ClickException(printable(str(exc))) from None
        except KeyboardInterrupt as exc:
            # SIGINT, and SIGTERM/SIGHUP through edgenet.process.install_signal_handlers: every
            # ``finally`` on the way up removed its temporaries; stop any child still running.
            signum = getattr(exc, "signum", signal.SIGINT)
            stop_all()
            click.echo(f"interrupted ({signal_name(signum)}): children stopped, finished outputs kept, "
                       "nothing partial written", err=True)
            sys.exit(128 + signum)

    return wrapper


def info(message: str) -> None:
    """Human-oriented progress text (stderr); file names that are not UTF-8 or hold control characters are escaped."""
    click.echo(printable(message, newlines=True), err=True)


def emit_json(payload) -> None:
    click.echo(json.dumps(payload, indent=2, sort_keys=False, default=str))
