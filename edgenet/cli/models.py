"""``edgenet variants``, ``edgenet scale`` and ``edgenet layout``: the model family, without TensorFlow."""

from __future__ import annotations

import click

from .. import numbers
from ..family.architecture import architecture
from ..family.counts import variant_counts
from ..family.layout import layout_png
from ..family.variants import ALPHA_DEPTH, BETA_WIDTH, GAMMA_RESOLUTION, VARIANTS, Variant, custom_variant
from . import options
from .common import VARIANT, emit_json, table, user_errors

#: A compound-scaling base (alpha, beta, gamma) and a width/depth multiplier override.
_BASE = numbers.Bounds(1.0, 3.0)
_MULTIPLIER = numbers.Bounds(0.0, 16.0, lo_open=True)


def variant_row(v: Variant) -> dict:
    """One variant as a flat dict: coefficients and analytic counts (no model is built)."""
    row = dict(name=v.name, family=v.family, phi=v.phi, width=round(v.width, 4), depth=round(v.depth, 4),
               resolution=v.resolution, dropout=v.dropout, spec=v.spec)
    counts = variant_counts(v)  # published for reference models, else analytic
    row.update(params=counts.params, macs=counts.macs, counts=counts.source,
               int8_size_mb=None if counts.int8_size_bytes is None else round(counts.int8_size_bytes / 1e6, 2))
    row["published_macs"] = v.published.macs
    return row


_HEADERS = {"name": "variant", "phi": "phi", "width": "width", "depth": "depth", "resolution": "res",
            "dropout": "dropout", "params": "params", "macs": "MACs", "int8_size_mb": "int8 MB (est.)"}


def _fmt(row: dict) -> dict:
    out = dict(row)
    out["params"] = f"{row['params'] / 1e6:.2f}M" if row["params"] else ""
    out["macs"] = f"{row['macs'] / 1e9:.3f}B" if row["macs"] else ""
    out["phi"] = "" if row["phi"] is None else f"{row['phi']:g}"
    return out


@click.command()
@options.json_flag()
def variants(as_json: bool) -> None:
    """List every variant with its coefficients, parameters, multiply-adds and int8 size.

    \b
    Example:
      edgenet variants
      edgenet variants --json | jq '.[] | select(.family == "lite")'
    """
    rows = [variant_row(v) for v in VARIANTS.values()]
    if as_json:
        emit_json(rows)
    else:
        click.echo(table([_fmt(r) for r in rows], _HEADERS))


@click.command()
@click.option("--phi", type=options.number(numbers.Bounds(-8, 8)), default=None, help="Compound coefficient.")
@click.option("--alpha", type=options.number(_BASE), default=ALPHA_DEPTH, show_default=True, help="Depth base.")
@click.option("--beta", type=options.number(_BASE), default=BETA_WIDTH, show_default=True, help="Width base.")
@click.option("--gamma", type=options.number(_BASE), default=GAMMA_RESOLUTION, show_default=True,
              help="Resolution base.")
@click.option("--width", type=options.number(_MULTIPLIER), default=None, help="Override the width multiplier.")
@click.option("--depth", type=options.number(_MULTIPLIER), default=None, help="Override the depth multiplier.")
@options.resolution("Override the input resolution.")
@click.option("--lite", is_flag=True, help="Scale the Lite (edge) family instead of B.")
@options.json_flag()
@user_errors
def scale(phi, alpha, beta, gamma, width, depth, resolution, lite, as_json) -> None:
    """Compound scaling: width beta^phi, depth alpha^phi, resolution 224 * gamma^phi.

    Without --phi, shows the pure formula beside the published, hand-tuned B0-B7 table
    (the published B1-B7 are not the formula's output). With --phi, shows that custom
    variant (usable anywhere a variant name is, as the printed spec).

    \b
    Example:
      edgenet scale                 # formula vs published, phi = 0..7
      edgenet scale --phi 1.5       # a custom variant between B1 and B2
      edgenet scale --phi 2 --resolution 256
    """
    base = "lite" if lite else "b"
    if phi is None:
        if any(v is not None for v in (width, depth, resolution)):
            raise click.UsageError("--width/--depth/--resolution need --phi")
        rows = []
        for v in VARIANTS.values():
            if v.family != ("lite" if lite else "efficientnet"):
                continue
            pure = custom_variant(v.phi, base=base, alpha=alpha, beta=beta, gamma=gamma)
            pa, ua = architecture(v), architecture(pure)
            rows.append(dict(variant=v.name, phi=v.phi,
                             published=f"{v.width:g}/{v.depth:g}/{v.resolution}",
                             formula=f"{pure.width:.3f}/{pure.depth:.3f}/{pure.resolution}",
                             published_macs=pa.macs, formula_macs=ua.macs,
                             published_params=pa.params, formula_params=ua.params))
        if as_json:
            emit_json(rows)
            return
        click.echo("width/depth/resolution: published (hand-tuned) vs pure compound scaling "
                   f"(alpha={alpha:g}, beta={beta:g}, gamma={gamma:g})")
        click.echo(table([dict(r, published_macs=f"{r['published_macs'] / 1e9:.3f}B",
                               formula_macs=f"{r['formula_macs'] / 1e9:.3f}B",
                               published_params=f"{r['published_params'] / 1e6:.2f}M",
                               formula_params=f"{r['formula_params'] / 1e6:.2f}M") for r in rows]))
        return
    v = custom_variant(phi, base=base, width=width, depth=depth, resolution=resolution,
                       alpha=alpha, beta=beta, gamma=gamma)
    row = variant_row(v)
    if as_json:
        emit_json(row)
        return
    click.echo(table([_fmt(row)], dict(_HEADERS, spec="spec")))


@click.command()
@click.argument("variant", type=VARIANT)
@options.png("Also draw the layout to a PNG.")
@options.resolution("Input size (default: the variant's).")
@options.json_flag()
@user_errors
def layout(variant: Variant, png_path, resolution, as_json) -> None:
    """The block layout, stem to head: kernel, stride, expansion, SE, channels, repeats, resolution.

    \b
    Example:
      edgenet layout b0
      edgenet layout lite2 --png lite2.png
      edgenet layout phi=1.5
    """
    if variant.family == "baseline":
        raise click.UsageError(f"{variant.name} is a Keras applications reference model; layout shows EfficientNets")
    arch = architecture(variant, resolution=resolution)
    rows = arch.rows()
    if as_json:
        emit_json(dict(variant=variant.name, spec=variant.spec, resolution=arch.resolution, params=arch.params,
                       macs=arch.macs, stages=rows))
    else:
        click.echo(f"{variant.name}: width {variant.width:g}, depth {variant.depth:g}, "
                   f"{arch.resolution}x{arch.resolution}, {variant.activation}, "
                   f"{'with' if variant.se else 'no'} squeeze-excitation; "
                   f"{arch.params / 1e6:.2f}M params, {arch.macs / 1e9:.3f}B MACs")
        shown = [dict(r, se="yes" if r["se"] else "-", expansion=r["expansion"] or "-",
                      params=f"{r['params'] / 1e3:.1f}K", macs=f"{r['macs'] / 1e6:.1f}M") for r in rows]
        click.echo(table(shown, {"stage": "stage", "operator": "operator", "resolution": "input res",
                                 "channels": "out channels", "layers": "layers", "stride": "stride",
                                 "kernel": "kernel", "expansion": "expansion", "se": "SE",
                                 "params": "params", "macs": "MACs"}))
    if png_path:
        path = layout_png(arch, png_path)
        click.echo(f"wrote {path}", err=True)
