"""The block-layout picture (edgenet/family/layout.py): a real PNG of a variant's architecture."""

from __future__ import annotations

from PIL import Image

from edgenet.family.architecture import architecture
from edgenet.family.layout import layout_png
from edgenet.family.variants import VARIANTS


def test_layout_png_draws_every_stage_and_writes_atomically(tmp_path):
    arch = architecture(VARIANTS["b0"])
    path = layout_png(arch, tmp_path / "b0.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > image.height > 200
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b0.png"]  # no temporary file left
    lite = layout_png(architecture(VARIANTS["lite0"]), tmp_path / "lite0.png")
    assert lite.read_bytes() != path.read_bytes()  # the picture depends on the variant
    assert len(arch.rows()) == 9  # stem, seven stages, head: one box each
