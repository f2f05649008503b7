"""``edgenet weights list|fetch|verify``: the published ImageNet weights of every variant."""

from __future__ import annotations

import sys

import click

from . import options
from .common import VARIANT_LIST, emit_json, info, table, user_errors

LIST_HEADERS = {
    "variant": "variant", "source": "source", "format": "format", "licence": "licence", "size_mb": "size MB",
    "top1_published": "top-1 % (published)", "resolution_px": "input px", "hash": "hash", "local": "local copy",
}


def _entries(variant_lists):
    from ..weights.registry import REGISTRY, published_weights

    if not variant_lists:
        return list(REGISTRY.values())
    return [published_weights(v) for group in variant_lists for v in group]


def _list_row(entry, settings) -> dict:
    from ..weights.fetch import cached_path

    package = entry.package.locate() if (entry.package and settings.use_packages) else None
    cached = cached_path(entry, settings)
    local, path, size = "", None, entry.size_bytes
    if package is not None:
        local, path = "package", package
    elif cached.is_file():
        local, path, size = "cached", cached, size or cached.stat().st_size
    return {
        "variant": entry.variant, "source": entry.source, "format": entry.file_format, "licence": entry.licence,
        "size_mb": None if size is None else round(size / 1e6, 1), "size_bytes": size,
        "top1_published": entry.top1_published, "resolution_px": entry.resolution_px,
        "hash": entry.hash_algorithm or "none (TOFU)", "hash_value": entry.hash,
        "url": entry.source_url(settings.environ), "local": local or "-", "path": str(path) if path else None,
        "package": entry.package.install_hint if entry.package else None,
    }


@click.group()
def weights() -> None:
    """Published ImageNet weights: list them, fetch them ahead of time, verify local copies.

    \b
    '--weights imagenet' (convert, predict, eval, sweep, import-weights) resolves through
    this registry: an installed package copy or the cache (hash checked, no network),
    else a verified, resumable download. Environment:
      EDGENET_CACHE         cache folder (default $XDG_CACHE_HOME/edgenet or ~/.cache/edgenet)
      EDGENET_WEIGHTS_URL   a mirror: files are fetched from $EDGENET_WEIGHTS_URL/<file name>
      EDGENET_OFFLINE=1     never use the network (HF_HUB_OFFLINE=1 too)
    """


@weights.command("list")
@click.argument("variant_lists", nargs=-1, type=VARIANT_LIST)
@options.json_flag()
@user_errors
def list_weights(variant_lists, as_json) -> None:
    """Every variant's published weights: source, licence, size, published top-1, local copy.

    \b
    Example:
      edgenet weights list
      edgenet weights list lite0-lite4 --json
    """
    from ..weights.fetch import FetchSettings

    settings = FetchSettings.from_env()
    rows = [_list_row(e, settings) for e in _entries(variant_lists)]
    if as_json:
        emit_json({"cache": str(settings.weights_dir), "weights": rows})
        return
    click.echo(table(rows, LIST_HEADERS))
    info(f"cache: {settings.weights_dir}; 'none (TOFU)': no published hash, fetch with --trust-on-first-use")


@weights.command("fetch")
@click.argument("variant_lists", nargs=-1, required=True, type=VARIANT_LIST)
@click.option("--trust-on-first-use", is_flag=True,
              help="Also download files without a published hash (Lite3, Lite4) and pin their sha256.")
@options.quiet()
@user_errors
def fetch(variant_lists, trust_on_first_use, quiet) -> None:
    """Download (or find installed) the published weights of VARIANTS, verified, into the cache.

    For a machine that will be offline later: fetch here, then copy the cache folder.
    Interrupted downloads resume where they stopped.

    \b
    Example:
      edgenet weights fetch b0-b3 lite0-lite2
      edgenet weights fetch lite4 --trust-on-first-use
    """
    from ..errors import EdgenetError
    from ..weights.fetch import FetchSettings, resolve

    settings = FetchSettings.from_env()
    failed = 0
    for entry in _entries(variant_lists):
        try:
            located = resolve(entry.variant, settings, entry=entry, trust_on_first_use=trust_on_first_use,
                              progress=not quiet, log=info)
        except EdgenetError as exc:
            info(f"error: {exc}")
            failed += 1
            continue
        verb = {"download": "downloaded", "cache": "cached", "package": "installed package"}[located.origin]
        click.echo(f"{entry.variant}: {verb}, {entry.hash or 'sha256 pinned'} ok: {located.path}")
    if failed:
        sys.exit(1)


@weights.command("verify")
@click.argument("variant_lists", nargs=-1, type=VARIANT_LIST)
@options.json_flag()
@user_errors
def verify(variant_lists, as_json) -> None:
    """Re-check the hash of every local copy (default: all variants); a bad cached file is deleted.

    \b
    Example:
      edgenet weights verify
      edgenet weights verify b0 lite2 --json
    """
    from ..weights.fetch import FetchSettings
    from ..weights.fetch import verify as verify_entry

    settings = FetchSettings.from_env()
    results = [r for e in _entries(variant_lists) for r in verify_entry(e, settings)]
    rows = [{"variant": r.variant, "status": r.status, "origin": r.origin or "", "path": str(r.path or ""),
             "detail": r.detail} for r in results]
    if as_json:
        emit_json(rows)
    else:
        click.echo(table(rows))
    bad = [r for r in results if not r.ok]
    for r in bad:
        info(f"error: {r.variant}: {r.path}: {r.detail}")
    if bad:
        sys.exit(1)
