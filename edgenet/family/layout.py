"""A picture of a variant's block layout (needs the ``plot`` extra)."""

from __future__ import annotations

import io
from pathlib import Path

from ..errors import MissingDependencyError
from ..fsutil import atomic_write_bytes
from .architecture import Architecture


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise MissingDependencyError("matplotlib", "plot", "drawing pictures") from exc
    return plt


def layout_png(arch: Architecture, path) -> Path:
    """Draw stem -> stages -> head as boxes whose height follows channels, width follows repeats."""
    plt = _pyplot()
    rows = arch.rows()
    fig, ax = plt.subplots(figsize=(max(8, 1.4 * len(rows)), 4.2))
    x = 0.0
    top = max(r["channels"] for r in rows)
    for r in rows:
        w = 0.6 + 0.25 * r["layers"]
        h = 0.25 + 0.75 * (r["channels"] / top) ** 0.5
        color = "#f2a65a" if r["se"] else ("#7fb3d5" if r["operator"].startswith("MBConv") else "#b0b0b0")
        ax.add_patch(plt.Rectangle((x, -h / 2), w, h, facecolor=color, edgecolor="black"))
        label = f"{r['operator'].replace(', ', chr(10))}\nk{r['kernel']} s{r['stride']}\nx{r['layers']}\n{r['channels']} ch\n{r['resolution']}px"
        ax.text(x + w / 2, 0, label, ha="center", va="center", fontsize=7)
        x += w + 0.15
    ax.set_xlim(-0.1, x)
    ax.set_ylim(-0.7, 0.7)
    ax.axis("off")
    ax.set_title(f"{arch.variant.name}: {arch.resolution}px, {arch.params / 1e6:.2f}M params, "
                 f"{arch.macs / 1e9:.3f}B MACs (orange: squeeze-excitation)", fontsize=9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())
