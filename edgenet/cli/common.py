"""Shared pieces of the command line: parameter types, error translation and output.

Human text goes to stderr, results (tables, ``--json``) to stdout so they can be piped.
User mistakes become ``click.UsageError``/``BadParameter`` (exit 2), domain failures
``click.ClickException`` (exit 1); neither prints a traceback.
"""

from __future__ import annotations

import functools
import json
import sys

import click

from ..errors import EdgenetError, VariantError
from ..family.variants import Variant, parse_variant, parse_variant_list
from ..results.table import table

__all__ = ["VARIANT", "VARIANT_LIST", "emit_json", "info", "table", "user_errors"]


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


VARIANT = VariantType()
VARIANT_LIST = VariantListType()


def user_errors(fn):
    """Turn edgenet's one-line errors and Ctrl-C into clean CLI exits."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except click.ClickException:
            raise
        except VariantError as exc:
            raise click.UsageError(str(exc)) from None
        except EdgenetError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            click.echo("interrupted: finished outputs were kept, nothing partial was written", err=True)
            sys.exit(130)

    return wrapper


def info(message: str) -> None:
    """Human-oriented progress text (stderr)."""
    click.echo(message, err=True)


def emit_json(payload) -> None:
    click.echo(json.dumps(payload, indent=2, sort_keys=False, default=str))
